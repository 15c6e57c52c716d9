"""The on-device runner: it works with TensorFlow and Keras unimportable, and its errors are clear.

The main flows run `export/run_tflite.py` in a subprocess whose import system refuses
tensorflow, keras (and the other frameworks): any import of them fails, and no module of
the project but `rignet_runtime` may be loaded.
"""

import subprocess
import sys

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

import rignet_runtime as runtime
from tests.harness import (
    ROOT,
    RUNNER_PRELUDE,
    SIZE,
    fresh_images,
    keras_probabilities,
    run_runner_script,
)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    images = fresh_images(2, seed=21)
    Image.fromarray(images[0]).save(folder / "a.png")
    Image.fromarray(images[1]).save(folder / "b.png")
    (folder / "notes.txt").write_text("not an image; ignored in a folder")
    return folder, images


def _tflite(path, signature, image):
    runner_ = Interpreter(str(path)).get_signature_runner(signature)
    return runner_(images=image[None])


@pytest.mark.export
def test_budget_choice_on_a_folder_writes_palette_masks_and_overlays(
    exports, image_folder, tmp_path
):
    _, manifest, folder = exports.get("parallel")
    images_dir, images = image_folder
    status, out, err = run_runner_script(
        images_dir,
        "--manifest",
        folder,
        "--budget-ms",
        1e6,
        "--precision",
        "float32",
        "--output-dir",
        tmp_path / "masks",
    )
    assert status == 0, err
    assert out.count("ui 3") == 2  # the largest ui fits an unlimited budget
    for name, image in zip(("a", "b"), images, strict=True):
        mask = Image.open(tmp_path / "masks" / f"{name}.png")
        assert mask.mode == "P" and mask.size == (SIZE[1], SIZE[0])
        palette = np.array(mask.getpalette()[: 256 * 3], np.uint8).reshape(256, 3)
        np.testing.assert_array_equal(palette, runtime.voc_palette())
        expected = _tflite(folder / "rignet_float32.tflite", "ui_3", image)["class_map"][0]
        np.testing.assert_array_equal(np.array(mask), expected)
        overlay = Image.open(tmp_path / "masks" / f"{name}_overlay.png")
        assert overlay.mode == "RGB" and overlay.size == mask.size
    assert not (tmp_path / "masks" / "notes.png").exists()


@pytest.mark.export
def test_model_file_and_ui(exports, image_folder, tmp_path):
    _, _, folder = exports.get("parallel")
    images_dir, images = image_folder
    model = folder / "rignet_float32.tflite"
    status, out, err = run_runner_script(
        images_dir / "a.png", "--model", model, "--ui", 1, "--output-dir", tmp_path, "--no-overlay"
    )
    assert status == 0, err
    assert "XNNPACK" not in err  # LiteRT's routine INFO line is left out
    expected = _tflite(model, "ui_1", images[0])["class_map"][0]
    np.testing.assert_array_equal(np.array(Image.open(tmp_path / "a.png")), expected)
    assert not (tmp_path / "a_overlay.png").exists()


@pytest.mark.export
def test_deadline_runs_the_stepwise_graph(exports, image_folder, tmp_path):
    model, _, folder = exports.get("parallel")
    images_dir, images = image_folder
    status, out, err = run_runner_script(
        images_dir / "b.png",
        "--manifest",
        folder / "manifest.json",
        "--deadline-ms",
        1e6,
        "--max-iterations",
        4,
        "--no-early-stop",
        "--precision",
        "float32",
        "--output-dir",
        tmp_path,
    )
    assert status == 0, err
    assert "4 iterations (max_iterations)" in out
    reference = keras_probabilities(model, images[1][None], 4)
    mask = np.array(Image.open(tmp_path / "b.png"))[None]
    top = np.sort(reference, -1)
    decided = top[..., -1] - top[..., -2] > 1e-3
    np.testing.assert_array_equal(mask[decided], reference.argmax(-1)[decided])


@pytest.mark.export
def test_benchmark_prints_median_and_p90_per_ui(exports):
    _, _, folder = exports.get("parallel")
    status, out, err = run_runner_script(
        "--manifest", folder, "--precision", "float32", "--benchmark", "--runs", 2, "--threads", 2
    )
    assert status == 0, err
    assert "median ms" in out and "p90 ms" in out and "threads" in out
    for signature in ("ui_1", "ui_2", "ui_3", "init", "step"):
        assert f" {signature} " in out


@pytest.mark.export
def test_wrong_size_image_is_refused_or_resized(exports, tmp_path):
    _, _, folder = exports.get("parallel")
    path = tmp_path / "big.png"
    Image.fromarray(fresh_images(1)[0]).resize((80, 60)).save(path)
    refused = tmp_path / "refused"
    status, _, err = run_runner_script(
        path, "--manifest", folder, "--ui", 2, "--output-dir", refused
    )
    assert status == 2
    assert not (refused / "big.png").exists()
    assert "big.png" in err and "80x60" in err and "71x65" in err and "--resize" in err
    status, _, err = run_runner_script(
        path, "--manifest", folder, "--ui", 2, "--resize", "--output-dir", tmp_path / "out"
    )
    assert status == 0, err
    assert Image.open(tmp_path / "out" / "big.png").size == (80, 60)


