"""Faults, one test per row: a bad input or an interruption, and what must hold afterwards.

Bad samples are caught where they are read, in every path (validate, convert, the evaluation and
training pipelines), named by file and counted when skipped; a converted split appears whole or
not at all, and readers refuse shards that do not match their split's record; numeric flags are
checked before any work; an offline download fails within seconds, naming the URL and where to
put the file by hand.
"""

import glob
import json
import os
import shutil
import signal
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
    convert_to_tfrecord,
    dataset_error_from,
    download_dataset,
    download_file,
    get_records,
    tfrecord_files,
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


def _read_ids(source, split):
    files = tfrecord_files(source, split)
    return [
        tf.io.parse_single_example(s, {"image/id": tf.io.FixedLenFeature([], tf.string)})[
            "image/id"
        ]
        .numpy()
        .decode()
        for s in tf.data.TFRecordDataset(files)
    ]


# -- bad samples ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["huffman", "scan", "random"])
@pytest.mark.parametrize("path", ["validate", "convert", "evaluation", "training"])
def test_corrupt_jpeg_body_is_caught_and_named_in_every_path(voc_tree, tmp_path, kind, path):
    culprit = _bad_image(voc_tree, kind)
    records, info = get_records("voc", "train", voc_tree.root)

    def run(on_bad_sample):
        if path == "validate":
            return validate_dataset(records, info, on_bad_sample=on_bad_sample, progress=False)
        if path == "convert":
            out = tmp_path / f"shards-{on_bad_sample.on_bad_sample}"
            kw = dict(split="train", on_bad_sample=on_bad_sample, progress=False)
            return convert_to_tfrecord(records, out, info, **kw)
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
    if path == "convert":
        assert out.num_examples == 2 and len(_read_ids(tmp_path / "shards-skip", "train")) == 2


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


