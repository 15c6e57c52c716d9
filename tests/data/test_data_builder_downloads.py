"""The builders' downloads through TFDS's download manager: fixture archives in the real formats
(the VOC tar with VOCdevkit/VOC2012, SBD's benchmark.tgz with benchmark_RELEASE, the COCO-Stuff
zip) served from a loopback HTTP server; the prepared datasets equal those prepared from a
manual_dir; a registered checksum or a known MD5 that differs, and an unreachable server, each
fail in one line; a manual_dir holding the layouts wins; the registered checksums are those of
the one table of URLs, `rignet_keras.data.download.ARCHIVES`."""

import dataclasses
import hashlib
import io
import os
import shutil
import sys
import tarfile
import time
import zipfile

import pytest
import tensorflow_datasets as tfds
from etils import epath

import rignet_keras.data  # noqa: F401 (registers the builders: TFDS is imported already)
from rignet_keras.data import DatasetError
from rignet_keras.data.builders import RignetCocostuff10k, RignetVocAug
from rignet_keras.data.cli import main
from rignet_keras.data.download import ARCHIVES
from tests.data.test_data_builders import examples, prepare

tfds.disable_progress_bar()

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there


def tar_bytes(root, member, mode):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        tar.add(os.path.join(root, member), arcname=member)
    return buf.getvalue()


def zip_bytes(folder):
    """The COCO-Stuff zip: images/, annotations/, imageLists/ at its top level."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for base, _, files in os.walk(folder):
            for name in sorted(files):
                path = os.path.join(base, name)
                zf.write(path, os.path.relpath(path, folder))
    return buf.getvalue()


def loopback_builder(base, tmp_path, host, files, *, registered=(), md5=None):
    """A test-only subclass of `base` (not registered with TFDS) whose `ARCHIVES` point at `host`
    and whose checksums file is a temporary one registering `registered` (keys of `files`,
    the archive bytes by ARCHIVES key); `md5` replaces the table's MD5s by key."""
    archives = {
        key: dataclasses.replace(a, url=f"{host}/{a.filename}", md5=(md5 or {}).get(key, a.md5))
        for key, a in ARCHIVES.items()
    }
    checksums = tmp_path / f"checksums-{base.__name__}-{len(os.listdir(tmp_path))}.tsv"
    lines = []
    for key in registered:
        data, a = files[key], archives[key]
        digest = hashlib.sha256(data).hexdigest() if key != "wrong" else "0" * 64
        lines.append(f"{a.url}\t{len(data)}\t{digest}\t{a.filename}")
    checksums.write_text("".join(line + "\n" for line in lines))

    class Loopback(base, skip_registration=True):
        ARCHIVES = archives

        @tfds.core.utils.classproperty
        @classmethod
        def _checksums_path(cls):
            return epath.Path(checksums)

    Loopback.__name__ = f"Loopback{base.__name__}"
    return Loopback


def prepare_with(cls, data_dir, manual_dir=None, **kwargs):
    builder = cls(data_dir=str(data_dir), **kwargs)
    config = tfds.download.DownloadConfig(
        manual_dir=None if manual_dir is None else str(manual_dir)
    )
    builder.download_and_prepare(download_config=config)
    return builder


def assert_same_examples(a, b, split):
    ea, eb = examples(a, split), examples(b, split)
    assert sorted(ea) == sorted(eb) and ea
    for sample_id, ex in ea.items():
        other = eb[sample_id]
        assert ex["image"].shape == other["image"].shape
        assert (ex["image"] == other["image"]).all()
        assert ex["mask"].shape == other["mask"].shape
        assert (ex["mask"] == other["mask"]).all()


@pytest.fixture
def voc_files(voc_tree):
    return {
        "voc": tar_bytes(voc_tree.root, "VOCdevkit", "w"),
        "sbd": tar_bytes(voc_tree.root, "benchmark_RELEASE", "w:gz"),
    }


def serve(server, files):
    for key, data in files.items():
        server.files[f"/{ARCHIVES[key].filename}"] = data


