"""Faults of a TFDS preparation: a preparation killed (SIGKILL) at several moments leaves no
dataset that loads as complete; a dataset prepared under another builder version is refused
naming the versions, or rebuilt."""

import glob
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import tensorflow_datasets as tfds

import rignet_keras.data  # noqa: F401 (registers the builders)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM_TRAIN, NUM_VAL = 300, 60

PREPARE = f"""
import tensorflow_datasets as tfds
import rignet_keras.data.builders as b
from rignet_keras.data.synthetic import SyntheticConfig
tfds.disable_progress_bar()
config = b.SyntheticBuilderConfig(name="big", num_train={NUM_TRAIN}, num_val={NUM_VAL})
tfds.builder("rignet_synthetic", config=config, data_dir={{data_dir!r}}).download_and_prepare()
print("prepared", flush=True)
"""


def _config():
    from rignet_keras.data.builders import SyntheticBuilderConfig

    return SyntheticBuilderConfig(name="big", num_train=NUM_TRAIN, num_val=NUM_VAL)


def _started(data_dir):
    return glob.glob(os.path.join(data_dir, "rignet_synthetic", "big", "*incomplete*"))


@pytest.mark.subprocess
@pytest.mark.parametrize("delay_s", [0.0, 0.4, 1.5, 4.0])
def test_killed_preparation_leaves_no_complete_dataset(tmp_path, delay_s):
    data_dir = str(tmp_path / "tfds")
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(
        [sys.executable, "-c", PREPARE.format(data_dir=data_dir)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not _started(data_dir) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(delay_s)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    builder = tfds.builder("rignet_synthetic", config=_config(), data_dir=data_dir)
    if b"prepared" in out:  # it finished before the signal: then it is whole
        ds = builder.as_dataset(split="train")
        assert len(list(ds)) == NUM_TRAIN
        return
    assert not builder.is_prepared()
    with pytest.raises(AssertionError, match="download_and_prepare"):
        builder.as_dataset(split="train")
    # and preparing again completes it
    tfds.disable_progress_bar()
    builder.download_and_prepare()
    assert builder.info.splits["val"].num_examples == NUM_VAL


def test_other_builder_version_is_refused_naming_it_or_rebuilt(tmp_path):
    from rignet_keras.data.builders import SyntheticBuilderConfig

    tfds.disable_progress_bar()
    config = SyntheticBuilderConfig(name="small", num_train=2, num_val=1)
    data_dir = str(tmp_path / "tfds")
    tfds.builder("rignet_synthetic", config=config, data_dir=data_dir).download_and_prepare()
    folder = os.path.join(data_dir, "rignet_synthetic", "small")
    # a folder prepared by another version of the builder
    shutil.move(os.path.join(folder, "1.0.0"), os.path.join(folder, "0.9.0"))
    with pytest.raises(AssertionError, match="0.9.0.*1.0.0|1.0.0.*0.9.0"):
        tfds.builder("rignet_synthetic", config=config, data_dir=data_dir, version="0.9.0")
    builder = tfds.builder("rignet_synthetic", config=config, data_dir=data_dir)
    assert builder.version == "1.0.0" and not builder.is_prepared()
    builder.download_and_prepare()  # rebuilt at this version, beside the old one
    assert sorted(os.listdir(folder)) == ["0.9.0", "1.0.0"]
    assert builder.info.splits["train"].num_examples == 2
