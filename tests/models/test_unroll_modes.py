"""The unroll modes as objects (rignet_keras/models/unroll/): one per mode, looked up by name.

Each mode object owns its gates, its first iteration and its step, what a step reads, what each
gate reads in a walk, and the paper's label; the model holds one (`RIGNet.unroll`) and never
branches on the mode's name. Mode objects are plain Python, not Keras layers: their round trip
is the model's, checked here per mode (config + weights file, `.keras` in safe mode) on the
mode object and on every iteration's state and gate inputs.
"""

import ast
import inspect

import keras
import numpy as np
import pytest

import rignet_keras.models.rignet as rignet_module
from rignet_keras import RIGNet
from rignet_keras.config import is_baseline, model_label
from rignet_keras.models.arguments import BLOCKWISE_MODES, NETWORK_MODES, UNROLL_MODES
from rignet_keras.models.state import RecurrentState
from rignet_keras.models.unroll import (
    UNROLL_MODE_CLASSES,
    NetworkUnroll,
    UnrollMode,
    paper_label,
    unroll_mode_class,
    unroll_mode_labels,
    unroll_modes,
)
from tests.harness import images, tiny_rignet

# Every mode, and the block-wise ones without gates (the feed-forward network).
CASES = [(mode, (2, 6)) for mode in UNROLL_MODES] + [(m, None) for m in BLOCKWISE_MODES]


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _model(mode, feedback_blocks=(2, 6), x=None, **kwargs):
    """A tiny RIGNet of `mode` with every weight and moving statistic moved off its initial
    value (so that a wrong gate, pass or statistics set shows)."""
    model = tiny_rignet(
        unroll_mode=mode, backbone="tiny", feedback_blocks=feedback_blocks, ui=3, **kwargs
    )
    model(images(batch=1, height=33, width=35) if x is None else x)
    rng = np.random.default_rng(5)
    for w in model.weights:
        value = _np(w)
        if "variance" in w.path:
            w.assign(value * rng.uniform(0.8, 1.2, size=value.shape).astype(value.dtype))
        else:
            w.assign(value + rng.normal(scale=0.05, size=value.shape).astype(value.dtype))
    return model


def _walk(model, x):
    """Every tensor an unroll at ui 3 produces: each state's entries, then each gate input's."""
    states = [t for s in model.iterate(x, 3, training=False) for t in s.flatten()]
    gates = [
        t for g in model.gate_inputs(x, 3) for t in (g.x, g.feedback, g.long_range) if t is not None
    ]
    return [_np(t) for t in states + gates]


def _describe(unroll):
    """What a mode object is, as comparable values."""
    try:
        reads = unroll.step_reads
    except ValueError as error:
        reads = str(error)
    return (
        type(unroll),
        unroll.feedback_blocks,
        [g.name for g in unroll.gates],
        None if unroll.network_feedback is None else unroll.network_feedback.name,
        unroll.first_recurrent_block,
        unroll.repeated_blocks,
        unroll.can_step,
        reads,
        unroll.gated,
    )


def _assert_same_walk(a, b, x):
    got, want = _walk(a, x), _walk(b, x)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


# --------------------------------------------------------------------------------------------
# The registry


def test_the_registry_lists_every_mode_once_in_order():
    assert unroll_modes() == UNROLL_MODES == tuple(UNROLL_MODE_CLASSES)
    assert UNROLL_MODES == (
        "sequential",
        "parallel",
        "multi_range",
        "network_recurrent",
        "network_gated",
    )
    for name, cls in UNROLL_MODE_CLASSES.items():
        assert issubclass(cls, UnrollMode) and cls.name == name
    assert set(BLOCKWISE_MODES) | set(NETWORK_MODES) == set(UNROLL_MODES)
    assert not set(BLOCKWISE_MODES) & set(NETWORK_MODES)
    assert NETWORK_MODES == ("network_recurrent", "network_gated")


@pytest.mark.parametrize("name", ["paralel", None, 3, ["parallel"]])
def test_a_name_that_is_not_a_mode_is_refused_in_one_line(name):
    with pytest.raises(ValueError, match=r"unroll_mode must be one of .* received") as error:
        unroll_mode_class(name)
    assert "\n" not in str(error.value)


