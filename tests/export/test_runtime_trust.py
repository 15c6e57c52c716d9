"""The runtime trusts an export folder only as far as its manifest vouches for it: each file's
size and SHA-256 are checked before use, names may not leave the folder, and a device's own
latencies go into a copy of the manifest that later budget choices read."""

import json
import shutil

import pytest
from PIL import Image

import rignet_runtime as runtime
from tests.harness import fresh_images, run_runner_script


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


# --------------------------------------------------------------------------------------------
# Impossible numbers in a manifest are refused on load, one line naming the entry


def _manifest_with(signature_fields, tmp_path):
    """A minimal manifest folder whose one tflite artifact has a ui_1 signature with fields."""
    from rignet_runtime.wire import MANIFEST_FORMAT, MANIFEST_VERSION

    signature = {"name": "ui_1", "ui": 1, "latency_ms": {"median_ms": 4.0}}
    signature.update(signature_fields)
    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "artifacts": [{"file": "rignet_float32.tflite", "signatures": [signature]}],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


QUALITY = {"miou": 0.4, "pixel_accuracy": 0.8, "images": 8, "source": "synthetic"}

IMPOSSIBLE = [
    (
        {"quality": dict(QUALITY, miou=5.0)},
        "quality.miou must be at least 0 and at most 1",
    ),
    ({"latency_ms": {"median_ms": -5.0}}, "latency_ms.median_ms must be above 0; found -5.0"),
    ({"quality": dict(QUALITY, miou=float("nan"))}, "quality.miou must be finite; found nan"),
    ({"quality": dict(QUALITY, miou="high")}, "quality.miou must be a number; found 'high'"),
    ({"ui": 0}, "ui must be a whole number >= 1; found 0"),
    ({"quality": dict(QUALITY, images=0)}, "quality.images must be a whole number >= 1"),
    ({"quality_by_iterations": [QUALITY, dict(QUALITY, pixel_accuracy=-0.1)]}, "iteration 2"),
]


@pytest.mark.parametrize("fields, fault", IMPOSSIBLE)
def test_impossible_manifest_numbers_are_refused_on_load(tmp_path, fields, fault):
    folder = _manifest_with(fields, tmp_path)
    with pytest.raises(runtime.RunnerError) as error:
        runtime.load_manifest(folder)
    message = str(error.value)
    assert "\n" not in message
    assert "rignet_float32.tflite signature ui_1" in message and fault in message, message


def test_possible_manifest_numbers_load(tmp_path):
    folder = _manifest_with({"quality": QUALITY, "latency_ms": {"median_ms": 4.0}}, tmp_path)
    assert runtime.load_manifest(folder)["artifacts"][0]["signatures"][0]["quality"] == QUALITY


@pytest.mark.export
@pytest.mark.subprocess
@pytest.mark.parametrize("fields, fault", IMPOSSIBLE[:4])
def test_the_runner_refuses_impossible_manifest_numbers(export_copy, fields, fault):
    """The runner chose by an mIoU of 5.0 ("expected mIoU 500.0"), printed -5 ms, skipped NaN
    and raised a TypeError on a string; now it exits 2 with one line naming the entry."""
    folder, image = export_copy

    def change(manifest):
        for artifact in manifest["artifacts"]:
            for signature in artifact.get("signatures", []):
                if signature.get("name") == "ui_1" and artifact["file"].endswith("float32.tflite"):
                    quality = signature.get("quality") or dict(QUALITY)
                    signature.update(json.loads(json.dumps(fields)))
                    if "quality" in fields:
                        signature["quality"] = {**quality, **fields["quality"]}

    _edit_manifest(folder, change)
    status, out, err = run_runner_script(image, "--manifest", folder, "--quality-floor", "1")
    assert status == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "rignet_float32.tflite signature ui_1" in lines[0] and fault in lines[0], lines[0]
