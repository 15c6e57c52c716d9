"""The downloader against a local HTTP server on 127.0.0.1 (a thread of this process): success and
extraction, checksum mismatch, interrupted transfers resumed with a Range request."""

import io
import os
import tarfile
import zipfile

import numpy as np
import pytest

from rignet_keras.data import (
    Archive,
    DownloadError,
    cocostuff_records,
    download_archive,
    download_file,
    extract_archive,
    voc_records,
)
from tests.data.data_fixtures import md5, voc_tar


def payload(n=300_000, seed=0):
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def test_download_and_extract(server, tmp_path):
    data = voc_tar(tmp_path)
    server.files["/voc.tar.gz"] = data
    archive = Archive(
        "voc",
        f"{server.url}/voc.tar.gz",
        "voc.tar.gz",
        md5(data),
        target="VOCdevkit/VOC2012",
        member="VOCdevkit/VOC2012",
    )
    data_dir = tmp_path / "data"
    out = download_archive(archive, data_dir, progress=False, keep_archive=True)
    assert out == os.path.join(str(data_dir), "VOCdevkit", "VOC2012")
    assert len(voc_records(data_dir, "train")) == 3
    with open(data_dir / "downloads" / "voc.tar.gz", "rb") as f:
        assert f.read() == data
    assert not (data_dir / "downloads" / "voc.tar.gz.part").exists()
    assert not [p for p in os.listdir(data_dir) if p.startswith(".extract-")]
    # a second call finds the dataset and downloads nothing
    n = len(server.requests)
    download_archive(archive, data_dir, progress=False)
    assert len(server.requests) == n


def test_checksum_mismatch(server, tmp_path):
    data = voc_tar(tmp_path)
    server.files["/voc.tar.gz"] = data
    archive = Archive(
        "voc",
        f"{server.url}/voc.tar.gz",
        "voc.tar.gz",
        "0" * 32,
        target="VOCdevkit/VOC2012",
        member="VOCdevkit/VOC2012",
    )
    data_dir = tmp_path / "data"
    with pytest.raises(DownloadError, match=f"checksum mismatch for {archive.url}") as e:
        download_archive(archive, data_dir, progress=False)
    assert f"MD5 {md5(data)}, expected {'0' * 32}" in str(e.value)
    final = data_dir / "downloads" / "voc.tar.gz"
    assert not final.exists() and not (data_dir / "downloads" / "voc.tar.gz.part").exists()
    assert not (data_dir / "VOCdevkit").exists()


def test_interrupted_download_resumes_with_range(server, tmp_path):
    data = payload()
    server.files["/f.bin"] = data
    server.cuts, server.cut_after = 1, 100_000
    path = tmp_path / "f.bin"
    download_file(f"{server.url}/f.bin", path, md5=md5(data), backoff=0, progress=False)
    assert path.read_bytes() == data
    assert [r["range"] for r in server.requests] == [None, "bytes=100000-"]
    assert not (tmp_path / "f.bin.part").exists()


def test_existing_part_resumes_with_range(server, tmp_path):
    data = payload(seed=1)
    server.files["/f.bin"] = data
    half = len(data) // 2
    (tmp_path / "f.bin.part").write_bytes(data[:half])
    path = tmp_path / "f.bin"
    download_file(f"{server.url}/f.bin", path, md5=md5(data), progress=False)
    assert path.read_bytes() == data
    assert [r["range"] for r in server.requests] == [f"bytes={half}-"]


def test_complete_part_is_finished_without_downloading_again(server, tmp_path):
    data = payload(seed=2)
    server.files["/f.bin"] = data
    (tmp_path / "f.bin.part").write_bytes(data)
    download_file(f"{server.url}/f.bin", tmp_path / "f.bin", md5=md5(data), progress=False)
    assert (tmp_path / "f.bin").read_bytes() == data
    assert [r["range"] for r in server.requests] == [f"bytes={len(data)}-"]  # answered 416


def test_server_without_range_support_starts_over(server, tmp_path):
    data = payload(seed=3)
    server.files["/f.bin"] = data
    server.ranges = False
    (tmp_path / "f.bin.part").write_bytes(b"x" * 1000)  # not even the right bytes
    download_file(f"{server.url}/f.bin", tmp_path / "f.bin", md5=md5(data), progress=False)
    assert (tmp_path / "f.bin").read_bytes() == data


def test_incomplete_after_retries_keeps_the_part(server, tmp_path):
    data = payload(seed=4)
    server.files["/f.bin"] = data
    server.cuts, server.cut_after = 10, 1000
    path = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match="incomplete after 2 retries") as e:
        download_file(
            f"{server.url}/f.bin", path, md5=md5(data), retries=2, backoff=0, progress=False
        )
    assert "run the same command again to resume" in str(e.value)
    assert not path.exists()
    part = tmp_path / "f.bin.part"
    assert part.read_bytes() == data[:3000]  # three cut responses, appended in order
    server.cuts = 0
    download_file(f"{server.url}/f.bin", path, md5=md5(data), progress=False)
    assert path.read_bytes() == data


def test_size_only_verification_without_md5(server, tmp_path, caplog):
    caplog.set_level("INFO", logger="rignet_keras.data")
    data = payload(seed=5)
    server.files["/f.bin"] = data
    download_file(f"{server.url}/f.bin", tmp_path / "f.bin", md5=None, progress=False)
    assert (tmp_path / "f.bin").read_bytes() == data
    assert f"verified the size only ({len(data)} bytes); its MD5 is {md5(data)}" in caplog.text


def test_http_error_is_named(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_file(f"{server.url}/missing.bin", tmp_path / "m.bin", progress=False)
    assert not (tmp_path / "m.bin").exists()


def test_zip_without_single_folder(server, tmp_path):
    """COCO-Stuff's zip: extracted whole into <data_dir>/cocostuff-10k, found by the reader."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("imageLists/train.txt", "a\n")
        zf.writestr("images/a.jpg", b"jpeg")
        zf.writestr("annotations/a.mat", b"mat")
    server.files["/c.zip"] = buf.getvalue()
    archive = Archive("cocostuff10k", f"{server.url}/c.zip", "c.zip", None, target="cocostuff-10k")
    out = download_archive(archive, tmp_path / "data", progress=False)
    assert out == os.path.join(str(tmp_path / "data"), "cocostuff-10k")
    assert [r.id for r in cocostuff_records(tmp_path / "data", "train")] == ["a"]
    assert not (tmp_path / "data" / "downloads" / "c.zip").exists()  # not kept by default


def test_unsafe_tar_is_refused(tmp_path):
    path = tmp_path / "evil.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(DownloadError, match="cannot extract"):
        extract_archive(path, tmp_path / "data", "x")
    assert not (tmp_path / "outside.txt").exists()
    assert not [p for p in os.listdir(tmp_path / "data") if p.startswith(".extract-")]


def test_archive_without_expected_folder(tmp_path):
    path = tmp_path / "a.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("other/file.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(DownloadError, match="holds no folder 'VOCdevkit/VOC2012'"):
        extract_archive(path, tmp_path / "data", "VOCdevkit/VOC2012", "VOCdevkit/VOC2012")
    assert not (tmp_path / "data" / "VOCdevkit").exists()


def test_non_loopback_connections_are_blocked():
    import socket

    with pytest.raises(RuntimeError, match="must not open network connections"):
        socket.create_connection(("192.0.2.1", 80), timeout=0.1)