def test_missing_files_skipped_are_counted_in_every_summary(voc_tree, tmp_path, capsys):
    os.remove(os.path.join(voc_tree.voc, "JPEGImages", "2008_000003.jpg"))
    _bad_image(voc_tree, "huffman")
    expected = "skipped 2 of 3 samples (1 with missing files, 1 bad): file not found: "
    data = ["--data-dir", voc_tree.root, "--on-bad-sample", "skip"]
    assert main(["-q", "validate", "voc", *data]) == 0
    assert capsys.readouterr().out.startswith(expected)
    assert main(["-q", "convert", "voc", *data, "--output-dir", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "wrote 1 examples to 1 shards" in out and f"; {expected}" in out

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


# -- conversion that fails or is killed partway -------------------------------------------------


def test_a_conversion_that_fails_partway_leaves_the_old_split(voc_tree, tmp_path):
    records, info = get_records("voc", "trainval", voc_tree.root)
    out = tmp_path / "s"
    convert_to_tfrecord(records, out, info, split="trainval", num_shards=3, progress=False)
    before = sorted(os.listdir(out))
    record = (out / "dataset_info.json").read_text()
    old = _read_ids(out, "trainval")
    corrupt_jpeg_body(records[-1].image_path, "scan")  # in the last of the new shards
    with pytest.raises(DatasetError, match=records[-1].image_path):
        convert_to_tfrecord(records, out, info, split="trainval", num_shards=2, progress=False)
    assert sorted(os.listdir(out)) == before  # no temporary folder, no new shard
    assert (out / "dataset_info.json").read_text() == record
    assert _read_ids(out, "trainval") == old == [r.id for r in records]


_KILLED_CONVERSION = """
import os, signal, sys, time
from rignet_keras.data import convert_to_tfrecord, get_records, shards, tfrecord

data_dir, out, where, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
calls = []

def kill_at_call(real):
    def call(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            os.kill(os.getpid(), signal.SIGKILL)
        if where == "slow":
            time.sleep(0.5)
        return real(*args, **kwargs)
    return call

if where == "replace":  # the commit: record without the split, each shard's rename, record
    shards.os.replace = kill_at_call(os.replace)
else:  # encoding a sample, in a worker thread
    tfrecord._encode_record = kill_at_call(tfrecord._encode_record)
records, info = get_records("voc", "trainval", data_dir)
convert_to_tfrecord(records[:4], out, info, split="trainval", num_shards=2, num_workers=1,
                    progress=False)
"""


def _run_killed(voc_tree, out, where, n, parent_kills=False):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    args = [sys.executable, "-c", _KILLED_CONVERSION, voc_tree.root, str(out), where, str(n)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if parent_kills:  # once the new shards are being written
        deadline = time.monotonic() + 120
        while not glob.glob(str(out / ".convert-trainval-*" / "*")):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL


def _state(out):
    try:
        return tuple(_read_ids(out, "trainval"))
    except DatasetError:
        return "absent"


@pytest.mark.parametrize(
    ("where", "n", "expected"),
    [
        # each run starts a Python with TensorFlow: two in the default run, the rest with -m slow
        pytest.param("encode", 3, "old", marks=pytest.mark.slow),  # writing the new shards
        pytest.param("replace", 1, "old", marks=pytest.mark.slow),  # before the record's update
        pytest.param("replace", 2, "absent", marks=pytest.mark.slow),  # old shards deleted
        ("replace", 3, "absent"),  # one new shard of two in place, the other not
        pytest.param("replace", 4, "absent", marks=pytest.mark.slow),  # record not yet written
        ("parent", 0, "old"),  # SIGKILL from outside while the new shards are written
    ],
)
@pytest.mark.subprocess
def test_a_conversion_killed_partway_leaves_the_split_old_or_absent(
    voc_tree, tmp_path, where, n, expected
):
    records, info = get_records("voc", "trainval", voc_tree.root)
    out = tmp_path / "s"
    convert_to_tfrecord(records, out, info, split="trainval", num_shards=3, progress=False)
    old = tuple(r.id for r in records)
    if where == "parent":
        _run_killed(voc_tree, out, "slow", 0, parent_kills=True)
    else:
        _run_killed(voc_tree, out, where, n)
    state = _state(out)
    assert state == (old if expected == "old" else "absent")
    if state == "absent":
        with pytest.raises(DatasetError, match="'trainval' is not recorded in"):
            build_dataset(str(out), "trainval", **EVAL)
    # the next conversion of the split completes it and clears what the killed one left
    convert_to_tfrecord(records[:4], out, info, split="trainval", num_shards=2, progress=False)
    assert _state(out) == old[:4]
    assert not glob.glob(str(out / ".convert-*"))


# -- readers refuse shards that do not match the record -------------------------------------------


def _damage(out, kind):
    """Damages the 3-shard split "train" of `out` in one way; returns what the error names."""
    shard = str(out / "train-00001-of-00003.tfrecord")
    if kind == "unlisted":  # a shard of an earlier conversion with another count
        extra = str(out / "train-00000-of-00005.tfrecord")
        shutil.copy(shard, extra)
        return extra
    if kind == "replaced":  # another conversion's shard under a listed name
        with open(str(out / "train-00000-of-00003.tfrecord"), "rb") as f:
            data = f.read()
        with open(shard, "wb") as f:
            f.write(data)
        return shard
    if kind == "flipped":  # same size, one byte changed
        with open(shard, "r+b") as f:
            f.seek(20)
            byte = f.read(1)
            f.seek(20)
            f.write(bytes([byte[0] ^ 0xFF]))
        return shard
    if kind == "missing":
        os.remove(shard)
        return shard
    if kind == "no_record":
        os.remove(out / "dataset_info.json")
        return "holds no dataset_info.json"
    if kind == "old_record":  # the format before shards were listed with sizes and digests
        meta = json.loads((out / "dataset_info.json").read_text())
        meta.pop("format_version")
        (out / "dataset_info.json").write_text(json.dumps(meta))
        return "has format_version None"
    raise ValueError(kind)


@pytest.mark.parametrize(
    "kind", ["unlisted", "replaced", "flipped", "missing", "no_record", "old_record"]
)
def test_readers_refuse_shards_that_do_not_match_the_record(voc_tree, tmp_path, kind):
    records, info = get_records("voc", "trainval", voc_tree.root)
    out = tmp_path / "s"
    convert_to_tfrecord(records, out, info, split="train", num_shards=3, progress=False)
    named = _damage(out, kind)
    with pytest.raises(DatasetError, match=named):
        tfrecord_files(out, "train")
    with pytest.raises(DatasetError, match=named):
        build_dataset(str(out), "train", **EVAL)


def test_one_shard_is_not_read_as_the_whole_split(voc_tree, tmp_path):
    records, info = get_records("voc", "trainval", voc_tree.root)
    out = tmp_path / "s"
    report = convert_to_tfrecord(records, out, info, split="train", num_shards=3, progress=False)
    with pytest.raises(DatasetError, match=r"matches 1 of the 3 shards of split 'train'"):
        build_dataset(report.shards[0], **TRAIN)
    assert tfrecord_files(str(out / "train-*.tfrecord")) == report.shards


# -- command line ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--images-per-shard", "0"], "--images-per-shard must be at least 1; received 0"),
        (["--num-shards", "-2"], "--num-shards must be at least 1; received -2"),
    ],
)
def test_numeric_flags_are_checked_before_any_work(voc_tree, tmp_path, capsys, flags, message):
    out = tmp_path / "shards"
    argv = ["-q", "convert", "voc", "--data-dir", voc_tree.root, "--output-dir", str(out)]
    assert main([*argv, *flags]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {message}\n"
    assert not out.exists()
    with pytest.raises(ValueError, match="images_per_shard must be a positive int; received 0"):
        records, info = get_records("voc", "train", voc_tree.root)
        convert_to_tfrecord(records, out, info, split="train", images_per_shard=0)


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
@pytest.mark.parametrize("command", ["validate", "convert"])
def test_the_command_prints_its_summary_once(voc_tree, tmp_path, command):
    flags = ["--data-dir", str(voc_tree.root), "--on-bad-sample", "skip"]
    if command == "convert":
        flags += ["--output-dir", str(tmp_path / "shards")]
    process = subprocess.run(
        [sys.executable, "-m", "rignet_keras.data", "--quiet", command, "voc", *flags],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr
    output = process.stdout + process.stderr
    assert output.count("samples") == 1 and "3 samples" in output, output
