"""recurrent_batch_norm: how shared batch norms normalise the passes after a block's first."""

import keras
import numpy as np
import pytest

from tests.conftest import images, tiny_model


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _twins(recurrent_batch_norm):
    """Two models with the same weights, head dropout off (so training calls are deterministic)."""
    keras.utils.set_random_seed(0)
    model = tiny_model(recurrent_batch_norm=recurrent_batch_norm, head_filters=32)
    x = images(batch=4, height=48, width=48)
    model(x)
    rng = np.random.default_rng(3)
    for gate in model.gates:  # away from the initial gates, so later passes visibly differ
        for w in gate.weights:
            w.assign(rng.normal(scale=0.05, size=w.shape).astype("float32"))
    twin = type(model).from_config(model.get_config())
    twin(x)
    twin.set_weights(model.get_weights())
    for m in (model, twin):
        m.blocks[5].get_layer("head_dropout").rate = 0.0
    return model, twin, x


def _reference(model, x, later_passes_training):
    """Parallel Pu<6..4>, ui = 3, by hand: pass 1 in training mode, later passes as given."""
    b, g = model.blocks, model.gates
    y = [x]
    for block in b:
        y.append(block(y[-1], training=True))
    for _ in range(2):
        t = later_passes_training
        y4 = b[3](g[0]((y[3], y[4])), training=t)
        y5 = b[4](g[1]((y4, y[5])), training=t)
        y6 = b[5](g[2]((y5, y[6])), training=t)
        y = y[:4] + [y4, y5, y6]
    return _np(model.upsample(y[6], x.shape[1:3]))


def _moving_mean(model):
    return model.blocks[4].get_layer("conv5_block1_1_bn").moving_mean.numpy()


@pytest.mark.parametrize(
    "option, later_passes_training", [("first_pass", False), ("every_pass", True)]
)
def test_training_call_matches_a_hand_unrolled_reference(option, later_passes_training):
    model, twin, x = _twins(option)
    out = _np(model(x, training=True))
    expected = _reference(twin, x, later_passes_training)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    # The moving statistics saw the same updates (once with "first_pass", thrice otherwise).
    np.testing.assert_allclose(_moving_mean(model), _moving_mean(twin), rtol=1e-5, atol=1e-6)


def test_first_pass_updates_the_moving_statistics_once():
    first, once, x = _twins("first_pass")
    every, _, _ = _twins("every_pass")
    first(x, training=True)  # ui = 3
    every(x, training=True)
    once(x, training=True, num_iterations=1)  # the feed-forward pass alone: one update
    np.testing.assert_allclose(_moving_mean(first), _moving_mean(once), rtol=1e-5, atol=1e-7)
    # Every pass's update: the gated passes' statistics are mixed in.
    assert np.median(np.abs(_moving_mean(every) / _moving_mean(once) - 1)) > 0.3


def test_batch_norms_stay_trainable_after_a_training_call():
    model, _, x = _twins("first_pass")
    count = len(model.trainable_variables)
    model(x, training=True)
    assert len(model.trainable_variables) == count
    norms = [
        layer
        for block in model.blocks
        for layer in block._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert norms and all(layer.trainable for layer in norms)


def test_inference_does_not_depend_on_the_option():
    first, _, x = _twins("first_pass")
    every, _, _ = _twins("every_pass")
    np.testing.assert_allclose(_np(first(x)), _np(every(x)), rtol=1e-6, atol=1e-6)


def test_option_is_saved_and_checked():
    model = tiny_model(recurrent_batch_norm="every_pass")
    assert type(model).from_config(model.get_config()).recurrent_batch_norm == "every_pass"
    assert tiny_model().recurrent_batch_norm == "first_pass"
    with pytest.raises(ValueError, match="recurrent_batch_norm must be one of .* 'both'"):
        tiny_model(recurrent_batch_norm="both")
