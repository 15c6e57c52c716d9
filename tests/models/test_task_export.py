"""`export(path, format=...)` of the backbone and the segmenter goes through the project's
exporter in every Keras format name, and a segmenter saved as `.keras` loads in a fresh process
after `import rignet_keras` alone (the package registers its task classes)."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from rignet_keras.tasks import RIGNetBackbone, RIGNetImageSegmenter

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = dict(backbone="resnet18", width_multiplier=0.125, num_iterations=2, feedback_blocks=(4, 6))


def tiny_backbone():
    backbone = RIGNetBackbone(num_classes=3, **TINY)
    backbone(np.zeros((1, 32, 32, 3), "float32"))
    return backbone


def test_export_refuses_an_unknown_format_and_a_missing_size_in_one_line(tmp_path):
    backbone = tiny_backbone()
    with pytest.raises(ValueError, match=r"format must be one of \('litert', 'onnx', "):
        backbone.export(tmp_path / "x", format="tflite", input_size=32)
    with pytest.raises(ValueError, match=r"export\(format='onnx'\) needs input_size=\(H, W\)"):
        backbone.export(tmp_path / "x", format="onnx")
    segmenter = RIGNetImageSegmenter(backbone)  # no preprocessor: no size either
    with pytest.raises(ValueError, match="needs input_size"):
        segmenter.export(tmp_path / "x", format="litert")
    assert not (tmp_path / "x").exists()


def exported(folder):
    """{(format, ui): parity passed} of an export's manifest."""
    manifest = json.loads((folder / "manifest.json").read_text())
    return {
        (artifact["format"], signature["ui"]): signature["parity"]["passed"]
        for artifact in manifest["artifacts"]
        for signature in artifact["signatures"]
    }


@pytest.mark.export
@pytest.mark.parametrize("format, written", [("tf_saved_model", "saved_model"), ("onnx", "onnx")])
def test_backbone_and_segmenter_export_through_the_project_exporter(tmp_path, format, written):
    backbone = tiny_backbone()
    backbone.export(tmp_path / "backbone", format=format, input_size=32)
    assert exported(tmp_path / "backbone") == {(written, 1): True, (written, 2): True}

    segmenter = RIGNetImageSegmenter.from_preset("resnet18_rignet", num_classes=3, **TINY)
    segmenter.export(tmp_path / "segmenter", format=format, input_size=(32, 32))
    assert exported(tmp_path / "segmenter") == {(written, 1): True, (written, 2): True}


@pytest.mark.subprocess
def test_a_saved_segmenter_loads_after_importing_the_package_alone(tmp_path):
    segmenter = RIGNetImageSegmenter.from_preset("resnet18_rignet", num_classes=3, **TINY)
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    expected = segmenter.predict(images, verbose=0)
    segmenter.save(tmp_path / "segmenter.keras")
    np.save(tmp_path / "images.npy", images)
    script = (
        "import numpy as np, rignet_keras, keras\n"
        "model = keras.models.load_model('segmenter.keras', safe_mode=True)\n"
        "assert type(model).__name__ == 'RIGNetImageSegmenter', type(model)\n"
        "np.save('scores.npy', model.predict(np.load('images.npy'), verbose=0))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert process.returncode == 0, process.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "scores.npy"), expected)
