"""`calibrate_batch_norm`: the moving statistics of every pass take the calibration batches'."""

import keras
import numpy as np
import pytest
from keras import layers

from rignet_keras.layers.pass_statistics import batch_norms
from rignet_keras.models.calibration import calibrate_batch_norm
from tests.harness import tiny_rignet

SHAPE = (2, 17, 19, 3)


def _blocks():
    def block(filters, strides):
        return keras.Sequential(
            [
                layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False),
                layers.BatchNormalization(momentum=0.99),
                layers.ReLU(),
            ]
        )

    return [block(4, 2), block(4, 2), block(6, 1), block(6, 2), block(8, 1)] + [
        keras.Sequential([layers.Conv2D(3, 1)])
    ]


def _model(mode="parallel", **kwargs):
    keras.utils.set_random_seed(5)  # the same initial weights at every call
    model = tiny_rignet(
        mode, _blocks(), 2, num_classes=3, feedback_blocks=(3, 6), input_shape=SHAPE[1:], **kwargs
    )
    rng = np.random.default_rng(3)
    for gate in model.gates:  # gates that visibly change the gated passes
        for w in gate.weights:
            w.assign(rng.normal(scale=0.5, size=w.shape).astype("float32"))
    return model


def _images(seed):
    return np.random.default_rng(seed).normal(size=SHAPE).astype("float32")


def _statistics(model):
    values = [v.numpy() for v in model.non_trainable_weights if "moving" in v.path]
    assert values  # the norms' own statistics and the gated passes'
    return values


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("mode", ["parallel", "multi_range", "network_gated", "sequential"])
def test_inference_after_calibration_equals_training_on_that_batch(mode):
    model = _model(mode)
    x = _images(0)
    assert calibrate_batch_norm(model, x) == 1
    inference = _np(model(x, training=False, num_iterations=2))
    training = _np(model(x, training=True, num_iterations=2))
    np.testing.assert_allclose(inference, training, rtol=1e-4, atol=1e-4)


def test_a_one_iteration_calibration_leaves_the_gated_passes_unsettled():
    """What the default ui of 2 is for: ui = 1 never runs a gated pass."""
    model = _model()
    x = _images(0)
    calibrate_batch_norm(model, x, num_iterations=1)
    np.testing.assert_allclose(
        _np(model(x, training=False, num_iterations=1)),
        _np(model(x, training=True, num_iterations=1)),
        rtol=1e-4,
        atol=1e-4,
    )
    gated = _np(model(x, training=False, num_iterations=2))
    assert not np.allclose(gated, _np(model(x, training=True, num_iterations=2)), atol=1e-3)


def test_several_batches_give_the_mean_of_their_statistics():
    a, b, c = _images(1), _images(2), _images(3)
    singles = []
    for x in (a, b):
        model = _model()
        calibrate_batch_norm(model, x)
        singles.append(_statistics(model))
    model = _model()
    assert calibrate_batch_norm(model, iter([a, b, c]), steps=2) == 2
    for got, first, second in zip(_statistics(model), *singles, strict=True):
        np.testing.assert_allclose(got, (first + second) / 2, rtol=1e-5, atol=1e-6)


def test_calibration_keeps_trainable_weights_and_momenta():
    model = _model()
    before = [v.numpy() for v in model.trainable_weights]
    moving = _statistics(model)
    calibrate_batch_norm(model, _images(0))
    for v, value in zip(model.trainable_weights, before, strict=True):
        np.testing.assert_array_equal(v.numpy(), value)
    assert all(n.momentum == 0.99 for n in batch_norms(model))
    assert not any(np.allclose(m, s) for m, s in zip(moving, _statistics(model), strict=True))


def test_calibration_refuses_bad_arguments():
    model = _model()
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        calibrate_batch_norm(model, _images(0), steps=0)
    with pytest.raises(ValueError, match="num_iterations must be an int >= 1"):
        calibrate_batch_norm(model, _images(0), num_iterations=0)
    with pytest.raises(ValueError, match="holds no batch"):
        calibrate_batch_norm(model, [])
    with pytest.raises(ValueError, match="iterable of batches"):
        calibrate_batch_norm(model, 3)
