"""The contract every layer the package registers keeps, checked on each one.

The layers are discovered, not listed: every class registered with Keras under the
"rignet_keras>" prefix that is a `keras.layers.Layer` (models included) gets the checks below.
`HARNESS` gives each a small constructor and its inputs; a registered layer without an entry
fails `test_every_registered_layer_has_an_entry`, so a new layer is covered when it is added.

Checks, per layer:
    - get_config / from_config round trip (the rebuilt layer has the same config);
    - save / load as `.keras` in safe mode, with equal outputs;
    - a symbolic call (KerasTensors) gives the shape and dtype of the eager call;
    - one training step: finite gradients for every trainable weight, and the weights change;
    - a call under the mixed_float16 policy: float32 variables, the expected output dtype, the
      float32 layer's outputs within float16 rounding; the global policy is restored after.
"""

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable

import keras
import numpy as np
import pytest
import tensorflow as tf

import rignet_keras

PREFIX = "rignet_keras>"


def _import_every_module():
    """Imports every module of the package, so that every class it registers is registered."""
    for module in pkgutil.walk_packages(rignet_keras.__path__, "rignet_keras."):
        if module.name.rsplit(".", 1)[-1] != "__main__":
            importlib.import_module(module.name)


def registered_layers():
    """{registered name: class} of the package's registered `keras.layers.Layer` subclasses."""
    _import_every_module()
    return {
        name: cls
        for name, cls in sorted(keras.saving.get_custom_objects().items())
        if name.startswith(PREFIX) and isinstance(cls, type) and issubclass(cls, keras.layers.Layer)
    }


@dataclasses.dataclass(frozen=True)
class Case:
    """How to build and call one registered layer.

    make: () -> a new layer (under the current dtype policy).
    inputs: rng -> the call's inputs (an array, or a tuple of arrays for multi-input layers);
        None for a layer that is not called (`not_called` says why; the checks that call it are
        skipped with that reason, the config round trip still runs).
    output_dtype: the eager output's dtype under mixed_float16 ("float16" for a layer computing
        in the policy's dtype; "float32" for a model whose logits are float32 by design).
    mixed_tolerance: the largest |mixed_float16 - float32| difference allowed, relative to the
        float32 output's largest magnitude.
    no_weights: why a called layer has no trainable weights (the training-step check is skipped
        with it); "" for a layer that has them.
    """

    make: Callable
    inputs: Callable | None
    output_dtype: str = "float16"
    mixed_tolerance: float = 2e-2
    not_called: str = ""
    no_weights: str = ""


def _normal(rng, *shape):
    return rng.normal(size=shape).astype("float32")


def _tiny_rignet(**kwargs):
    from rignet_keras import RIGNet

    config = dict(num_classes=3, backbone="resnet18", feedback_blocks=(4, 6), num_iterations=2)
    config.update(kwargs)
    return RIGNet(**config)


def _training_model():
    from rignet_keras.training import TrainingModel

    return TrainingModel(_tiny_rignet(), train_iterations=2)


def _mit():
    from rignet_keras.backbones import mit

    return mit


HARNESS = {
    "rignet_keras>MiTAttention": Case(
        make=lambda: _mit().MiTAttention(project_dim=8, num_heads=2, sr_ratio=2),
        inputs=lambda rng: _normal(rng, 2, 9, 11, 8),
    ),
    "rignet_keras>MiTDropPath": Case(
        make=lambda: _mit().MiTDropPath(rate=0.5, seed=1),
        inputs=lambda rng: _normal(rng, 2, 5, 7, 4),
        no_weights="MiTDropPath drops whole samples and holds no weights (tests/backbones/"
        "test_mit.py checks what it drops)",
    ),
    "rignet_keras>MiTEncoderBlock": Case(
        make=lambda: _mit().MiTEncoderBlock(
            project_dim=8, num_heads=2, sr_ratio=2, drop_path_rate=0.1
        ),
        inputs=lambda rng: _normal(rng, 2, 9, 11, 8),
    ),
    "rignet_keras>MiTMixFFN": Case(
        make=lambda: _mit().MiTMixFFN(channels=8, mid_channels=16),
        inputs=lambda rng: _normal(rng, 2, 9, 11, 8),
    ),
    "rignet_keras>MiTPatchEmbedding": Case(
        make=lambda: _mit().MiTPatchEmbedding(project_dim=8, patch_size=3, stride=2),
        inputs=lambda rng: _normal(rng, 2, 9, 11, 3),
    ),
    "rignet_keras>FeedbackGate": Case(
        make=lambda: rignet_keras.layers.FeedbackGate(bottleneck=3),
        inputs=lambda rng: (_normal(rng, 2, 9, 7, 4), _normal(rng, 2, 5, 3, 6)),
    ),
    "rignet_keras>MultiRangeFeedbackGate": Case(
        make=lambda: rignet_keras.layers.MultiRangeFeedbackGate(pooling="max"),
        inputs=lambda rng: (
            _normal(rng, 2, 11, 9, 4),
            _normal(rng, 2, 6, 5, 6),
            _normal(rng, 2, 3, 3, 5),
        ),
    ),
    "rignet_keras>PassStatistics": Case(
        make=lambda: rignet_keras.layers.PassStatistics(),
        inputs=None,
        not_called="PassStatistics holds variables and has no call; the RIGNet case runs it",
    ),
    "rignet_keras>RIGNet": Case(
        make=_tiny_rignet,
        inputs=lambda rng: _normal(rng, 2, 33, 35, 3),
        output_dtype="float32",
    ),
    "rignet_keras>TrainingModel": Case(
        make=_training_model,
        inputs=lambda rng: _normal(rng, 2, 33, 35, 3),
        output_dtype="float32",
    ),
}