def test_voc_aug_downloaded_equals_manual(voc_tree, voc_files, server, tmp_path):
    serve(server, voc_files)
    md5 = {"sbd": hashlib.md5(voc_files["sbd"]).hexdigest()}
    cls = loopback_builder(
        RignetVocAug, tmp_path, server.url, voc_files, registered=("voc",), md5=md5
    )
    downloaded = prepare_with(cls, tmp_path / "dl")
    manual = prepare("rignet_voc_aug", tmp_path / "manual", voc_tree.root)
    for split in ("train", "val"):
        assert_same_examples(downloaded, manual, split)
    assert downloaded.info.splits["train"].num_examples == 6
    assert tuple(downloaded.info.metadata["class_names"]) == tuple(
        manual.info.metadata["class_names"]
    )
    assert sorted(r["path"] for r in server.requests) == [
        "/VOCtrainval_11-May-2012.tar",
        "/benchmark.tgz",
    ]


def test_cocostuff_downloaded_equals_manual(coco_tree, server, tmp_path):
    files = {"cocostuff10k": zip_bytes(coco_tree.root)}
    serve(server, files)
    cls = loopback_builder(RignetCocostuff10k, tmp_path, server.url, files)
    downloaded = prepare_with(cls, tmp_path / "dl", config="182")
    manual = prepare(
        "rignet_cocostuff10k/182", tmp_path / "manual", os.path.dirname(coco_tree.root)
    )
    for split in ("train", "test"):
        assert_same_examples(downloaded, manual, split)
    assert downloaded.info.metadata["num_classes"] == 182
    # The 171 convention from the same download: taken from TFDS's download folder, not fetched.
    server.requests.clear()
    server.files.clear()
    other = prepare_with(cls, tmp_path / "dl", config="171")
    assert sorted(examples(other, "train")) == sorted(coco_tree.train)
    assert server.requests == []


def test_manual_dir_holding_the_layouts_wins(voc_tree, server, tmp_path):
    cls = loopback_builder(RignetVocAug, tmp_path, server.url, {})
    builder = prepare_with(cls, tmp_path / "tfds", voc_tree.root)
    assert builder.info.splits["train"].num_examples == 6
    assert server.requests == []


def test_what_manual_dir_lacks_is_downloaded(voc_tree, voc_files, server, tmp_path):
    serve(server, {"sbd": voc_files["sbd"]})
    manual = tmp_path / "only_voc"
    shutil.copytree(os.path.join(voc_tree.root, "VOCdevkit"), manual / "VOCdevkit")
    md5 = {"sbd": hashlib.md5(voc_files["sbd"]).hexdigest()}
    cls = loopback_builder(RignetVocAug, tmp_path, server.url, voc_files, md5=md5)
    builder = prepare_with(cls, tmp_path / "tfds", manual)
    reference = prepare("rignet_voc_aug", tmp_path / "manual", voc_tree.root)
    assert_same_examples(builder, reference, "train")
    assert [r["path"] for r in server.requests] == ["/benchmark.tgz"]


def test_wrong_registered_checksum_is_one_line(voc_tree, voc_files, server, tmp_path):
    serve(server, voc_files)
    wrong = {**voc_files, "voc": voc_files["voc"] + b"\0"}  # registers another size and SHA-256
    cls = loopback_builder(RignetVocAug, tmp_path, server.url, wrong, registered=("voc",))
    with pytest.raises(DatasetError) as e:
        prepare_with(cls, tmp_path / "tfds")
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"checksum mismatch for {server.url}/VOCtrainval_11-May-2012.tar")
    expected = hashlib.sha256(wrong["voc"]).hexdigest()
    got = hashlib.sha256(voc_files["voc"]).hexdigest()
    assert f"expected SHA-256 {expected} and {len(wrong['voc'])} bytes" in message
    assert f"got SHA-256 {got} and " in message
    left = [f for _, _, fs in os.walk(tmp_path / "tfds" / "downloads") for f in fs]
    assert not [f for f in left if "VOCtrainval" in f]
    assert not cls(data_dir=str(tmp_path / "tfds")).is_prepared()


def test_wrong_md5_is_one_line_and_deletes_the_download(voc_tree, voc_files, server, tmp_path):
    serve(server, voc_files)
    cls = loopback_builder(
        RignetVocAug, tmp_path, server.url, voc_files, registered=("voc",), md5={"sbd": "0" * 32}
    )
    with pytest.raises(DatasetError) as e:
        prepare_with(cls, tmp_path / "tfds")
    message = str(e.value)
    assert "\n" not in message
    md5 = hashlib.md5(voc_files["sbd"]).hexdigest()
    assert message == (
        f"checksum mismatch for {server.url}/benchmark.tgz: MD5 {md5}, expected {'0' * 32} "
        "(rignet_keras.data.download ARCHIVES); the download was deleted"
    )
    left = [f for _, _, fs in os.walk(tmp_path / "tfds" / "downloads") for f in fs]
    assert not [f for f in left if "benchmark" in f]


