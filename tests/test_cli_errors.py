"""The command line refuses a user error in one line with exit status 2 (no traceback), before
any work; a training stopped on a NaN is one line with exit status 1.

The `subprocess` tests run the real command (`python -m rignet_cli`, what the `rignet`
script calls); the fast lane calls `rignet_keras.cli.main` in this process with the same flags
and checks the same line and status (the error mapping itself is `report_errors`)."""

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
        [sys.executable, "-m", "rignet_cli", *map(str, args)],
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


@pytest.mark.subprocess
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


@pytest.mark.subprocess
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


@pytest.mark.subprocess
def test_predict_into_its_input_folder_refuses_to_overwrite_an_input(image_dir, tmp_path):
    before = (image_dir / "a.png").read_bytes()
    line = one_error_line(
        rignet("predict", image_dir, "--model", tmp_path / "m.keras", "--output-dir", image_dir)
    )
    assert "would overwrite the input image" in line and "a.png" in line
    assert (image_dir / "a.png").read_bytes() == before
    assert sorted(os.listdir(image_dir)) == ["a.png"]


@pytest.mark.subprocess
def test_predict_names_a_model_file_keras_cannot_read(image_dir, tmp_path):
    (tmp_path / "m.keras").write_text("not a model\n")
    line = one_error_line(
        rignet(
            "predict", image_dir, "--model", tmp_path / "m.keras", "--output-dir", tmp_path / "out"
        )
    )
    assert f"--model {str(tmp_path / 'm.keras')!r} is not a Keras model file" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.subprocess
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


@pytest.mark.subprocess
def test_data_synthetic_refuses_a_negative_count(tmp_path):
    line = one_error_line(
        rignet("data", "synthetic", "--output-dir", tmp_path / "s", "--num-train", "-1")
    )
    assert "--num-train must be at least 0; received -1" in line
    assert not (tmp_path / "s").exists()


QUICKSTART_NONSENSE = [
    (["--steps", "0"], "--steps must be at least 1; received 0"),
    (["--num-train", "-1"], "--num-train must be at least 1; received -1"),
    (["--iterations", "0"], "--iterations must be at least 1; received 0"),
    (["--steps", "x"], "--steps: invalid int value: 'x'"),
]


@pytest.mark.parametrize("flags, named", QUICKSTART_NONSENSE)
@pytest.mark.subprocess
def test_quickstart_refuses_a_nonsense_flag(tmp_path, flags, named):
    line = one_error_line(rignet("quickstart", "--fast", "--output-dir", tmp_path / "q", *flags))
    assert named in line
    assert not (tmp_path / "q").exists()


TRAIN_NONSENSE = [
    (["--steps", "10", "--warmup-steps", "50"], "warmup_steps (50) must be smaller than steps"),
    (["--num-train-samples", "-1"], "data.num_train_samples must be at least 1; received -1"),
    (["--warmup-steps", "-1"], "train.warmup_steps must be at least 0; received -1"),
    (["--lr", "0"], "train.learning_rate must be positive; received 0.0"),
    (["--set", "eval.iterations=[0]"], "eval.iterations must be at least 1"),
]


@pytest.mark.parametrize("flags, named", TRAIN_NONSENSE)
@pytest.mark.subprocess
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


@pytest.mark.subprocess
def test_a_nan_stop_is_one_line_naming_the_step_with_status_1(diverging_run):
    proc, out = diverging_run
    line = one_error_line(proc, status=1)
    assert "training stopped at step" in line and "the loss became nan" in line
    assert "last good checkpoint" in line


@pytest.mark.subprocess
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


# --------------------------------------------------------------------------------------------
# The same refusals, in this process (fast lane)


def in_process(capsys, *args):
    """`rignet ARGS...` through `rignet_keras.cli.main` here; (exit status, stderr lines)."""
    from rignet_keras.cli import main

    status = main([str(a) for a in args])
    return status, capsys.readouterr().err.strip().splitlines()


def one_error_line_in_process(status, lines, expected=2):
    assert status == expected, lines
    assert lines and lines[-1].startswith("error: "), lines
    assert all(line.startswith("note: ") for line in lines[:-1]), lines
    return lines[-1]