LAYERS = registered_layers()


def _case(name):
    case = HARNESS[name]
    if case.inputs is None:
        pytest.skip(case.not_called)
    return case


def _as_tuple(inputs):
    return inputs if isinstance(inputs, tuple) else (inputs,)


def _call_args(inputs):
    """A single input as itself, several as the tuple the layer takes."""
    return inputs if len(inputs) > 1 else inputs[0]


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _numpy(outputs):
    return [keras.ops.convert_to_numpy(o) for o in _as_list(outputs)]


def _built(name, rng):
    """A new layer of case `name`, called once eagerly; (layer, inputs, eager outputs)."""
    case = _case(name)
    layer = case.make()
    inputs = _as_tuple(case.inputs(rng))
    outputs = layer(_call_args(inputs))
    return layer, inputs, outputs


def test_every_registered_layer_has_an_entry():
    assert LAYERS, "no layer registered under 'rignet_keras>': the discovery is broken"
    missing = sorted(set(LAYERS) - set(HARNESS))
    assert not missing, f"registered layers without an entry in HARNESS: {missing}"
    stale = sorted(set(HARNESS) - set(LAYERS))
    assert not stale, f"HARNESS entries that name no registered layer: {stale}"


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_config_round_trip(name):
    case = HARNESS[name]
    layer = case.make()
    if case.inputs is not None:
        layer(_call_args(_as_tuple(case.inputs(np.random.default_rng(0)))))
    config = layer.get_config()
    rebuilt = LAYERS[name].from_config(config)
    assert type(rebuilt) is LAYERS[name]
    assert rebuilt.get_config() == config
    # The registered name resolves to the class, as `load_model` resolves it.
    assert keras.saving.get_registered_object(name) is LAYERS[name]


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_keras_file_round_trip_in_safe_mode(name, rng, tmp_path):
    layer, inputs, outputs = _built(name, rng)
    if isinstance(layer, keras.Model):
        saved = layer
    else:
        symbolic = [keras.Input(x.shape[1:], name=f"input_{i}") for i, x in enumerate(inputs)]
        saved = keras.Model(symbolic, layer(_call_args(tuple(symbolic))))
    path = str(tmp_path / "layer.keras")
    saved.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    expected = _numpy(saved(_call_args(inputs)) if saved is not layer else outputs)
    restored = _numpy(loaded(_call_args(inputs)))
    assert len(restored) == len(expected)
    for got, want in zip(restored, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_symbolic_call_matches_eager_call(name, rng):
    layer, inputs, outputs = _built(name, rng)
    symbolic = tuple(keras.Input(x.shape[1:]) for x in inputs)
    result = layer(_call_args(symbolic))
    eager, spec = _as_list(outputs), _as_list(result)
    assert len(spec) == len(eager)
    for s, e in zip(spec, eager, strict=True):
        assert isinstance(s, keras.KerasTensor)
        assert tuple(s.shape) == (None,) + tuple(e.shape[1:])
        assert keras.backend.standardize_dtype(s.dtype) == keras.backend.standardize_dtype(e.dtype)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_one_training_step_changes_the_weights(name, rng):
    if HARNESS[name].no_weights:
        pytest.skip(HARNESS[name].no_weights)
    layer, inputs, _ = _built(name, rng)
    trainable = layer.trainable_variables
    assert trainable, f"{name} has no trainable weights"
    before = [v.numpy().copy() for v in trainable]
    with tf.GradientTape() as tape:
        outputs = _as_list(layer(_call_args(inputs), training=True))
        loss = tf.add_n([tf.reduce_mean(tf.square(tf.cast(o, tf.float32))) for o in outputs])
    gradients = tape.gradient(loss, trainable)
    missing = [v.path for v, g in zip(trainable, gradients, strict=True) if g is None]
    assert not missing, f"{name}: no gradient for {missing}"
    for v, g in zip(trainable, gradients, strict=True):
        assert np.all(np.isfinite(g.numpy())), f"{name}: non-finite gradient for {v.path}"
    keras.optimizers.SGD(learning_rate=0.1).apply(gradients, trainable)
    unchanged = [
        v.path for v, old in zip(trainable, before, strict=True) if np.array_equal(v.numpy(), old)
    ]
    assert not unchanged, f"{name}: one SGD step left {unchanged} unchanged"


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_mixed_float16_call(name, rng):
    case = _case(name)
    inputs = _as_tuple(case.inputs(rng))
    reference = case.make()
    expected = _numpy(reference(_call_args(inputs)))
    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layer = case.make()
        layer(_call_args(inputs))  # builds the variables
        layer.set_weights(reference.get_weights())
        outputs = _as_list(layer(_call_args(inputs)))
    finally:
        keras.config.set_dtype_policy(previous)
    assert keras.config.dtype_policy().name == previous
    variable_dtypes = {keras.backend.standardize_dtype(v.dtype) for v in layer.trainable_variables}
    assert variable_dtypes == (set() if case.no_weights else {"float32"})
    assert len(outputs) == len(expected)
    for got, want in zip(outputs, expected, strict=True):
        assert keras.backend.standardize_dtype(got.dtype) == case.output_dtype
        got = keras.ops.convert_to_numpy(got).astype("float32")
        assert np.all(np.isfinite(got))
        scale = float(np.abs(want).max()) or 1.0
        assert float(np.abs(got - want).max()) <= case.mixed_tolerance * scale
