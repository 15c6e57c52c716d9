"""recurrent_batch_norm: how shared batch norms normalise the passes after a block's first."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rignet_keras.layers.pass_statistics import batch_norms
from tests.harness import images, tiny_rignet


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _twins(recurrent_batch_norm):
    """Two models with the same weights, head dropout off (so training calls are deterministic)."""
    keras.utils.set_random_seed(0)
    model = tiny_rignet(recurrent_batch_norm=recurrent_batch_norm, head_filters=32)
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


@pytest.mark.large
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
    model = tiny_rignet(recurrent_batch_norm="every_pass")
    assert type(model).from_config(model.get_config()).recurrent_batch_norm == "every_pass"
    assert tiny_rignet().recurrent_batch_norm == "gated_passes"
    with pytest.raises(ValueError, match="recurrent_batch_norm must be one of .* 'both'"):
        tiny_rignet(recurrent_batch_norm="both")


# ---------------------------------------------------------------------------------------------
# "gated_passes": the first pass keeps the norms' own statistics, the gated passes a set of their
# own (PassStatistics).


def _copy_weights(source, target):
    """Blocks' and gates' weights from `source` to `target` (their variable lists may differ)."""
    for a, b in zip(source.blocks + source.gates, target.blocks + target.gates, strict=True):
        b.set_weights(a.get_weights())


def _norms(model):
    return [n for k in model.repeated_blocks for n in batch_norms(model.blocks[k - 1])]


def _statistics(model, norm, gated):
    """(mean, variance) variables of the gated passes, or the norm's own."""
    if gated:
        return model.pass_statistics.statistics(norm)
    return norm.moving_mean, norm.moving_variance


def _randomise_statistics(model, seed=5):
    rng = np.random.default_rng(seed)
    for norm in _norms(model):
        for gated in (False, True):
            mean, variance = _statistics(model, norm, gated)
            mean.assign(rng.normal(scale=0.2, size=mean.shape).astype("float32"))
            variance.assign(rng.uniform(0.5, 2.0, size=variance.shape).astype("float32"))


def _twin_with_statistics(model, x, gated):
    """A "first_pass" model with `model`'s weights and, as its norms' own, one of its sets."""
    twin = type(model).from_config({**model.get_config(), "recurrent_batch_norm": "first_pass"})
    twin(x)
    _copy_weights(model, twin)
    for ours, theirs in zip(_norms(model), _norms(twin), strict=True):
        mean, variance = _statistics(model, ours, gated)
        theirs.moving_mean.assign(mean)
        theirs.moving_variance.assign(variance)
    return twin


def _reference_two_sets(first, gated, gates, x, mode):
    """Pu or Su <6..4>, ui = 3, at inference, by hand: pass 1 runs the blocks `first`, the gated
    passes the blocks `gated`. Returns B6's logits at the output stride."""
    if mode == "sequential":
        y = x
        for k in range(6):
            x_k = y
            y = first[k](x_k, training=False)
            if k >= 3:
                for _ in range(2):
                    y = gated[k](gates[k - 3]((x_k, y)), training=False)
        return y
    y = [x]
    for block in first:
        y.append(block(y[-1], training=False))
    for _ in range(2):
        y4 = gated[3](gates[0]((y[3], y[4])), training=False)
        y5 = gated[4](gates[1]((y4, y[5])), training=False)
        y6 = gated[5](gates[2]((y5, y[6])), training=False)
        y = y[:4] + [y4, y5, y6]
    return y[6]


@pytest.mark.parametrize("mode", ["parallel", "sequential"])
def test_gated_passes_normalise_with_their_own_statistics_at_inference(mode):
    source, _, x = _twins("gated_passes")
    model = type(source).from_config({**source.get_config(), "unroll_mode": mode})
    model(x)
    _copy_weights(source, model)
    _randomise_statistics(model)
    first = _twin_with_statistics(model, x, gated=False)
    gated = _twin_with_statistics(model, x, gated=True)
    logits = _reference_two_sets(first.blocks, gated.blocks, model.gates, x, mode)
    expected = _np(model.upsample(logits, x.shape[1:3]))
    np.testing.assert_allclose(_np(model(x)), expected, rtol=1e-4, atol=1e-4)
    # One iteration is the feed-forward network with the norms' own statistics.
    np.testing.assert_allclose(
        _np(model(x, num_iterations=1)), _np(first(x, num_iterations=1)), rtol=1e-5, atol=1e-5
    )