@pytest.mark.parametrize(
    "raised, status, line",
    [
        (ValueError("bad\n  value"), 2, "error: bad value"),
        (FileNotFoundError("no such file"), 2, "error: no such file"),
        (FileExistsError("exists"), 2, "error: exists"),
        (FloatingPointError("loss is NaN at step 3"), 1, "error: loss is NaN at step 3"),
        (KeyboardInterrupt(), 130, "error: interrupted"),
    ],
)
def test_report_errors_maps_each_error_to_one_line_and_a_status(capsys, raised, status, line):
    from rignet_keras.cli import report_errors

    def command():
        raise raised

    assert report_errors(command) == status
    assert capsys.readouterr().err.strip().splitlines() == [line]


def test_report_errors_lets_a_bug_raise():
    from rignet_keras.cli import report_errors

    def command():
        raise KeyError("a bug, not a user error")

    with pytest.raises(KeyError):
        report_errors(command)


@pytest.mark.parametrize("ui", ["0", "-3"])
def test_predict_refuses_a_ui_below_one_in_process(capsys, image_dir, tmp_path, ui):
    out = tmp_path / "out"
    args = ("predict", image_dir, "--model", tmp_path / "m.keras", "--ui", ui, "--output-dir", out)
    line = one_error_line_in_process(*in_process(capsys, *args))
    assert f"--ui must be at least 1; received {ui}" in line
    assert not out.exists()


def test_predict_names_a_model_file_keras_cannot_read_in_process(capsys, image_dir, tmp_path):
    (tmp_path / "m.keras").write_text("not a model\n")
    out = tmp_path / "out"
    args = ("predict", image_dir, "--model", tmp_path / "m.keras", "--output-dir", out)
    line = one_error_line_in_process(*in_process(capsys, *args))
    assert f"--model {str(tmp_path / 'm.keras')!r} is not a Keras model file" in line
    assert not out.exists()


def test_data_synthetic_refuses_a_negative_count_in_process(capsys, tmp_path):
    out = tmp_path / "s"
    args = ("data", "synthetic", "--output-dir", out, "--num-train", "-1")
    line = one_error_line_in_process(*in_process(capsys, *args))
    assert "--num-train must be at least 0; received -1" in line
    assert not out.exists()


@pytest.mark.parametrize("flags, named", QUICKSTART_NONSENSE)
def test_quickstart_refuses_a_nonsense_flag_in_process(capsys, tmp_path, flags, named):
    out = tmp_path / "q"
    line = one_error_line_in_process(
        *in_process(capsys, "quickstart", "--fast", "--output-dir", out, *flags)
    )
    assert named in line
    assert not out.exists()


@pytest.mark.parametrize("flags, named", TRAIN_NONSENSE)
def test_train_refuses_a_nonsense_value_in_process(capsys, tmp_path, flags, named):
    out = tmp_path / "r"
    args = ("train", "--source", "voc", "--data-dir", tmp_path / "none", "--output-dir", out)
    line = one_error_line_in_process(*in_process(capsys, *args, *flags))
    assert named in line
    assert not out.exists()


QUICK_TRAIN = ["train", "--source", "synthetic", "--backbone", "resnet18", "--steps", "2"]


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--set", 'export.formats=["pdf"]'],
            "export.formats must be a non-empty subset of",
        ),
        (
            ["--set", "train.random_ui_method=bogus"],
            "train.random_ui_method must be one of ('auto', 'switch', 'prefix'); received 'bogus'",
        ),
        (
            ["--feedback-blocks", "4", "--iterations", "3", "--random-ui", "4"],
            "train.train_iterations=[1, 4] trains up to ui 4 but model.num_iterations is 3",
        ),
        (
            ["--source", "voc", "--set", "data.source=synthetic"],
            "data.source is set twice, by --source voc and by --set data.source=synthetic",
        ),
        (
            ["--set", "train.seed=1", "--set", "train.seed=2"],
            "train.seed is set twice, by --set train.seed=1 and by --set train.seed=2",
        ),
    ],
)
def test_the_whole_configuration_is_checked_before_any_work(tmp_path, flags, message):
    """Each of these used to fail after training (or never): now one line, exit 2, and no run
    folder was made."""
    quick = QUICK_TRAIN[3:] if flags[0] == "--source" else QUICK_TRAIN[1:]
    line = one_error_line(rignet("train", *quick, *flags, "--output-dir", tmp_path / "run"))
    assert message in line
    assert not (tmp_path / "run").exists()