# -- errors, in-process (the script runs the same package) ---------------------------------------


def _main_error(capsys, *args):
    assert runtime.main([str(a) for a in args]) == 2
    return capsys.readouterr().err


@pytest.mark.export
def test_ui_the_file_does_not_hold(exports, image_folder, capsys):
    _, _, folder = exports.get("parallel")
    images_dir, _ = image_folder
    err = _main_error(capsys, images_dir, "--model", folder / "rignet_float32.tflite", "--ui", 7)
    assert "rignet_float32.tflite" in err and "ui 7" in err and "[1, 2, 3]" in err
    err = _main_error(capsys, images_dir, "--manifest", folder, "--ui", 7)
    assert "ui 7" in err


@pytest.mark.export
def test_non_image_file(exports, tmp_path, capsys):
    _, _, folder = exports.get("parallel")
    bad = tmp_path / "broken.png"
    bad.write_text("this is text, not a PNG")
    err = _main_error(capsys, bad, "--manifest", folder, "--output-dir", tmp_path / "out")
    assert "broken.png" in err and "not an image" in err


@pytest.mark.export
def test_budget_nothing_fits_and_missing_files(exports, image_folder, tmp_path, capsys):
    _, _, folder = exports.get("parallel")
    images_dir, _ = image_folder
    err = _main_error(capsys, images_dir, "--manifest", folder, "--budget-ms", 1e-6)
    assert "no graph fits a budget of 1e-06 ms" in err
    err = _main_error(capsys, images_dir, "--model", tmp_path / "missing.tflite")
    assert "missing.tflite" in err and "does not exist" in err
    err = _main_error(
        capsys, images_dir, "--model", folder / "rignet_stepwise_float32.tflite", "--ui", 1
    )
    assert "holds no ui signature" in err
    err = _main_error(
        capsys, images_dir, "--model", folder / "rignet_float32.tflite", "--deadline-ms", 10
    )
    assert "no step-wise signatures" in err
    not_tflite = tmp_path / "model.tflite"
    not_tflite.write_bytes(b"\0" * 64)
    err = _main_error(capsys, images_dir, "--model", not_tflite)
    assert "model.tflite" in err
    err = _main_error(capsys, images_dir, "--manifest", images_dir / "a.png")
    assert "a.png" in err and "not JSON" in err


@pytest.mark.subprocess
def test_runtime_imports_without_tensorflow():
    """`import rignet_runtime` works where TensorFlow and Keras cannot be imported."""
    code = RUNNER_PRELUDE.split("script, args")[0] + (
        "import rignet_runtime as runtime\n"
        "assert runtime.select_graph and runtime.Segmenter\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in BLOCKED)\n"
        "print('BLOCKED_MODULES_LOADED=' + json.dumps(loaded))\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert process.returncode == 0, process.stderr
    assert "BLOCKED_MODULES_LOADED=[]" in process.stdout


def test_the_export_packages_runtime_names_are_the_runtimes_own():
    import rignet_keras.export as export

    assert export.select_graph is runtime.select_graph
    assert export.Segmenter is runtime.Segmenter


@pytest.mark.export
def test_random_scan_data_is_refused_naming_the_file(exports, image_folder, tmp_path):
    """A JPEG whose scan data is random bytes decodes in Pillow with no error (libjpeg only
    warns); the runner refuses it in one line and writes no mask."""
    from tests.data.data_fixtures import corrupt_jpeg_body

    _, _, folder = exports.get("parallel")
    _, images = image_folder
    path = tmp_path / "photo.jpg"
    Image.fromarray(images[0]).save(path, quality=90)
    corrupt_jpeg_body(path, "random")
    status, out, err = run_runner_script(
        path, "--model", folder / "rignet_float32.tflite", "--output-dir", tmp_path / "masks"
    )
    assert status == 2, out + err
    fault = runtime.jpeg.jpeg_fault(path.read_bytes())
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {str(path)!r} has corrupt JPEG data: {fault}"]
    assert not (tmp_path / "masks" / "photo.png").exists()


@pytest.mark.export
def test_a_missed_deadline_is_reported(exports, image_folder, tmp_path):
    """Even the first pass cannot fit a 0.001 ms deadline: the runner says the deadline was
    missed instead of reporting the run as if it had fitted."""
    _, _, folder = exports.get("parallel")
    images_dir, _ = image_folder
    status, out, err = run_runner_script(
        images_dir / "b.png",
        "--manifest",
        folder / "manifest.json",
        "--deadline-ms",
        0.001,
        "--precision",
        "float32",
        "--output-dir",
        tmp_path,
    )
    assert status == 0, err
    assert "1 iterations (deadline)" in out and "missed the 0.001 ms deadline" in out
    assert (tmp_path / "b.png").exists()
