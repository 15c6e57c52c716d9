"""`export/export_model.py`: flags to `export_model`, every conversion in its own process."""

import importlib.util
import json
import os

import pytest

from tests.harness import tiny_rignet

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _script():
    spec = importlib.util.spec_from_file_location(
        "export_model_script", os.path.join(ROOT, "export", "export_model.py")
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


@pytest.mark.subprocess
def test_export_script_with_isolated_conversions(tmp_path):
    path = tmp_path / "tiny.keras"
    tiny_rignet("parallel", backbone="tiny", calibrate=True, seed=0).save(path)
    out = tmp_path / "exported"
    status = _script().main(
        [
            str(path),
            str(out),
            "--input-size",
            "65",
            "71",
            "--uis",
            "2",
            "--formats",
            "keras",
            "tflite",
            "onnx",
            "--precisions",
            "int8",
            "--no-stepwise",
            "--latency-runs",
            "1",
        ]
    )
    assert status == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["source"] == str(path)
    assert manifest["calibration_data"]["source"].startswith("synthetic")
    by_file = {a["file"]: a for a in manifest["artifacts"]}
    assert set(by_file) == {"model.keras", "rignet_ui2_int8.tflite", "rignet_ui2.onnx"}
    for name in ("rignet_ui2_int8.tflite", "rignet_ui2.onnx"):
        conversion = by_file[name]["conversion"]
        assert conversion["peak_rss_mb"] > 0  # measured in the conversion's own process
        assert by_file[name]["signatures"][0]["parity"]["passed"]
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []
