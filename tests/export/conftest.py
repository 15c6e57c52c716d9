"""Fixtures of the export tests: the session's exports of small RIGNets with informative outputs.

`tiny_rignet(..., calibrate=True)` (tests/harness.py) sets every batch norm's moving statistics to
the batch statistics of a few synthetic images: the net stays random but its predictions are
decided, varied maps, so a parity test on it would fail for a broken export.

Exports are session-scoped and made once per configuration; every conversion is in-process
(small models: the peak RSS of the whole folder stays under about 3 GB).
"""

import pytest

from tests.harness import SIZE, UIS, tiny_rignet


class _Exports:
    """Session cache: one export per configuration key."""

    def __init__(self, factory):
        self.factory = factory
        self.cache = {}

    def get(self, key, **options):
        if key not in self.cache:
            self.cache[key] = self.factory(key, **options)
        return self.cache[key]


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """`exports.get(mode)`: (model, manifest, folder) of a tiny RIGNet in that unroll mode,
    exported to every format (`model.keras`, SavedModel, float32 TFLite: one file with ui 1..3
    and the step-wise graphs where the mode has them, ONNX ui 1..3), at 65x71. The "parallel"
    export also holds every TFLite precision (and step-wise float32 and int8)."""
    from rignet_keras.export import FORMATS, PRECISIONS, export_model
    from rignet_keras.export.tflite import non_builtin_ops

    def factory(mode, **options):
        model = tiny_rignet(mode, backbone="tiny", calibrate=True, seed=0)
        folder = tmp_path_factory.mktemp(f"export_{mode}") / "out"
        settings = dict(
            input_size=SIZE,
            formats=FORMATS,
            uis=UIS,
            precisions=("float32",),
            tflite_layouts=("multi",),
            latency_runs=3,
        )
        if mode == "parallel":
            settings.update(precisions=PRECISIONS, stepwise_precisions=("float32", "int8"))
        settings.update(options)
        manifest = export_model(model, folder, **settings)
        for path in folder.glob("*.tflite"):  # every export test's files are builtin-only
            assert non_builtin_ops(path.read_bytes()) == [], path
        return model, manifest, folder

    return _Exports(factory)