def test_gated_passes_train_with_batch_statistics_in_every_pass():
    model, twin, x = _twins("gated_passes")
    out = _np(model(x, training=True))
    np.testing.assert_allclose(out, _reference(twin, x, True), rtol=1e-4, atol=1e-4)


@pytest.mark.large
def test_each_set_is_updated_by_its_own_passes():
    """Against "every_pass", whose one set sees every pass: with momentum m and start s0,
    every_pass ends at m^3 s0 + m^2 (1-m) mu1 + m (1-m) mu2 + (1-m) mu3, where mu_t is pass t's
    batch mean. The own set must hold pass 1's part and the gated set passes 2 and 3's."""
    model, _, x = _twins("gated_passes")
    every, _, _ = _twins("every_pass")
    _copy_weights(model, every)
    norm, norm_every = _norms(model)[3], _norms(every)[3]
    m = norm.momentum
    start = norm.moving_mean.numpy().copy()
    np.testing.assert_array_equal(start, norm_every.moving_mean.numpy())
    model(x, training=True)
    every(x, training=True)
    own = norm.moving_mean.numpy()  # m s0 + (1-m) mu1
    gated = _statistics(model, norm, True)[0].numpy()  # m (m s0 + (1-m) mu2) + (1-m) mu3
    rebuilt = m**2 * own + gated - m**2 * start
    np.testing.assert_allclose(rebuilt, norm_every.moving_mean.numpy(), rtol=1e-4, atol=1e-6)
    # The norm's own set saw the first pass alone, as one feed-forward training call does.
    once, _, _ = _twins("gated_passes")
    once(x, training=True, num_iterations=1)
    np.testing.assert_allclose(own, _norms(once)[3].moving_mean.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(_statistics(once, _norms(once)[3], True)[0].numpy(), start)


def test_steps_match_the_unrolled_call():
    model, _, x = _twins("gated_passes")
    _randomise_statistics(model)
    state = model.initial_state(x)
    for t in (2, 3):
        state = model.step(state)
        expected = _np(model(x, num_iterations=t))
        np.testing.assert_allclose(
            _np(model.upsample(state.logits, x.shape[1:3])), expected, rtol=1e-5, atol=1e-5
        )


@pytest.mark.large
def test_gated_statistics_are_saved_and_do_not_depend_on_ui(tmp_path):
    model, _, x = _twins("gated_passes")
    _randomise_statistics(model)
    count = 2 * len(_norms(model))
    assert len(model.pass_statistics.variables) == count
    six = type(model).from_config({**model.get_config(), "num_iterations": 6})
    six(x)
    assert len(six.pass_statistics.variables) == count
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    for a, b in zip(model.pass_statistics.variables, loaded.pass_statistics.variables, strict=True):
        assert a.path == b.path
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(_np(loaded(x)), _np(model(x)), rtol=1e-6, atol=1e-6)


def test_statistics_exist_only_for_repeated_blocks():
    assert tiny_rignet(feedback_blocks=None).pass_statistics is None
    assert tiny_rignet(recurrent_batch_norm="first_pass").pass_statistics is None
    su = tiny_rignet(unroll_mode="sequential", feedback_blocks=(4, 5))
    assert su.repeated_blocks == [4, 5]  # B6 runs once after them
    network = tiny_rignet(unroll_mode="network_gated")
    assert network.repeated_blocks == [1, 2, 3, 4, 5, 6]


def test_a_traced_training_call_updates_the_statistics_in_pass_order():
    """In a traced call (as `fit` runs it, with TensorFlow free to run ops at the same time),
    the two gated passes' updates of the same statistics run in pass order: the traced call
    ends where the eager one, which runs them one after the other, does. With momentum 0.5 the
    order shows: swapping passes 2 and 3 moves the mean by (1-m)^2 (mu3 - mu2)."""
    from rignet_keras.training.task import set_batch_norm_momentum

    model, twin, x = _twins("gated_passes")
    two, _, _ = _twins("gated_passes")
    for m in (model, twin, two):
        set_batch_norm_momentum(m, 0.5)
    traced = tf.function(lambda images: model(images, training=True))
    traced(x)
    twin(x, training=True)
    two(x, training=True, num_iterations=2)
    moved = 0
    for norm, norm_twin, norm_two in zip(_norms(model), _norms(twin), _norms(two), strict=True):
        got, want, after_two = (
            [v.numpy() for v in _statistics(m, n, True)]
            for m, n in ((model, norm), (twin, norm_twin), (two, norm_two))
        )
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, err_msg=norm.name)
        moved += not np.allclose(got[0], after_two[0], rtol=1e-5, atol=1e-6)
    assert moved == len(_norms(model))  # pass 3 updated every gated norm