def test_the_labels_are_the_papers():
    assert unroll_mode_labels() == {
        "sequential": "Su",
        "parallel": "Pu",
        "multi_range": "Pf_u",
        "network_recurrent": "network-wide",
        "network_gated": "network-wide gated",
    }
    assert (
        paper_label("parallel", "ResNet50", feedback_blocks=(4, 6), num_iterations=6)
        == "ResNet50-RIGNet Pu<6..4>, ui=6"
    )
    assert (
        paper_label(
            "multi_range",
            "ResNet101 (8s)",
            feedback_blocks=6,
            num_iterations=2,
            gate_combine="mul_tanh",
            gate_pooling=None,
        )
        == "ResNet101 (8s)-RIGNet Pf_u<6>, ui=2 [mul_tanh, pool=None]"
    )
    assert (
        paper_label("network_gated", "ResNet50", feedback_blocks=None, num_iterations=3)
        == "ResNet50 network-wide gated, ui=3"
    )


def test_the_configuration_labels_models_through_the_modes():
    """`rignet_keras.config.model_label`: the backbone's name, then the mode's label."""
    cases = {
        "ResNet50-FCN": dict(backbone="resnet50", feedback_blocks=None, num_iterations=1),
        "ResNet101 (8s)-RIGNet Pu<6..4>, ui=4": dict(
            backbone="resnet101",
            output_stride=8,
            unroll_mode="parallel",
            feedback_blocks=(4, 6),
            num_iterations=4,
        ),
        "DeepLabV2": dict(backbone="deeplabv2", feedback_blocks=None, num_iterations=1),
        "ResNet50 network-wide, ui=3": dict(
            unroll_mode="network_recurrent", feedback_blocks=None, num_iterations=3
        ),
        "ResNet50-RIGNet Su<6..3>, ui=2 [add_relu, pool=max]": dict(
            unroll_mode="sequential",
            feedback_blocks=3,
            num_iterations=2,
            gate_combine="add_relu",
            gate_pooling="max",
        ),
    }
    for label, kwargs in cases.items():
        assert model_label(kwargs) == label
    assert is_baseline(cases["ResNet50-FCN"]) and not is_baseline(
        cases["DeepLabV2"] | {"feedback_blocks": (4, 6)}
    )


# --------------------------------------------------------------------------------------------
# The model holds one mode object


@pytest.mark.parametrize("mode, feedback_blocks", CASES)
def test_the_model_holds_the_mode_object_of_its_unroll_mode(mode, feedback_blocks):
    model = tiny_rignet(unroll_mode=mode, backbone="tiny", feedback_blocks=feedback_blocks)
    unroll = model.unroll
    assert type(unroll) is UNROLL_MODE_CLASSES[mode]
    assert list(model.gates) == list(unroll.gates)
    assert model.network_feedback is unroll.network_feedback
    assert model.first_recurrent_block == unroll.first_recurrent_block
    assert model.repeated_blocks == unroll.repeated_blocks
    assert model.can_step == unroll.can_step
    assert model.get_config()["unroll_mode"] == mode


def test_the_model_does_not_branch_on_a_mode_name():
    """rignet.py names no unroll mode in its code but the constructor's default (its docstrings
    describe them)."""
    tree = ast.parse(inspect.getsource(rignet_module))
    defaults = {
        id(default)
        for node in ast.walk(tree)
        if isinstance(node, ast.arguments)
        for default in node.defaults + node.kw_defaults
    }
    allowed = defaults | {  # the defaults and the docstrings
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    named = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and id(node) not in allowed
        and isinstance(node.value, str)
        and any(mode in node.value for mode in UNROLL_MODES)
    ]
    assert not named
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert not names & {"BLOCKWISE_MODES", "NETWORK_MODES", "UNROLL_MODES"}


# --------------------------------------------------------------------------------------------
# Per mode: the round trip of the mode object, and gate inputs from the unroll's own walk


@pytest.mark.parametrize("mode, feedback_blocks", CASES)
def test_config_and_weights_round_trip_rebuild_the_mode(mode, feedback_blocks, tmp_path):
    x = images(batch=1, height=33, width=35)
    model = _model(mode, feedback_blocks, x)
    clone = RIGNet.from_config(model.get_config())
    clone.build(x.shape)
    model.save_weights(tmp_path / "model.weights.h5")
    clone.load_weights(tmp_path / "model.weights.h5")
    assert _describe(clone.unroll) == _describe(model.unroll)
    _assert_same_walk(clone, model, x)


