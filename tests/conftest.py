"""Shared test helpers: quiet TensorFlow, deterministic seeds, tiny models and NumPy references."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def tiny_model(**kwargs):
    """A small RIGNet for tests: ResNet-18, 5 classes, gates on <6..4> unless overridden."""
    from rignet_keras import RIGNet

    config = dict(num_classes=5, backbone="resnet18", feedback_blocks=(4, 6), num_iterations=3)
    config.update(kwargs)
    return RIGNet(**config)


def images(batch=2, height=65, width=71, seed=0):
    """Random float images (odd sizes by default: RIGNet must take any H and W)."""
    return np.random.default_rng(seed).normal(size=(batch, height, width, 3)).astype("float32")
