"""One copy of the weights: a TFLite file costs about its model's parameter bytes, whatever the
number of uis it holds, because the gated passes' batch-norm statistics apply as a per-channel
correction (`tflite_gated_batch_norm="corrected"`) instead of a second, differently folded copy
of every repeated block's kernels ("folded")."""

import keras
import numpy as np
import pytest

from rignet_keras.export import export_model
from rignet_keras.export.tflite import operator_names
from tests.harness import SIZE, tiny_blocks, tiny_rignet

BOUND = 1.15
UIS = (1, 2, 3)


def _wide_blocks(num_classes):
    """Six blocks with enough weights (about 0.8 M parameters) that a file's size is mostly its
    weights, as for a real backbone."""
    return tiny_blocks(num_classes, widths=(32, 64, 128, 192, 256))


@pytest.fixture(scope="module")
def wide_exports(tmp_path_factory):
    """{layout: manifest} of one model exported at float32 and int8, one file per ui and the
    file of every ui, in both gated-batch-norm layouts ("folded" float32 only)."""
    keras.utils.set_random_seed(0)
    model = tiny_rignet(
        "parallel", backbone=_wide_blocks(5), preprocessing="torch", calibrate=True, seed=0
    )
    manifests = {}
    for layout, precisions in (("corrected", ("float32", "int8")), ("folded", ("float32",))):
        folder = tmp_path_factory.mktemp(f"weights_{layout}") / "out"
        manifests[layout] = export_model(
            model,
            folder,
            input_size=SIZE,
            uis=UIS,
            precisions=precisions,
            tflite_layouts=("multi", "per_ui"),
            tflite_gated_batch_norm=layout,
            stepwise=False,
            latency_runs=0,
        )
    parameters = sum(int(np.prod(w.shape)) for w in model.weights)
    return model, parameters, manifests


def _files(manifest, precision):
    return {
        a["file"]: a
        for a in manifest["artifacts"]
        if a["format"] == "tflite" and a["precision"] == precision
    }


@pytest.mark.export
@pytest.mark.parametrize("precision, bytes_per_parameter", [("float32", 4), ("int8", 1)])
def test_every_file_holds_one_copy_of_the_weights(wide_exports, precision, bytes_per_parameter):
    _, parameters, manifests = wide_exports
    files = _files(manifests["corrected"], precision)
    assert len(files) == len(UIS) + 1
    for name, artifact in files.items():
        ratio = artifact["size_bytes"] / (bytes_per_parameter * parameters)
        assert ratio <= BOUND, (name, ratio)
    assert manifests["corrected"]["tflite_layout"]["gated_batch_norm"] == "corrected"


@pytest.mark.export
def test_the_folded_layout_stores_the_repeated_kernels_twice(wide_exports):
    _, parameters, manifests = wide_exports
    folded = _files(manifests["folded"], "float32")
    corrected = _files(manifests["corrected"], "float32")
    # ui 1 has no gated pass: both layouts write the same graph.
    assert folded["rignet_ui1_float32.tflite"]["size_bytes"] == pytest.approx(
        corrected["rignet_ui1_float32.tflite"]["size_bytes"], rel=0.01
    )
    # Blocks 4..6 and the gates (most of the weights) run again in the gated passes.
    assert folded["rignet_float32.tflite"]["size_bytes"] > 1.35 * 4 * parameters
    assert corrected["rignet_float32.tflite"]["size_bytes"] <= BOUND * 4 * parameters


@pytest.mark.export
def test_the_correction_is_a_depthwise_convolution_only_in_gated_passes(wide_exports):
    model, _, manifests = wide_exports
    folder = manifests["corrected"]["_dir"]
    ui1 = operator_names(open(f"{folder}/rignet_ui1_float32.tflite", "rb").read())
    ui2 = operator_names(open(f"{folder}/rignet_ui2_float32.tflite", "rb").read())
    assert "DEPTHWISE_CONV_2D" not in ui1
    assert "DEPTHWISE_CONV_2D" in ui2


@pytest.mark.export
@pytest.mark.parametrize("layout", ["corrected", "folded"])
def test_parity_holds_in_both_layouts(wide_exports, layout):
    _, _, manifests = wide_exports
    for artifact in _files(manifests[layout], "float32").values():
        for signature in artifact["signatures"]:
            parity = signature["parity"]
            assert parity["max_abs_diff"] < 1e-3, (artifact["file"], signature["name"])
            assert parity["label_agreement"] >= 0.999, (artifact["file"], signature["name"])
