"""Integer images are pixels: the model normalises them with its own preprocessing."""

import keras
import numpy as np
import pytest

from rignet_keras import normalize
from tests.harness import tiny_rignet


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _pixels(seed=0, shape=(2, 33, 41, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize("preprocessing", ["caffe", "torch", "tf"])
def test_uint8_images_equal_the_same_images_normalised_by_hand(preprocessing):
    model = tiny_rignet(preprocessing=preprocessing, num_iterations=2)
    pixels = _pixels()
    expected = _np(model(_np(normalize(pixels, preprocessing)), num_iterations=2))
    np.testing.assert_allclose(_np(model(pixels, num_iterations=2)), expected, atol=1e-5)
    # The pixels themselves as floats are not normalised: a different (wrong) answer.
    as_float = _np(model(pixels.astype("float32"), num_iterations=2))
    assert np.abs(as_float - expected).max() > 1e-2


@pytest.mark.parametrize("mode", ["sequential", "parallel", "network_gated"])
def test_every_entry_point_of_the_driver_normalises_pixels(mode):
    model = tiny_rignet(unroll_mode=mode, feedback_blocks=(5, 6), num_iterations=2)
    pixels = _pixels(1)
    floats = _np(normalize(pixels, model.preprocessing))
    from_pixels = [_np(s.logits) for s in model.iterate(pixels, 2)]
    from_floats = [_np(s.logits) for s in model.iterate(floats, 2)]
    for a, b in zip(from_pixels, from_floats, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert len(model.gate_inputs(pixels, 2)) == len(model.gate_inputs(floats, 2))
    if mode != "sequential":
        np.testing.assert_allclose(
            _np(model.initial_state(pixels).logits),
            _np(model.initial_state(floats).logits),
            atol=1e-5,
        )


def test_int64_pixels_from_numpy_are_pixels_too():
    model = tiny_rignet(num_iterations=1)
    pixels = _pixels(2)
    np.testing.assert_allclose(_np(model(pixels.astype("int64"))), _np(model(pixels)), atol=1e-6)


def test_a_functional_model_on_uint8_inputs_saves_and_reloads(tmp_path):
    model = tiny_rignet(num_iterations=2)
    inputs = keras.Input((33, 41, 3), dtype="uint8")
    wrapped = keras.Model(inputs, model(inputs))
    pixels = _pixels(3)
    expected = _np(wrapped(pixels))
    path = str(tmp_path / "wrapped.keras")
    wrapped.save(path)
    reloaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(_np(reloaded(pixels)), expected, atol=1e-5)


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint16", "int16"])
def test_images_of_other_dtypes_are_refused_naming_the_dtype(dtype):
    model = tiny_rignet(num_iterations=2)
    with pytest.raises(ValueError, match=f"images of dtype {dtype} are neither pixels"):
        model(_pixels().astype(dtype))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_float_image_is_refused(bad):
    """One such pixel would turn every output NaN; eager calls and `predict` refuse it."""
    model = tiny_rignet(num_iterations=2)
    floats = _np(normalize(_pixels(), model.preprocessing))
    assert np.isfinite(_np(model(floats))).all()
    floats[1, 4, 5, 2] = bad
    with pytest.raises(ValueError, match="images hold 1 non-finite values"):
        model(floats)
    with pytest.raises(ValueError, match="images hold 1 non-finite values"):
        model.predict(floats, verbose=0)
