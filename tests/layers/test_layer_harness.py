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

import importlib
import pkgutil

import keras
import pytest

import rignet_keras
from tests.harness import LayerCase, run_layer_test, tiny_rignet

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


def _normal(rng, *shape):
    return rng.normal(size=shape).astype("float32")


def _tiny_rignet(**kwargs):
    return tiny_rignet(ui=2, num_classes=3, **kwargs)


def _training_model():
    from rignet_keras.training import TrainingModel

    return TrainingModel(_tiny_rignet(), train_iterations=2)


def _tiny_backbone():
    from rignet_keras.tasks import RIGNetBackbone

    return RIGNetBackbone(
        num_classes=3, backbone="resnet18", width_multiplier=0.125, num_iterations=2
    )


def _segmenter():
    from rignet_keras.tasks import RIGNetImageSegmenter

    return RIGNetImageSegmenter(_tiny_backbone(), train_iterations=2)


def _preprocessor():
    from rignet_keras.tasks import RIGNetImageSegmenterPreprocessor

    return RIGNetImageSegmenterPreprocessor("caffe", image_size=(16, 20))


def _mit():
    from rignet_keras.backbones import mit

    return mit


HARNESS = {
    "rignet_keras>MiTAttention": LayerCase(
        make=lambda: _mit().MiTAttention(project_dim=8, num_heads=2, sr_ratio=2),
        inputs=lambda rng: _normal(rng, 2, 9, 11, 8),
    ),
    "rignet_keras>MiTDropPath": LayerCase(
        make=lambda: _mit().MiTDropPath(rate=0.5, seed=1),
        inputs=lambda rng: _normal(rng, 2, 5, 7, 4),
        no_weights="MiTDropPath drops whole samples and holds no weights (tests/backbones/"
        "test_mit.py checks what it drops)",
    ),
    "rignet_keras>MiTEncoderBlock": LayerCase(
        make=lambda: _mit().MiTEncoderBlock(
            project_dim=8, num_heads=2, sr_ratio=2, drop_path_rate=0.1
        ),
        inputs=lambda rng: _normal(rng, 2, 9, 11, 8),
    ),
    "rignet_keras>MiTMixFFN": LayerCase(
        make=lambda: _mit().MiTMixFFN(channels=8, mid_channels=16),
        inputs=lambda rng: _normal(rng, 2, 9, 11, 8),
    ),
    "rignet_keras>MiTPatchEmbedding": LayerCase(
        make=lambda: _mit().MiTPatchEmbedding(project_dim=8, patch_size=3, stride=2),
        inputs=lambda rng: _normal(rng, 2, 9, 11, 3),
    ),
    "rignet_keras>FeedbackGate": LayerCase(
        make=lambda: rignet_keras.layers.FeedbackGate(bottleneck=3),
        inputs=lambda rng: (_normal(rng, 2, 9, 7, 4), _normal(rng, 2, 5, 3, 6)),
    ),
    "rignet_keras>MultiRangeFeedbackGate": LayerCase(
        make=lambda: rignet_keras.layers.MultiRangeFeedbackGate(pooling="max"),
        inputs=lambda rng: (
            _normal(rng, 2, 11, 9, 4),
            _normal(rng, 2, 6, 5, 6),
            _normal(rng, 2, 3, 3, 5),
        ),
    ),
    "rignet_keras>PassStatistics": LayerCase(
        make=lambda: rignet_keras.layers.PassStatistics(),
        inputs=None,
        not_called="PassStatistics holds variables and has no call; the RIGNet case runs it",
    ),
    "rignet_keras>RIGNet": LayerCase(
        make=_tiny_rignet,
        inputs=lambda rng: _normal(rng, 2, 33, 35, 3),
        output_dtype="float32",
    ),
    "rignet_keras>RIGNetBackbone": LayerCase(
        make=_tiny_backbone,
        inputs=lambda rng: _normal(rng, 2, 33, 35, 3),
        output_dtype="float32",
    ),
    "rignet_keras>RIGNetImageSegmenter": LayerCase(
        make=_segmenter,
        inputs=lambda rng: _normal(rng, 2, 33, 35, 3),
        output_dtype="float32",
    ),
    "rignet_keras>RIGNetImageSegmenterPreprocessor": LayerCase(
        make=_preprocessor,
        inputs=lambda rng: rng.uniform(0, 255, (2, 33, 35, 3)).astype("float32"),
        output_dtype="float32",  # normalised in float32 whatever the policy, as the pipeline
        no_weights="the preprocessor resizes and normalises; it has no weights",
    ),
    "rignet_keras>TrainingModel": LayerCase(
        make=_training_model,
        inputs=lambda rng: _normal(rng, 2, 33, 35, 3),
        output_dtype="float32",
    ),
}

LAYERS = registered_layers()


def test_every_registered_layer_has_an_entry():
    assert LAYERS, "no layer registered under 'rignet_keras>': the discovery is broken"
    missing = sorted(set(LAYERS) - set(HARNESS))
    assert not missing, f"registered layers without an entry in HARNESS: {missing}"
    stale = sorted(set(HARNESS) - set(LAYERS))
    assert not stale, f"HARNESS entries that name no registered layer: {stale}"


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_config_round_trip(name):
    run_layer_test(HARNESS[name], "config", cls=LAYERS[name], registered_name=name)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_keras_file_round_trip_in_safe_mode(name, tmp_path):
    run_layer_test(HARNESS[name], "saving", tmp_path)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_symbolic_call_matches_eager_call(name):
    run_layer_test(HARNESS[name], "symbolic")


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_one_training_step_changes_the_weights(name):
    run_layer_test(HARNESS[name], "training_step")


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_mixed_float16_call(name):
    run_layer_test(HARNESS[name], "mixed_float16")
