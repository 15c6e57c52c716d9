"""The driver (`RIGNet.iterate`) reproduces the outputs of the implementation it replaced.

`driver_reference/` holds small RIGNets of every unroll mode, feedback option and
`recurrent_batch_norm` option, their weights, and the logits the previous implementation of the
recurrence (a positional state list, unroll loops written out in each consumer) returned for
them; `driver_reference/make_reference.py` wrote it. Every model is rebuilt from its saved config
and weights, and `call`, `iterate` and `logits_per_iteration` must return the same logits.
"""

import functools
import json
import os

import keras
import numpy as np
import pytest

from rignet_keras import RIGNet
from rignet_keras.models.state import RecurrentState
from rignet_keras.training.evaluate import logits_per_iteration

FIXTURE = os.path.join(os.path.dirname(__file__), "driver_reference")
TOLERANCE = dict(rtol=1e-5, atol=1e-5)


@functools.cache
def _fixture():
    with open(os.path.join(FIXTURE, "models.json"), encoding="utf-8") as f:
        models = json.load(f)
    with np.load(os.path.join(FIXTURE, "outputs.npz")) as archive:
        arrays = dict(archive)
    return models, arrays


def _names():
    return sorted(_fixture()[0]["models"])


def _weights(name):
    arrays = _fixture()[1]
    prefix = f"{name}/weights/"
    keys = [k for k in arrays if k.startswith(prefix)]
    keys.sort(key=lambda k: int(k[len(prefix) :].split(":")[0]))
    return [(k[len(prefix) :], arrays[k]) for k in keys]


def _model(name, **overrides):
    """The saved model `name`, rebuilt from its config with its saved weights."""
    models, arrays = _fixture()
    config = dict(models["models"][name]["config"], backbone=models["backbone"], **overrides)
    model = RIGNet.from_config(config)
    model.build(arrays["images"].shape)
    saved = _weights(name)
    assert [f"{i}:{v.name}" for i, v in enumerate(model.weights)] == [k for k, _ in saved]
    for variable, (_, value) in zip(model.weights, saved, strict=True):
        variable.assign(value)
    return model


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_the_fixture_covers_every_mode_and_option():
    names = _names()
    assert len(names) == 27
    for mode in ("sequential", "parallel", "multi_range", "network_recurrent", "network_gated"):
        assert any(n.startswith(mode + "-") for n in names)
    for option in ("gated_passes", "first_pass", "every_pass"):
        assert sum(n.endswith(option) for n in names) >= 8
    assert os.path.getsize(os.path.join(FIXTURE, "outputs.npz")) < 700_000


@pytest.mark.parametrize("name", _names())
def test_driver_reproduces_the_saved_outputs(name):
    arrays = _fixture()[1]
    images = arrays["images"]
    model = _model(name)
    size = images.shape[1:3]
    anytime = logits_per_iteration(model, images, [1, 2, 3])
    for k in (1, 2, 3):
        want = arrays[f"{name}/ui{k}"]
        np.testing.assert_allclose(_np(model(images, num_iterations=k)), want, **TOLERANCE)
        np.testing.assert_allclose(_np(anytime[k]), want, **TOLERANCE)
        states = list(model.iterate(images, k, training=False))
        assert all(isinstance(s, RecurrentState) for s in states)
        assert len(states) == (1 if model.unroll_mode == "sequential" else k)
        np.testing.assert_allclose(_np(model.upsample(states[-1].logits, size)), want, **TOLERANCE)
    if model.unroll_mode != "sequential":
        states = list(model.iterate(images, 3, training=False))
        for t, state in enumerate(states, 1):
            np.testing.assert_allclose(
                _np(model.upsample(state.logits, size)), arrays[f"{name}/ui{t}"], **TOLERANCE
            )
        every = _model(name, return_all_iterations=True)
        outputs = every(images, num_iterations=3)
        assert len(outputs) == 3
        for t, logits in enumerate(outputs, 1):
            np.testing.assert_allclose(_np(logits), arrays[f"{name}/all_ui3/{t}"], **TOLERANCE)


@pytest.mark.parametrize("name", _names())
def test_training_mode_reproduces_the_saved_outputs(name):
    arrays = _fixture()[1]
    want = arrays[f"{name}/train_ui2"]
    # Each check on a fresh copy: a training call moves the moving statistics, which the
    # "first_pass" option's gated passes read.
    got = _model(name)(arrays["images"], training=True, num_iterations=2)
    np.testing.assert_allclose(_np(got), want, **TOLERANCE)
    got = logits_per_iteration(_model(name), arrays["images"], [2], training=True)[2]
    np.testing.assert_allclose(_np(got), want, **TOLERANCE)


@pytest.mark.parametrize("name", _names())
def test_the_step_wise_state_layout_is_unchanged(name):
    """Exports made before the state type still run: the flat state (`state_<i>`) and the
    entries a step reads are what they were."""
    layout = _fixture()[0]["models"][name]["step_layout"]
    model = _model(name)
    assert model.can_step == (layout is not None)
    if layout is None:
        with pytest.raises(ValueError, match="sequential|feedback_blocks=None"):
            _ = model.step_reads
        return
    images = _fixture()[1]["images"]
    flat = model.initial_state(images, training=False).flatten()
    assert [list(t.shape) for t in flat] == layout["shapes"]
    assert list(model.step_reads) == layout["read"]
    assert RecurrentState.unflatten(flat).flatten() == flat
