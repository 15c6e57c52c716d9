"""Random-ui training: the draws lie in [lo, hi], follow the seed and the step, are the ui the
step trains, and a resumed run draws what the uninterrupted one drew; the recipe flag, the
configuration's round trip and the refusals of what a model cannot train."""

import argparse
import json

import numpy as np
import pytest
import tensorflow as tf

import rignet_keras.training.trainer as trainer_module
from rignet_keras.cli import main as rignet
from rignet_keras.config import (
    ConfigError,
    RunConfig,
    TrainConfig,
)
from rignet_keras.config.flags import add_override_arguments, overrides_from_args
from rignet_keras.training.task import TrainingModel
from tests.harness import Interrupt, InterruptAt, learnable_dataset, make_trainer, tiny_net

STEPS = 8
# The ui each step of a recording model trained, by the model's id: {id: tf.Variable [STEPS]}.
TRAINED_UI = {}


class RecordingModel(TrainingModel):
    """A `TrainingModel` that writes, inside the compiled step, which ui the step ran: the
    branch of `tf.switch_case` that executed, not a recomputation of the draw."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        TRAINED_UI[id(self)] = tf.Variable(tf.zeros([STEPS], tf.int32), trainable=False)

    def _loss_at(self, images, labels, num_iterations, denominator):
        record = TRAINED_UI[id(self)]
        step = tf.cast(self.optimizer.iterations, tf.int32)
        with tf.control_dependencies([record[step].assign(num_iterations)]):
            return super()._loss_at(images, labels, num_iterations, denominator)


def draws(task, steps):
    return [int(task.sample_iteration_index(step)) + task.train_iterations[0] for step in steps]


def test_draws_lie_in_the_range_and_follow_the_seed_and_the_step():
    net = tiny_net(4)
    a, b = TrainingModel(net, (2, 4), seed=0), TrainingModel(net, (2, 4), seed=1)
    first = draws(a, range(200))
    assert set(first) == {2, 3, 4}  # every ui of the range, and nothing outside it
    assert all(abs(first.count(k) - 200 / 3) < 25 for k in (2, 3, 4))  # uniform
    assert draws(TrainingModel(net, (2, 4), seed=0), range(200)) == first  # the seed decides
    assert draws(b, range(200)) != first
    # a function of the step alone: the same ui whatever was drawn before
    assert draws(a, [150, 7, 3]) == [first[150], first[7], first[3]]


@pytest.mark.large
def test_each_step_trains_its_draw_and_a_resumed_run_the_uninterrupted_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "TrainingModel", RecordingModel)
    data = learnable_dataset(num=16)
    straight = make_trainer(tmp_path / "straight", steps=STEPS, seed=3)
    straight.fit(data)
    expected = TRAINED_UI[id(straight.task)].numpy()
    assert expected.tolist() == draws(straight.task, range(STEPS))
    assert len(set(expected.tolist())) == 3  # this seed trains every ui of (1, 3)

    first = make_trainer(tmp_path / "resumed", steps=STEPS, seed=3)
    with pytest.raises(Interrupt):
        first.fit(data, callbacks=[InterruptAt(5)])  # backup at step 4
    second = make_trainer(tmp_path / "resumed", steps=STEPS, seed=3)
    assert second.fit(data).start_step == 4
    resumed = TRAINED_UI[id(second.task)].numpy()
    np.testing.assert_array_equal(TRAINED_UI[id(first.task)].numpy()[:5], expected[:5])
    np.testing.assert_array_equal(resumed[4:], expected[4:])
    assert not resumed[:4].any()  # those steps were not redone


def parse(argv):
    parser = add_override_arguments(argparse.ArgumentParser())
    return dict(overrides_from_args(parser.parse_args(argv)))


def test_the_flag_takes_k_or_a_range_and_is_the_config_field(capsys):
    assert parse(["--random-ui", "4"]) == {"train.train_iterations": (1, 4)}
    assert parse(["--random-ui", "2,4"]) == {"train.train_iterations": (2, 4)}
    assert rignet(["train", "--random-ui", "1..4", "--print-config"]) == 2
    assert "--random-ui must be K (for 1..K) or lo,hi; received '1..4'" in capsys.readouterr().err
    base = RunConfig(model={"feedback_blocks": (4, 6), "num_iterations": 4})
    by_flag = base.override(list(parse(["--random-ui", "4"]).items()))
    by_set = base.override(["train.train_iterations=[1,4]"])
    assert by_flag.train.train_iterations == by_set.train.train_iterations == (1, 4)


def test_the_range_round_trips_through_run_config_json(tmp_path):
    config = RunConfig(
        model={"feedback_blocks": (4, 6), "num_iterations": 4},
        train=TrainConfig(train_iterations=(1, 4), random_ui_method="switch"),
    )
    path = config.save(str(tmp_path / "run_config.json"))
    with open(path) as f:
        assert json.load(f)["train"]["train_iterations"] == [1, 4]
    loaded = RunConfig.load(path)
    assert loaded.train.train_iterations == (1, 4) and loaded.to_dict() == config.to_dict()
    assert loaded.fingerprint() == config.fingerprint()
    assert config.fingerprint() != config.override(["train.train_iterations=[2,4]"]).fingerprint()


def test_the_cli_records_the_range_and_refuses_it_for_an_fcn_in_one_line(capsys):
    assert rignet(["train", "--random-ui", "4", "--iterations", "4", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["train"]["train_iterations"] == [1, 4]
    assert rignet(["train", "--feedback-blocks", "none", "--random-ui", "4", "--print-config"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "train.train_iterations=[1, 4] needs feedback gates" in err


@pytest.mark.parametrize(
    "model, train, message",
    [
        ({"feedback_blocks": None}, {"train_iterations": (1, 4)}, "needs feedback gates"),
        ({"feedback_blocks": None}, {"train_iterations": 2}, "needs feedback gates"),
        (
            {"feedback_blocks": (4, 6), "unroll_mode": "sequential", "num_iterations": 4},
            {"train_iterations": (1, 4), "random_ui_method": "prefix"},
            "random_ui_method='prefix' cannot train model.unroll_mode='sequential'",
        ),
        (
            {"feedback_blocks": (4, 6), "num_iterations": 3},
            {"train_iterations": (1, 4)},
            "train_iterations=[1, 4] trains up to ui 4 but model.num_iterations is 3",
        ),
    ],
)
def test_what_the_model_cannot_train_is_refused(model, train, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        RunConfig(model=model, train=TrainConfig(**train))


def test_an_fcn_trains_at_ui_one_and_a_bad_range_names_the_field():
    RunConfig(model={"feedback_blocks": None}, train=TrainConfig(train_iterations=1))
    base = RunConfig(model={"feedback_blocks": (4, 6)})
    for bad in ("[0,4]", "[3,2]", "[1,2,3]"):
        with pytest.raises(ConfigError, match="train_iterations must be None, an int >= 1"):
            base.override([f"train.train_iterations={bad}"])
