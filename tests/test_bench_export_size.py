"""`bench.export_size --reuse`: an earlier export is timed again only when its manifest records
the export asked for and its files are as exported; anything else is refused in one line, before
the model is built."""

import json

import pytest

from bench import export_size
from rignet_runtime import MANIFEST_FORMAT, MANIFEST_NAME, MANIFEST_VERSION
from rignet_runtime.manifest import sha256_file

ARGS = ["--backbone", "resnet18", "--size", "321", "321", "--uis", "1", "2"]


def write_export(folder, layout, backbone="resnet18", precisions=("float32", "int8")):
    """A manifest.json in `folder` as the exporter writes it (the fields --reuse reads), with a
    small file per precision."""
    folder.mkdir(parents=True)
    artifacts = []
    for precision in precisions:
        name = f"rignet_{precision}.tflite"
        (folder / name).write_bytes(b"tflite " + precision.encode())
        artifacts.append(
            {
                "file": name,
                "format": "tflite",
                "precision": precision,
                "size_bytes": (folder / name).stat().st_size,
                "sha256": sha256_file(folder / name),
                "signatures": [],
            }
        )
    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "model": {"backbone": backbone, "feedback_blocks": [4, 6], "num_classes": 21},
        "input": {"height": 321, "width": 321},
        "uis": [1, 2],
        "tflite_layout": {"gated_batch_norm": layout},
        "artifacts": artifacts,
    }
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))


def refusal(argv):
    with pytest.raises(SystemExit) as exit_:
        export_size.main(argv)
    message = str(exit_.value.code)
    assert "\n" not in message
    return message


def test_reuse_accepts_the_export_asked_for(tmp_path):
    write_export(tmp_path / "corrected", "corrected")
    args = export_size.parse_args([*ARGS, "--work-dir", str(tmp_path), "--reuse"])
    manifest = export_size.reused_manifest(str(tmp_path / "corrected"), args, "corrected")
    assert [a["file"] for a in manifest["artifacts"]] == [
        "rignet_float32.tflite",
        "rignet_int8.tflite",
    ]


def test_reuse_refuses_another_export_in_one_line(tmp_path):
    write_export(tmp_path / "corrected", "corrected", backbone="resnet50")
    write_export(tmp_path / "folded", "corrected", precisions=("float32",))
    reuse = [*ARGS, "--work-dir", str(tmp_path), "--reuse"]
    message = refusal([*reuse, "--layouts", "corrected"])
    assert message == (
        f"--reuse: {tmp_path / 'corrected' / MANIFEST_NAME} was exported with backbone "
        "'resnet50', not 'resnet18': export again without --reuse or pick its --work-dir"
    )
    message = refusal([*reuse, "--layouts", "folded"])
    assert "precisions ['float32'], not ['float32', 'int8']" in message
    assert "layout 'corrected', not 'folded'" in message
    assert "does not exist" in refusal([*ARGS, "--work-dir", str(tmp_path / "none"), "--reuse"])


def test_reuse_refuses_a_file_changed_after_the_export(tmp_path):
    write_export(tmp_path / "folded", "folded")
    (tmp_path / "folded" / "rignet_int8.tflite").write_bytes(b"tflite int9")  # same size
    message = refusal([*ARGS, "--work-dir", str(tmp_path), "--reuse", "--layouts", "folded"])
    assert message.startswith("--reuse: ") and "rignet_int8.tflite" in message
    assert "SHA-256" in message


@pytest.mark.parametrize(
    "argv, error",
    [
        (["--rounds", "-1"], "--rounds must be >= 0 (0: export only); received -1"),
        (["--reuse"], "--reuse needs --work-dir"),
    ],
)
def test_rounds_and_reuse_are_checked(argv, error, capsys):
    with pytest.raises(SystemExit) as exit_:
        export_size.parse_args(argv)
    assert exit_.value.code == 2
    assert error in capsys.readouterr().err
