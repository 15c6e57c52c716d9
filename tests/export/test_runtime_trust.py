"""The runtime trusts an export folder only as far as its manifest vouches for it: each file's
size and SHA-256 are checked before use, names may not leave the folder, and a device's own
latencies go into a copy of the manifest that later budget choices read."""

import json
import shutil

import pytest
from PIL import Image

from rignet_keras import runtime
from tests.harness import fresh_images


@pytest.fixture()
def export_copy(exports, tmp_path):
    """A private copy of the "parallel" export (tests here edit it) and a test image."""
    _, _, folder = exports.get("parallel")
    copy = tmp_path / "export"
    shutil.copytree(folder, copy)
    Image.fromarray(fresh_images(1, seed=41)[0]).save(tmp_path / "a.png")
    return copy, tmp_path / "a.png"


def _edit_manifest(folder, change):
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def _main(capsys, *args):
    status = runtime.main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.export
def test_the_exporter_records_every_files_size_and_sha256(exports):
    _, manifest, folder = exports.get("parallel")
    files = [a for a in manifest["artifacts"] if (folder / a["file"]).is_file()]
    assert {a["format"] for a in files} >= {"tflite", "onnx", "keras"}
    for artifact in files:
        path = folder / artifact["file"]
        assert artifact["size_bytes"] == path.stat().st_size
        assert artifact["sha256"] == runtime.sha256_file(path)
    written = json.loads((folder / "manifest.json").read_text())["artifacts"]
    assert [a.get("sha256") for a in written] == [a.get("sha256") for a in manifest["artifacts"]]


@pytest.mark.export
def test_a_file_replaced_after_the_export_is_refused(export_copy, capsys):
    folder, image = export_copy
    shutil.copyfile(folder / "rignet_float16.tflite", folder / "rignet_float32.tflite")
    status, _, err = _main(
        capsys,
        image,
        "--manifest",
        folder,
        "--precision",
        "float32",
        "--ui",
        2,
        "--output-dir",
        folder.parent / "out",
    )
    assert status == 2
    assert "rignet_float32.tflite" in err and "changed or replaced after the export" in err
    assert not (folder.parent / "out").exists()
    status, _, err = _main(capsys, "--manifest", folder, "--benchmark", "--runs", 1)
    assert status == 2 and "rignet_float32.tflite" in err


@pytest.mark.export
def test_same_size_edit_fails_the_hash(export_copy, capsys):
    folder, image = export_copy
    model = folder / "rignet_float32.tflite"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    status, _, err = _main(capsys, image, "--manifest", folder, "--precision", "float32")
    assert status == 2
    assert "rignet_float32.tflite" in err and "SHA-256" in err


@pytest.mark.export
def test_manifest_without_hashes_still_runs(export_copy, capsys):
    """Exports written before hashes were recorded are checked by size only."""
    folder, image = export_copy

    def drop_hashes(manifest):
        for artifact in manifest["artifacts"]:
            artifact.pop("sha256", None)

    _edit_manifest(folder, drop_hashes)
    out_dir = folder.parent / "out"
    status, out, err = _main(
        capsys, image, "--manifest", folder, "--ui", 1, "--output-dir", out_dir, "--no-overlay"
    )
    assert status == 0, err
    assert (out_dir / "a.png").exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../outside.tflite", "leaves the export folder"),
        ("sub/../../outside.tflite", "leaves the export folder"),
        ("/etc/passwd", "is absolute"),
    ],
)
@pytest.mark.export
def test_artifact_names_cannot_leave_the_export_folder(export_copy, name, message):
    folder, _ = export_copy

    def retarget(manifest):
        for artifact in manifest["artifacts"]:
            if artifact["file"] == "rignet_float32.tflite":
                artifact["file"] = name

    _edit_manifest(folder, retarget)
    with pytest.raises(runtime.RunnerError, match=message) as error:
        runtime.load_manifest(folder)
    assert repr(name) in str(error.value)


@pytest.mark.export
def test_device_latencies_go_into_a_copy_that_budgets_then_use(export_copy, capsys):
    folder, image = export_copy
    device = folder / "device_manifest.json"
    status, out, err = _main(
        capsys,
        "--manifest",
        folder,
        "--precision",
        "float32",
        "--benchmark",
        "--runs",
        2,
        "--write-manifest",
        device,
    )
    assert status == 0, err
    assert f"wrote this device's latencies to {device}" in out
    original = runtime.load_manifest(folder)
    copy = runtime.load_manifest(device)
    assert copy["latency"]["source"].startswith("the runtime's benchmark on ")
    for mine, theirs in zip(copy["artifacts"], original["artifacts"], strict=True):
        assert mine["file"] == theirs["file"] and mine.get("sha256") == theirs.get("sha256")
        for sig in mine["signatures"]:
            if mine["format"] != "tflite":
                continue
            if mine["precision"] == "float32":
                assert sig["latency_ms"]["runs"] == 2, (mine["file"], sig["name"])
            else:  # not measured here: no figure from another machine is kept
                assert sig["latency_ms"] is None, (mine["file"], sig["name"])
    ui2 = next(
        s
        for a in copy["artifacts"]
        if a["file"] == "rignet_float32.tflite"
        for s in a["signatures"]
        if s["name"] == "ui_2"
    )
    budget = ui2["latency_ms"]["median_ms"]
    choice = runtime.select_graph(copy, budget, precision="float32")
    assert choice["ui"] >= 2 and choice["latency_ms"] <= budget
    status, out, err = _main(
        capsys,
        image,
        "--manifest",
        device,
        "--budget-ms",
        1e6,
        "--precision",
        "float32",
        "--output-dir",
        folder.parent / "out",
    )
    assert status == 0, err
    assert "measured by the runtime's benchmark on" in out.splitlines()[0]


@pytest.mark.export
def test_write_manifest_refuses_other_folders_and_the_original(export_copy, capsys):
    folder, _ = export_copy
    for target, message in (
        (folder.parent / "elsewhere.json", "must be in the export folder"),
        (folder / "manifest.json", "is the exporter's manifest"),
        (folder / "device.txt", "must be a .json file"),
    ):
        status, out, err = _main(
            capsys, "--manifest", folder, "--benchmark", "--write-manifest", target
        )
        assert status == 2 and message in err and str(target) in err, err
        assert out == ""  # refused before any benchmark ran
