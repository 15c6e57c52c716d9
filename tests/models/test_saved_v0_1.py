"""A `.keras` file saved by rignet-keras 0.1.0 (tests/models/assets, written by
make_rignet_v0_1.py) still loads with `safe_mode=True` and predicts what it predicted then."""

import pathlib

import keras
import numpy as np

import rignet_keras  # noqa: F401  (registers the classes)

ASSETS = pathlib.Path(__file__).resolve().parent / "assets"


def test_v0_1_keras_file_loads_and_predicts_the_same():
    model = keras.models.load_model(ASSETS / "rignet_v0_1.keras", safe_mode=True)
    images = np.load(ASSETS / "rignet_v0_1_images.npy")
    expected = np.load(ASSETS / "rignet_v0_1_logits.npy")
    assert type(model).__name__ == "RIGNet"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(images)), expected, atol=1e-5)
