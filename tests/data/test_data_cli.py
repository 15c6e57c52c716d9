"""The data commands: `rignet_keras.data.cli.main(argv)` and `python -m rignet_keras.data`."""

import os
import subprocess
import sys

import pytest

from rignet_keras.data.cli import main


def test_synthetic_validate(tmp_path, capsys):
    data = str(tmp_path / "syn")
    argv = [
        "-q",
        "synthetic",
        "--output-dir",
        data,
        "--num-train",
        "6",
        "--num-val",
        "2",
        "--image-size",
        "48x64",
    ]
    assert main(argv) == 0
    assert main(["-q", "validate", "synthetic", "--data-dir", data, "--split", "val"]) == 0
    assert "2 samples checked, none skipped" in capsys.readouterr().out


def test_missing_data_is_one_line_with_the_download_command(tmp_path, capsys):
    assert main(["-q", "validate", "voc", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: VOC 2012 folder not found")
    assert "rignet data download voc" in err
    assert "Traceback" not in err


def test_download_checksum_mismatch_from_a_mirror(server, tmp_path, capsys):
    server.files["/VOCtrainval.tar"] = b"not the VOC tar"
    argv = [
        "-q",
        "download",
        "voc",
        "--data-dir",
        str(tmp_path),
        "--url",
        f"{server.url}/VOCtrainval.tar",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and "expected 6cd6e144f989b92b3379bac3b3de84fd" in err
    assert not os.path.exists(tmp_path / "downloads" / "VOCtrainval_11-May-2012.tar")


def test_grid(tmp_path):
    path = str(tmp_path / "grid.png")
    assert main(["grid", "--output", path, "--num-samples", "2"]) == 0
    assert os.path.getsize(path) > 1000


@pytest.mark.subprocess
def test_python_dash_m(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-m", "rignet_keras.data", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0
    for command in ("download", "prepare", "validate", "synthetic", "grid"):
        assert command in result.stdout
    assert "convert" not in result.stdout  # the TFRecord format is gone: TFDS builders instead


def test_prepare_a_builder_from_the_downloaded_folders(voc_tree, tmp_path, capsys):
    from tests.data.data_fixtures import corrupt_jpeg_body

    tfds_dir = str(tmp_path / "tfds")
    argv = ["-q", "prepare", "rignet_voc_aug", "--manual-dir", voc_tree.root, "--data-dir"]
    assert main([*argv, tfds_dir]) == 0
    assert "prepared rignet_voc_aug 1.0.0 in " in capsys.readouterr().out
    corrupt_jpeg_body(os.path.join(voc_tree.voc, "JPEGImages", "2008_000003.jpg"), "huffman")
    assert main([*argv, str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot read image ") and "2008_000003.jpg" in err
    assert "\n" not in err
    assert main([*argv, str(tmp_path / "skip"), "--on-bad-sample", "skip"]) == 0
    out = capsys.readouterr().out
    assert "train 5" in out and "skipped 1" in out and "2008_000003" in out


def test_prepare_without_the_downloads_is_one_line(tmp_path, capsys):
    argv = ["-q", "prepare", "rignet_cocostuff10k/182", "--manual-dir", str(tmp_path / "none")]
    assert main([*argv, "--data-dir", str(tmp_path / "tfds")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "rignet data download cocostuff10k" in err
