"""The runtime folder on its own: copied under another name, run as a module where TensorFlow,
Keras and JAX cannot be imported and the rignet_keras package is absent."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

import rignet_runtime as runtime
from tests.harness import fresh_images

RUNTIME_DIR = os.path.dirname(os.path.abspath(runtime.__file__))

# Runs a module with a meta-path finder that makes importing any of these fail, then lists the
# blocked modules that were loaded all the same.
DEVICE_PRELUDE = """
import json, runpy, sys
BLOCKED = {"tensorflow", "keras", "tf_keras", "jax", "torch", "rignet_keras", "tf2onnx",
           "onnxruntime"}
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: a device has no {name}")
        return None
sys.meta_path.insert(0, Block())
module, args = json.loads(sys.argv[1])
sys.argv = [module] + args
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
finally:
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print("BLOCKED_MODULES_LOADED=" + json.dumps(loaded))
"""


def copy_runtime(folder, name="rignet_runtime"):
    """Copies the runtime package alone into `folder/name`; returns `folder`."""
    shutil.copytree(RUNTIME_DIR, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def run_device(device_dir, *args, module="rignet_runtime"):
    """`python -m <module> ARGS` from `device_dir`, frameworks blocked: (status, out, err)."""
    process = subprocess.run(
        [sys.executable, "-c", DEVICE_PRELUDE, json.dumps([module, [str(a) for a in args]])],
        capture_output=True,
        text=True,
        cwd=device_dir,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        timeout=300,
    )
    assert "BLOCKED_MODULES_LOADED=[]" in process.stdout, process.stdout + process.stderr
    return process.returncode, process.stdout, process.stderr


@pytest.mark.export
def test_copied_runtime_folder_segments_an_image(exports, tmp_path):
    _, _, folder = exports.get("parallel")
    device = copy_runtime(tmp_path / "device")
    image = fresh_images(1, seed=31)[0]
    Image.fromarray(image).save(device / "photo.png")
    status, out, err = run_device(
        device,
        "photo.png",
        "--manifest",
        folder,
        "--budget-ms",
        1e6,
        "--precision",
        "float32",
        "--output-dir",
        device / "masks",
    )
    assert status == 0, err
    # the choice, and why, is printed before any image
    chosen = out.splitlines()[0]
    assert "rignet_float32.tflite (float32, signature ui_3" in chosen, out
    assert "fits --budget-ms 1e+06" in chosen and "measured by the exporter on" in chosen
    interpreter = Interpreter(str(folder / "rignet_float32.tflite"))
    expected = interpreter.get_signature_runner("ui_3")(images=image[None])["class_map"][0]
    mask = Image.open(device / "masks" / "photo.png")
    assert mask.mode == "P" and mask.format == "PNG"
    np.testing.assert_array_equal(np.array(mask), expected)
    assert (device / "masks" / "photo_overlay.png").exists()


@pytest.mark.export
def test_copied_runtime_reports_errors_in_one_line(exports, tmp_path):
    _, _, folder = exports.get("parallel")
    device = copy_runtime(tmp_path / "device", name="segment")
    status, out, err = run_device(
        device, "missing.png", "--manifest", folder, "--ui", 2, module="segment"
    )
    assert status == 2
    assert err.strip().splitlines() == ["error: input 'missing.png' does not exist"]
    assert "Traceback" not in err


@pytest.mark.export
def test_package_module_and_script_run_the_same_command(exports, tmp_path):
    """`python -m rignet_runtime` (the package, TensorFlow importable or not) and
    `export/run_tflite.py` write the same mask."""
    _, _, folder = exports.get("parallel")
    Image.fromarray(fresh_images(1, seed=32)[0]).save(tmp_path / "a.png")
    root = os.path.dirname(RUNTIME_DIR)
    masks = []
    for name, command in (
        ("module", [sys.executable, "-m", "rignet_runtime"]),
        ("script", [sys.executable, os.path.join(root, "export", "run_tflite.py")]),
    ):
        args = [str(tmp_path / "a.png"), "--manifest", str(folder), "--ui", "2"]
        args += ["--output-dir", str(tmp_path / name), "--no-overlay"]
        process = subprocess.run(
            command + args, capture_output=True, text=True, cwd=tmp_path, timeout=300
        )
        assert process.returncode == 0, process.stderr
        assert "signature ui_2" in process.stdout
        masks.append(np.array(Image.open(tmp_path / name / "a.png")))
    np.testing.assert_array_equal(masks[0], masks[1])