@pytest.mark.parametrize("mode, feedback_blocks", CASES)
def test_keras_file_round_trip_rebuilds_the_mode(mode, feedback_blocks, tmp_path):
    x = images(batch=1, height=33, width=35)
    model = _model(mode, feedback_blocks, x)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", safe_mode=True)
    assert _describe(loaded.unroll) == _describe(model.unroll)
    _assert_same_walk(loaded, model, x)


@pytest.mark.parametrize("mode, feedback_blocks", CASES)
def test_gate_inputs_are_recorded_by_one_walk_of_the_unroll(mode, feedback_blocks, monkeypatch):
    model = _model(mode, feedback_blocks)
    x = images(batch=1, height=33, width=35)
    walks = []
    iterate = model.unroll.iterate

    def counted(chain, images, num_iterations, training=None, gate_inputs=None):
        walks.append(gate_inputs)
        return iterate(chain, images, num_iterations, training, gate_inputs)

    monkeypatch.setattr(model.unroll, "iterate", counted)
    found = model.gate_inputs(x, 3)
    if not model.unroll.gated:
        assert found == [] and walks == []
        return
    assert len(walks) == 1 and walks[0] is found
    gates = list(model.gates) or [model.network_feedback]
    if model.unroll.predicts_every_iteration:  # pass by pass
        want = [(t, gate.name) for t in (2, 3) for gate in gates]
    else:  # sequential: each block loops before the next starts
        want = [(t, gate.name) for gate in gates for t in (2, 3)]
    assert [(g.iteration, g.gate.name) for g in found] == want


@pytest.mark.parametrize("mode", ["parallel", "multi_range", "network_gated"])
def test_a_gate_input_is_what_the_step_gates(mode):
    """x of block k's gate in pass t is block k's input in that pass (the state entry before
    block k), its feedback block k's output of pass t - 1; the network gate reads the images
    and the previous logits."""
    model = _model(mode)
    x = images(batch=1, height=33, width=35)
    states = list(model.iterate(x, 3, training=False))
    first = model.first_recurrent_block
    for g in model.gate_inputs(x, 3):
        now, before = states[g.iteration - 1], states[g.iteration - 2]
        if model.unroll.network_wide:
            want_x, want_feedback = now.inputs, before.logits
        else:
            want_x = now.flatten()[g.block - first]
            want_feedback = before.outputs[g.block - first]
        np.testing.assert_array_equal(_np(g.x), _np(want_x))
        np.testing.assert_array_equal(_np(g.feedback), _np(want_feedback))
        if g.long_range is not None:
            np.testing.assert_array_equal(_np(g.long_range), _np(before.logits))


# --------------------------------------------------------------------------------------------
# Adding a mode


class _ImageEcho(NetworkUnroll):
    """A network-wide mode with no layer: pass t reruns the network on the images plus the
    mean of the previous probabilities (a test of the registry, not a model of the paper)."""

    name = "image_echo"
    label = "echo"

    def build(self, shapes):
        pass

    def feed_back(self, images, logits, record=None):
        probs = keras.ops.softmax(logits, axis=-1)
        return images + keras.ops.cast(keras.ops.mean(probs), images.dtype)


def test_a_new_mode_is_one_class_and_one_registry_entry(monkeypatch):
    monkeypatch.setitem(UNROLL_MODE_CLASSES, _ImageEcho.name, _ImageEcho)
    model = tiny_rignet(unroll_mode="image_echo", backbone="tiny", ui=3)
    x = images(batch=1, height=33, width=35)
    states = list(model.iterate(x))
    assert len(states) == 3 and all(isinstance(s, RecurrentState) for s in states)
    assert model.can_step and model.step_reads == (0, 6) and model.gate_inputs(x) == []
    assert not np.array_equal(_np(states[0].logits), _np(states[1].logits))
    clone = RIGNet.from_config(model.get_config())
    clone.build(x.shape)
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(_np(clone(x)), _np(model(x)))
    assert paper_label("image_echo", "ResNet18", feedback_blocks=None, num_iterations=3) == (
        "ResNet18 echo, ui=3"
    )
