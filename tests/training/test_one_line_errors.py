"""A user's mistake met during a run is one line and exit status 2, naming the file at fault:
a bad sample under the default `--on-bad-sample raise` (train and evaluate), a weights file that
is not the backbone's, a damaged backup or `state.json` on `--resume`. Real processes, the
recipe and `rignet` as a user runs them."""

import glob
import os
import shutil
import subprocess
import sys

import pytest

from tests.data.data_fixtures import corrupt_jpeg_body
from tests.harness import ROOT, SMALL_VOC_RUN, VOC_RECIPE, write_voc_fixture
from tests.test_cli_errors import one_error_line, rignet


def recipe(*args):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, VOC_RECIPE, *SMALL_VOC_RUN, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=env,
    )


@pytest.fixture
def bad_data(tmp_path):
    """A VOC fixture whose first training JPEG has random scan data: (data_dir, that file)."""
    data_dir = write_voc_fixture(str(tmp_path / "data"))
    path = sorted(glob.glob(os.path.join(data_dir, "VOCdevkit", "VOC2012", "JPEGImages", "*")))[0]
    corrupt_jpeg_body(path, "random")
    return data_dir, path


@pytest.fixture
def run_copy(voc_run, tmp_path):
    """A copy of the finished two-step run: (data_dir, run folder)."""
    data_dir, out = voc_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    return data_dir, copy


@pytest.mark.subprocess
def test_train_with_a_bad_sample(bad_data, tmp_path):
    data_dir, path = bad_data
    line = one_error_line(recipe("--data-dir", data_dir, "--output-dir", tmp_path / "r"))
    assert line.startswith(f"error: cannot read image {path}: corrupt JPEG data")


@pytest.mark.subprocess
def test_evaluate_with_a_bad_sample(bad_data, voc_run, tmp_path):
    data_dir, path = bad_data
    _, out = voc_run
    flags = ["--data-dir", data_dir, "--split", "train", "--output-dir", tmp_path / "e"]
    line = one_error_line(rignet("evaluate", "--run", out, *flags, "--quiet"))
    assert line.startswith(f"error: cannot read image {path}: corrupt JPEG data")


@pytest.mark.subprocess
def test_backbone_weights_that_are_not_the_backbones(voc_run, tmp_path):
    data_dir, _ = voc_run
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(os.urandom(2000))
    flags = ["--data-dir", data_dir, "--output-dir", tmp_path / "r", "--backbone", "mobilenetv2"]
    line = one_error_line(recipe(*flags, "--set", f"model.backbone_weights={garbage}"))
    assert f"backbone weights {str(garbage)!r} do not load into backbone 'mobilenetv2'" in line


@pytest.mark.subprocess
def test_resume_from_a_truncated_backup(run_copy):
    data_dir, run = run_copy
    (weights,) = glob.glob(str(run / "backup" / "*.weights.h5"))
    os.truncate(weights, 5000)
    line = one_error_line(recipe("--data-dir", data_dir, "--output-dir", run, "--resume"))
    assert "error: backup " in line and f"{os.path.basename(weights)} cannot be loaded" in line


@pytest.mark.subprocess
def test_resume_from_a_truncated_state_file(run_copy):
    data_dir, run = run_copy
    state = run / "backup" / "state.json"
    os.truncate(state, 20)
    line = one_error_line(recipe("--data-dir", data_dir, "--output-dir", run, "--resume"))
    assert "state.json is damaged (not valid JSON" in line and str(run.name) in line
