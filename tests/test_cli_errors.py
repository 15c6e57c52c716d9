"""The command line refuses a user error in one line with exit status 2 (no traceback), before
any work; a training stopped on a NaN is one line with exit status 1. Every test runs the real
command in a subprocess (`python -m rignet_keras.cli`, what the `rignet` script calls)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rignet(*args, cwd=None):
    """Runs `rignet ARGS...` in a fresh process, TensorFlow's log level left to the command (as
    for a user who has not set it); returns the CompletedProcess."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, "-m", "rignet_keras.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd or ROOT,
        env=env,
    )


def one_error_line(proc, status=2):
    """Asserts the command failed with `status` and printed its error as one line, last, to
    stderr (after at most some `note:` lines, e.g. an override shortening another); returns it."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == status, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert lines and lines[-1].startswith("error: "), proc.stderr[-3000:]
    assert all(line.startswith("note: ") for line in lines[:-1]), proc.stderr[-3000:]
    return lines[-1]


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "a.png")
    return folder


@pytest.mark.parametrize("ui", ["0", "-3"])
def test_predict_refuses_a_ui_below_one(image_dir, tmp_path, ui):
    line = one_error_line(
        rignet(
            "predict",
            image_dir,
            "--model",
            tmp_path / "m.keras",
            "--ui",
            ui,
            "--output-dir",
            tmp_path / "out",
        )
    )
    assert f"--ui must be at least 1; received {ui}" in line
    assert not (tmp_path / "out").exists()


def test_predict_names_a_file_that_is_not_an_image(image_dir, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("not an image\n")
    line = one_error_line(
        rignet(
            "predict",
            image_dir,
            fake,
            "--model",
            tmp_path / "m.keras",
            "--output-dir",
            tmp_path / "out",
        )
    )
    assert str(fake) in line and "not an image" in line


def test_predict_into_its_input_folder_refuses_to_overwrite_an_input(image_dir, tmp_path):
    before = (image_dir / "a.png").read_bytes()
    line = one_error_line(
        rignet("predict", image_dir, "--model", tmp_path / "m.keras", "--output-dir", image_dir)
    )
    assert "would overwrite the input image" in line and "a.png" in line
    assert (image_dir / "a.png").read_bytes() == before
    assert sorted(os.listdir(image_dir)) == ["a.png"]


def test_predict_names_a_model_file_keras_cannot_read(image_dir, tmp_path):
    (tmp_path / "m.keras").write_text("not a model\n")
    line = one_error_line(
        rignet(
            "predict", image_dir, "--model", tmp_path / "m.keras", "--output-dir", tmp_path / "out"
        )
    )
    assert f"--model {str(tmp_path / 'm.keras')!r} is not a Keras model file" in line
    assert not (tmp_path / "out").exists()


def test_evaluate_refuses_zero_iterations(tmp_path):
    line = one_error_line(
        rignet(
            "evaluate",
            "--model",
            tmp_path / "m.keras",
            "--iterations",
            "1,0",
            "--source",
            "synthetic",
        )
    )
    assert "--iterations must be at least 1; received 0" in line


def test_data_convert_refuses_zero_images_per_shard(tmp_path):
    line = one_error_line(
        rignet(
            "data",
            "convert",
            "synthetic",
            "--output-dir",
            tmp_path / "s",
            "--images-per-shard",
            "0",
        )
    )
    assert "--images-per-shard must be at least 1; received 0" in line
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--steps", "0"], "--steps must be at least 1; received 0"),
        (["--num-train", "-1"], "--num-train must be at least 1; received -1"),
        (["--iterations", "0"], "--iterations must be at least 1; received 0"),
        (["--steps", "x"], "--steps: invalid int value: 'x'"),
    ],
)
def test_quickstart_refuses_a_nonsense_flag(tmp_path, flags, named):
    line = one_error_line(rignet("quickstart", "--fast", "--output-dir", tmp_path / "q", *flags))
    assert named in line
    assert not (tmp_path / "q").exists()


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--steps", "10", "--warmup-steps", "50"], "warmup_steps (50) must be smaller than steps"),
        (["--num-train-samples", "-1"], "data.num_train_samples must be at least 1; received -1"),
        (["--warmup-steps", "-1"], "train.warmup_steps must be at least 0; received -1"),
        (["--lr", "0"], "train.learning_rate must be positive; received 0.0"),
        (["--set", "eval.iterations=[0]"], "eval.iterations must be at least 1"),
    ],
)
def test_train_refuses_a_nonsense_value_before_opening_data(tmp_path, flags, named):
    line = one_error_line(
        rignet(
            "train",
            "--source",
            "voc",
            "--data-dir",
            tmp_path / "none",
            "--output-dir",
            tmp_path / "r",
            *flags,
        )
    )
    assert named in line
    assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def diverging_run(tmp_path_factory):
    """A ResNet-18 run asked for ImageNet weights whose learning rate makes the loss NaN."""
    out = tmp_path_factory.mktemp("nan") / "run"
    proc = rignet(
        "train",
        "--source",
        "synthetic",
        "--backbone",
        "resnet18",
        "--backbone-weights",
        "imagenet",
        "--num-train-samples",
        "4",
        "--num-eval-samples",
        "2",
        "--crop-size",
        "64",
        "--batch-size",
        "2",
        "--steps",
        "3",
        "--steps-per-epoch",
        "3",
        "--lr",
        "1e30",
        "--num-visualize",
        "0",
        "--quiet",
        "--output-dir",
        out,
        "--set",
        'data.synthetic={"image_size": [64, 64], "mark_size": 6}',
    )
    return proc, out


def test_a_nan_stop_is_one_line_naming_the_step_with_status_1(diverging_run):
    proc, out = diverging_run
    line = one_error_line(proc, status=1)
    assert "training stopped at step" in line and "the loss became nan" in line
    assert "last good checkpoint" in line


def test_a_resnet18_run_records_that_no_imagenet_weights_were_loaded(diverging_run, tmp_path):
    proc, out = diverging_run
    recorded = json.loads((out / "run_config.json").read_text())
    assert recorded["model"]["backbone"] == "resnet18"
    assert recorded["model"]["backbone_weights"] is None
    assert "resnet18 has no published ImageNet weights" in proc.stderr
    shown = rignet(
        "train", "--backbone", "resnet18", "--backbone-weights", "imagenet", "--print-config"
    )
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert json.loads(shown.stdout)["model"]["backbone_weights"] is None
