"""Faults, one test per row: a bad input or an interruption, and what must hold afterwards.

Bad samples are caught where they are read, in every path (validate, the evaluation and training
pipelines), named by file and counted when skipped; a folder of the old converted TFRecord format
is refused in one line saying how to migrate; numeric flags are checked before any work; an
offline download fails within seconds, naming the URL and where to put the file by hand. (The
TFDS preparation's faults, a corrupt file and a kill, are in test_data_builders.py and
test_data_builder_faults.py.)
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import tensorflow as tf

from rignet_keras.data import (
    BadSampleLog,
    DatasetError,
    OfflineError,
    build_dataset,
    dataset_error_from,
    download_dataset,
    download_file,
    get_records,
    validate_dataset,
)
from rignet_keras.data.cli import main
from tests.data.data_fixtures import corrupt_jpeg_body

BAD_ID = "2007_000002"
EVAL = dict(batch_size=1, training=False, eval_mode="none", return_ids=True)
TRAIN = dict(batch_size=1, training=True, seed=0, crop_size=(16, 16))


def _bad_image(voc_tree, kind):
    path = os.path.join(voc_tree.voc, "JPEGImages", f"{BAD_ID}.jpg")
    corrupt_jpeg_body(path, kind)
    return path


def _ids(ds):
    return [b[-1].numpy()[0].decode() for b in ds]


# -- bad samples ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["huffman", "scan", "random"])
@pytest.mark.parametrize("path", ["validate", "evaluation", "training"])
def test_corrupt_jpeg_body_is_caught_and_named_in_every_path(voc_tree, tmp_path, kind, path):
    culprit = _bad_image(voc_tree, kind)
    records, info = get_records("voc", "train", voc_tree.root)

    def run(on_bad_sample):
        if path == "validate":
            return validate_dataset(records, info, on_bad_sample=on_bad_sample, progress=False)
        kw = dict(EVAL if path == "evaluation" else TRAIN, on_bad_sample=on_bad_sample)
        ds = build_dataset("voc", "train", data_dir=voc_tree.root, **kw)
        return [b[0].shape for b in ds]

    with pytest.raises((DatasetError, tf.errors.OpError)) as e:
        run(BadSampleLog("raise"))
    error = dataset_error_from(e.value)
    assert error is not None and str(error).startswith(f"cannot read image {culprit}: ")
    assert "\n" not in str(error)

    log = BadSampleLog("skip")
    out = run(log)
    assert [i for i, _ in log.bad] == [BAD_ID] and culprit in log.bad[0][1]
    assert log.summary(len(records)).startswith("skipped 1 of 3 samples: cannot read image")
    if path in ("evaluation", "training"):
        assert len(out) == 2


def test_the_pipeline_error_is_the_validate_error(voc_tree):
    """A command line prints the same one line for a bad sample, whichever path read it."""
    _bad_image(voc_tree, "scan")
    records, info = get_records("voc", "train", voc_tree.root)
    with pytest.raises(DatasetError) as validated:
        validate_dataset(records, info, progress=False)
    with pytest.raises(tf.errors.InvalidArgumentError) as iterated:
        list(build_dataset("voc", "train", data_dir=voc_tree.root, **EVAL))
    assert str(dataset_error_from(iterated.value)) == str(validated.value)
    assert dataset_error_from(tf.errors.InvalidArgumentError(None, None, "other")) is None


def test_missing_files_skipped_are_counted_in_every_summary(voc_tree, capsys):
    os.remove(os.path.join(voc_tree.voc, "JPEGImages", "2008_000003.jpg"))
    _bad_image(voc_tree, "huffman")
    expected = "skipped 2 of 3 samples (1 with missing files, 1 bad): file not found: "
    data = ["--data-dir", voc_tree.root, "--on-bad-sample", "skip"]
    assert main(["-q", "validate", "voc", *data]) == 0
    assert capsys.readouterr().out.startswith(expected)

    log = BadSampleLog("skip")
    ds = build_dataset("voc", "train", data_dir=voc_tree.root, on_bad_sample=log, **EVAL)
    assert _ids(ds) == ["2007_000001"]
    assert (len(log.missing), len(log.bad), log.num_skipped) == (1, 1, 2)
    assert log.summary().startswith("skipped 2 samples (1 with missing files, 1 bad)")


def test_a_bad_sample_is_counted_once_over_epochs(voc_tree, caplog):
    _bad_image(voc_tree, "scan")
    log = BadSampleLog("skip")
    kw = dict(TRAIN, repeat=True)
    ds = build_dataset("voc", "train", data_dir=voc_tree.root, on_bad_sample=log, **kw)
    assert len(list(ds.take(6))) == 6  # three epochs of the two good samples
    assert log.num_skipped == 1
    assert caplog.text.count(f"skipping {BAD_ID}") == 1


# -- folders of the old converted TFRecord format -----------------------------------------------


def _old_format_folder(folder, name="cocostuff10k", convention="182"):
    """A folder as the removed `convert` command wrote it: shards and a record listing them."""
    os.makedirs(folder)
    with tf.io.TFRecordWriter(str(folder / "train-00000-of-00001.tfrecord")) as writer:
        writer.write(b"an example")
    record = {
        "format_version": 2,
        "info": {"name": name, "num_classes": 171, "label_convention": convention},
        "splits": {"train": {"num_examples": 1, "shards": [{"file": "train-00000-of-00001"}]}},
    }
    (folder / "dataset_info.json").write_text(json.dumps(record))
    return folder


@pytest.mark.parametrize("form", ["folder", "file", "glob", "shards_only"])
def test_an_old_converted_folder_is_refused_in_one_line_saying_how_to_migrate(tmp_path, form):
    folder = _old_format_folder(tmp_path / "tfr")
    source = {
        "folder": str(folder),
        "file": str(folder / "train-00000-of-00001.tfrecord"),
        "glob": str(folder / "train-*.tfrecord"),
        "shards_only": str(folder),
    }[form]
    if form == "shards_only":  # no record: the builder is not known
        os.remove(folder / "dataset_info.json")
    with pytest.raises(DatasetError) as e:
        build_dataset(source, "train", batch_size=1, training=True, seed=0)
    line = str(e.value)
    assert "\n" not in line
    assert line.startswith(f"{source} holds TFRecord shards of the old converted format")
    assert "docs/DATA.md" in line
    builder = "<builder>" if form == "shards_only" else "rignet_cocostuff10k/182"
    assert f"prepare {builder} --manual-dir" in line and f"'tfds:{builder}'" in line


def test_another_folder_is_not_taken_for_the_old_format(tmp_path):
    with pytest.raises(DatasetError, match=r"source must be one of .* or 'tfds:<name>'"):
        build_dataset(str(tmp_path), "train", batch_size=1, training=True)


# -- command line ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--num-train", "-1"], "--num-train must be at least 0; received -1"),
        (["--num-classes", "1"], "--num-classes must be at least 2; received 1"),
    ],
)
def test_numeric_flags_are_checked_before_any_work(tmp_path, capsys, flags, message):
    out = tmp_path / "synthetic"
    assert main(["-q", "synthetic", "--output-dir", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {message}\n"
    assert not out.exists()


# -- offline downloads ----------------------------------------------------------------------------


def _manual_hint(data_dir):
    return os.path.join(str(data_dir), "downloads", "VOCtrainval_11-May-2012.tar")


def test_offline_download_fails_within_seconds_naming_url_and_manual_path(
    tmp_path, capsys, monkeypatch
):
    calls = []

    def no_dns(host, *args, **kwargs):
        calls.append(host)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    start = time.monotonic()
    assert main(["-q", "download", "voc", "--data-dir", str(tmp_path)]) == 2
    assert time.monotonic() - start < 5
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cannot download http://host.robots")
    assert "host.robots.ox.ac.uk does not resolve" in err
    assert f"put it at {_manual_hint(tmp_path)}" in err
    assert os.path.join(str(tmp_path), "VOCdevkit", "VOC2012") in err
    assert calls == ["host.robots.ox.ac.uk"]  # asked once, no retries
    assert not os.path.exists(_manual_hint(tmp_path) + ".part")


def test_a_name_that_never_resolves_gives_up_after_the_dns_timeout(tmp_path, monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: release.wait(30))
    start = time.monotonic()
    try:
        with pytest.raises(OfflineError, match=r"did not resolve within 0\.5 s"):
            download_file("http://example.invalid/f.bin", tmp_path / "f.bin", dns_timeout=0.5)
    finally:
        release.set()
    assert time.monotonic() - start < 3


def test_a_refused_connection_is_not_retried(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    start = time.monotonic()
    with pytest.raises(OfflineError, match=f"no connection to 127.0.0.1:{port}") as e:
        download_file(f"http://127.0.0.1:{port}/f.bin", tmp_path / "f.bin", progress=False)
    assert time.monotonic() - start < 3  # the default: 5 retries with backoff
    assert f"put it at {tmp_path / 'f.bin'}" in str(e.value)


def test_a_server_that_accepts_no_connection_gives_up_after_the_connect_timeout(tmp_path):
    with socket.socket() as srv, socket.socket() as queued:
        srv.bind(("127.0.0.1", 0))
        srv.listen(0)
        queued.connect(srv.getsockname())  # the backlog is full: the next SYN goes unanswered
        url = f"http://127.0.0.1:{srv.getsockname()[1]}/f.bin"
        start = time.monotonic()
        with pytest.raises(OfflineError, match="no connection to 127.0.0.1"):
            download_file(url, tmp_path / "f.bin", connect_timeout=0.5, progress=False)
        assert time.monotonic() - start < 3


def test_a_file_put_in_place_by_hand_is_checked_and_used(tmp_path, monkeypatch):
    """The manual alternative that the offline message names works without network."""
    from rignet_keras.data import ARCHIVES, Archive
    from tests.data.data_fixtures import md5, voc_tar

    data = voc_tar(tmp_path)
    archive = ARCHIVES["voc"]
    monkeypatch.setitem(ARCHIVES, "voc", Archive(**{**archive.__dict__, "md5": md5(data)}))
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: pytest.fail("no network needed"))
    data_dir = tmp_path / "data"
    os.makedirs(data_dir / "downloads")
    path = _manual_hint(data_dir)
    with open(path, "wb") as f:
        f.write(b"something else")
    with pytest.raises(DatasetError, match=f"{path} does not match the MD5"):
        download_dataset("voc", data_dir, progress=False)
    with open(path, "wb") as f:
        f.write(data)
    assert download_dataset("voc", data_dir, progress=False) == [
        os.path.join(str(data_dir), "VOCdevkit", "VOC2012")
    ]
    assert len(get_records("voc", "train", data_dir)[0]) == 3


@pytest.mark.subprocess
def test_the_command_prints_its_summary_once(voc_tree):
    flags = ["--data-dir", str(voc_tree.root), "--on-bad-sample", "skip"]
    process = subprocess.run(
        [sys.executable, "-m", "rignet_keras.data", "--quiet", "validate", "voc", *flags],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr
    output = process.stdout + process.stderr
    assert output.count("samples") == 1 and "3 samples" in output, output