def test_unreachable_server_is_one_line_at_once(tmp_path):
    cls = loopback_builder(RignetVocAug, tmp_path, UNREACHABLE, {})
    start = time.monotonic()
    with pytest.raises(DatasetError) as e:
        prepare_with(cls, tmp_path / "tfds")
    elapsed = time.monotonic() - start
    message = str(e.value)
    assert "\n" not in message
    assert (
        f"{UNREACHABLE}/VOCtrainval_11-May-2012.tar cannot be downloaded: no connection" in message
    )
    assert "--manual-dir DIR" in message and "VOC 2012 folder not found" in message
    assert elapsed < 20  # no retries (TFDS's own would back off for minutes)


def test_cli_prepare_offline_is_one_line_exit_2(tmp_path, capsys):
    argv = ["-q", "prepare", "rignet_cocostuff10k/171", "--data-dir", str(tmp_path / "tfds")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith("error: COCO-Stuff 10k folder not found: ")
    assert f"{ARCHIVES['cocostuff10k'].url} cannot be downloaded" in err
    assert "prepare rignet_cocostuff10k/171 --manual-dir DIR" in err


@pytest.mark.subprocess
def test_python_m_prepare_offline_exit_2(tmp_path):
    import subprocess

    env = {**os.environ, "PYTHONPATH": os.getcwd(), "http_proxy": "http://127.0.0.1:9"}
    env["HTTP_PROXY"] = env["http_proxy"]  # offline wherever the test runs: a dead proxy
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    result = subprocess.run(
        [sys.executable, "-m", "rignet_keras.data", "-q", "prepare", "rignet_voc_aug"]
        + ["--data-dir", str(tmp_path / "tfds")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert f"{ARCHIVES['voc'].url} cannot be downloaded" in errors[0]


def test_registered_checksums_are_those_of_the_archive_table():
    infos = RignetVocAug.url_infos
    assert set(infos) == {ARCHIVES["voc"].url}
    voc = infos[ARCHIVES["voc"].url]
    assert int(voc.size) == 1999639040
    assert voc.checksum == "e14f763270cf193d0b5f74b169f44157a4b0c6efa708f4dd0ff78ee691763bcb"
    assert voc.filename == ARCHIVES["voc"].filename
    assert RignetCocostuff10k.url_infos == infos  # one checksums.tsv beside the builders
    assert RignetVocAug.ARCHIVES is ARCHIVES and RignetCocostuff10k.ARCHIVES is ARCHIVES


def test_registered_archive_in_manual_dir_needs_no_network(voc_tree, voc_files, tmp_path):
    """TFDS takes an archive whose file name is registered from manual_dir (checked against its
    checksum), so nothing is fetched: here the server is unreachable."""
    manual = tmp_path / "manual_archives"
    shutil.copytree(os.path.join(voc_tree.root, "benchmark_RELEASE"), manual / "benchmark_RELEASE")
    (manual / ARCHIVES["voc"].filename).write_bytes(voc_files["voc"])
    cls = loopback_builder(RignetVocAug, tmp_path, UNREACHABLE, voc_files, registered=("voc",))
    builder = prepare_with(cls, tmp_path / "tfds", manual)
    reference = prepare("rignet_voc_aug", tmp_path / "reference", voc_tree.root)
    assert_same_examples(builder, reference, "val")


def test_wrong_registered_archive_in_manual_dir_is_one_line(voc_tree, voc_files, tmp_path):
    manual = tmp_path / "manual_archives"
    shutil.copytree(os.path.join(voc_tree.root, "benchmark_RELEASE"), manual / "benchmark_RELEASE")
    (manual / ARCHIVES["voc"].filename).write_bytes(b"not the tar")
    cls = loopback_builder(RignetVocAug, tmp_path, UNREACHABLE, voc_files, registered=("voc",))
    with pytest.raises(DatasetError) as e:
        prepare_with(cls, tmp_path / "tfds", manual)
    message = str(e.value)
    assert "\n" not in message and message.startswith("checksum mismatch for ")
    assert f"{manual / ARCHIVES['voc'].filename} is not that file: replace or delete it" in message
