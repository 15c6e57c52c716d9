"""`--overwrite` replaces a previous export and nothing else: a folder of the user's, the working
folder or a folder with files the export did not write is refused in one line, untouched."""

import json
import os
import subprocess
import sys

import pytest

from rignet_keras.export.files import (
    atomic_directory,
    previous_export_reason,
    previous_saved_model_reason,
)
from rignet_runtime.wire import MANIFEST_FORMAT, MANIFEST_NAME
from tests.harness import ROOT, tiny_rignet


def _tree(folder):
    """{relative path: file bytes or None for a folder} of everything under `folder`."""
    found = {}
    for parent, dirs, files in os.walk(folder):
        for name in dirs:
            found[os.path.relpath(os.path.join(parent, name), folder)] = None
        for name in files:
            path = os.path.join(parent, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = f.read()
    return found


def _users_folder(path):
    path.mkdir()
    (path / "notes.txt").write_text("mine")
    (path / "sub").mkdir()
    (path / "sub" / "data.csv").write_text("1,2\n")
    return path


def _previous_export(path, extra=()):
    path.mkdir()
    (path / "rignet_float32.tflite").write_bytes(b"tflite")
    (path / "saved_model").mkdir()
    (path / "saved_model" / "saved_model.pb").write_bytes(b"pb")
    manifest = {
        "format": MANIFEST_FORMAT,
        "artifacts": [{"file": "rignet_float32.tflite"}, {"file": "saved_model"}],
    }
    (path / MANIFEST_NAME).write_text(json.dumps(manifest))
    for name in extra:
        (path / name).write_text("mine")
    return path


def _replace(path):
    with atomic_directory(path, overwrite=True, is_previous_output=previous_export_reason) as tmp:
        with open(os.path.join(tmp, "new.txt"), "w") as f:
            f.write("new")


def test_a_previous_export_is_replaced(tmp_path):
    out = _previous_export(tmp_path / "out")
    _replace(out)
    assert sorted(os.listdir(out)) == ["new.txt"]


@pytest.mark.parametrize(
    "make, found",
    [
        (_users_folder, r"no manifest\.json"),
        (lambda p: _previous_export(p, extra=("notes.txt",)), r"it holds notes\.txt, which the"),
    ],
)
def test_anything_else_is_refused_untouched(tmp_path, make, found):
    out = make(tmp_path / "out")
    before = _tree(out)
    with pytest.raises(FileExistsError, match=rf"is not a previous export \({found}"):
        _replace(out)
    assert _tree(out) == before


def test_a_manifest_of_another_format_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST_NAME).write_text(json.dumps({"format": "something-else"}))
    assert previous_export_reason(str(out)) == "manifest.json is not an export manifest"
    (out / MANIFEST_NAME).write_text("{not json")
    assert previous_export_reason(str(out)).startswith("manifest.json is unreadable")


def test_the_working_folder_is_never_replaced(tmp_path, monkeypatch):
    out = _previous_export(tmp_path / "out")
    before = _tree(out)
    monkeypatch.chdir(out)
    with pytest.raises(FileExistsError, match="working folder"):
        _replace(".")
    monkeypatch.chdir(out / "saved_model")  # a folder below it
    with pytest.raises(FileExistsError, match="working folder"):
        _replace(out)
    assert _tree(out) == before


def test_a_previous_saved_model_is_recognised(tmp_path):
    folder = tmp_path / "sm"
    folder.mkdir()
    assert previous_saved_model_reason(str(folder)) == "no saved_model.pb"
    (folder / "saved_model.pb").write_bytes(b"pb")
    (folder / "variables").mkdir()
    assert previous_saved_model_reason(str(folder)) is None
    (folder / "notes.txt").write_text("mine")
    assert "notes.txt" in previous_saved_model_reason(str(folder))


@pytest.mark.subprocess
@pytest.mark.parametrize("target", ["folder", "."])
def test_export_script_overwrite_refuses_a_users_folder(tmp_path, target):
    """The command deleted any folder it was pointed at, `.` included; now it refuses in one
    line naming what it found, exits 2, and leaves every file in place."""
    model = tmp_path / "tiny.keras"
    tiny_rignet("parallel", backbone="tiny", calibrate=True, seed=0).save(model)
    out = _users_folder(tmp_path / "work")
    before = _tree(out)
    process = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "export", "export_model.py"),
            str(model),
            str(out) if target == "folder" else ".",
            "--overwrite",
            "--formats",
            "keras",
        ],
        capture_output=True,
        text=True,
        cwd=out if target == "." else tmp_path,
        timeout=300,
        # TensorFlow's log level left to the command, as for a user who has not set it.
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
    )
    assert process.returncode == 2, process.stderr
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), process.stderr
    expected = "no manifest.json" if target == "folder" else "working folder"
    assert "is not a previous export" in lines[0] and expected in lines[0], lines[0]
    assert _tree(out) == before
