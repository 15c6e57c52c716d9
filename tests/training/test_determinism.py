"""`train.deterministic`: two runs of one configuration end bit-equal; a process that cannot
give that is refused in one line, naming what it lacks."""

import os
import subprocess
import sys

import numpy as np
import pytest

from rignet_keras.training.determinism import ONEDNN_VARIABLE, RESTARTED_VARIABLE
from tests.training.test_faults import h5_arrays

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _environment(**changes):
    env = {k: v for k, v in os.environ.items() if k not in (ONEDNN_VARIABLE, RESTARTED_VARIABLE)}
    env.update(changes)
    return env


def _quickstart_rignet_config(path, output_dir):
    """The quickstart's RIGNet run (ResNet-18 Pu<6..4>, ui 3, the synthetic pipeline) cut to
    12 steps and 16 validation images, no export: two default runs of it differ."""
    from rignet_keras.config.quickstart import QuickstartConfig, quickstart_runs

    config = quickstart_runs(QuickstartConfig(steps=12, num_train=96, num_val=16), output_dir)
    config = config["rignet"].override(
        [
            ("train.tensorboard", False),
            ("export.formats", []),
            ("export.quality_images", 0),
        ]
    )
    config.save(path)


@pytest.mark.subprocess
@pytest.mark.large
def test_two_deterministic_runs_end_bit_equal(tmp_path):
    config = tmp_path / "run_config.json"
    _quickstart_rignet_config(config, tmp_path)
    weights = []
    for run in ("a", "b"):
        proc = subprocess.run(
            [sys.executable, "-m", "rignet_cli", "train", "--config", str(config)]
            + ["--deterministic", "--quiet", "--output-dir", str(tmp_path / run)],
            env=_environment(),  # oneDNN on, as a user's shell has it: the command restarts
            capture_output=True,
            text=True,
            timeout=600,
            cwd=ROOT,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert '"deterministic": true' in (tmp_path / run / "run_config.json").read_text()
        weights.append(h5_arrays(tmp_path / run / "checkpoints" / "last.weights.h5"))
    a, b = weights
    assert sorted(a) == sorted(b) and len(a) > 100
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


REFUSAL = """
import sys
import tensorflow as tf
from rignet_keras.config import TrainConfig
from rignet_keras.training.trainer import Trainer
if sys.argv[2] == "started":
    tf.constant(1.0) + 1.0
try:
    Trainer(TrainConfig(steps=2, steps_per_epoch=1, deterministic=True), sys.argv[1])
except ValueError as error:
    print(error)
"""


@pytest.mark.subprocess
@pytest.mark.parametrize(
    "onednn, state, message",
    [
        (
            "1",
            "fresh",
            "train.deterministic: oneDNN is on in this process (TF_ENABLE_ONEDNN_OPTS was not 0 "
            "when TensorFlow was imported); set it to 0 before TensorFlow is imported",
        ),
        (
            "0",
            "started",
            "train.deterministic: TensorFlow's runtime already started with the default number of "
            "inter-op threads; call tf.config.threading.set_inter_op_parallelism_threads(1) "
            "before anything runs",
        ),
    ],
)
def test_the_library_refuses_what_the_process_cannot_give(onednn, state, message, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", REFUSAL, str(tmp_path / "run"), state],
        env=_environment(**{ONEDNN_VARIABLE: onednn}),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines() == [message]
    assert not os.path.exists(tmp_path / "run")


def test_the_flag_and_the_key_set_the_option():
    from rignet_keras.cli import build_parser, train_config
    from rignet_keras.config import ConfigError

    def resolved(*argv):
        return train_config(build_parser().parse_args(["train", "--backbone", "resnet18", *argv]))

    assert resolved().train.deterministic is False
    assert resolved("--deterministic").train.deterministic is True
    assert resolved("--set", "train.deterministic=true").train.deterministic is True
    with pytest.raises(ConfigError, match="train.deterministic=2: expected bool, received int"):
        resolved("--set", "train.deterministic=2")
