"""PassStatistics: the gated passes' moving statistics, swapped into batch norms for one call."""

import keras
import numpy as np
import pytest

from rignet_keras.layers.pass_statistics import PassStatistics, batch_norms


def _norm(channels=4, name="bn"):
    norm = keras.layers.BatchNormalization(name=name, momentum=0.5)
    norm.build((None, 6, 6, channels))
    return norm


def _reference(x, mean, variance, norm):
    """Inference batch norm in NumPy."""
    gamma, beta = norm.gamma.numpy(), norm.beta.numpy()
    return (x - mean) / np.sqrt(variance + norm.epsilon) * gamma + beta


def test_track_creates_named_copies_of_the_norms_own_statistics(rng):
    norm = _norm()
    norm.moving_mean.assign(rng.normal(size=4).astype("float32"))
    stats = PassStatistics()
    stats.track([("block4_bn", norm)])
    assert [v.name for v in stats.variables] == [
        "block4_bn_gated_moving_mean",
        "block4_bn_gated_moving_variance",
    ]
    assert not stats.trainable_variables
    np.testing.assert_array_equal(stats.variables[0].numpy(), norm.moving_mean.numpy())
    np.testing.assert_array_equal(stats.variables[1].numpy(), norm.moving_variance.numpy())
    stats.track([("block4_bn", norm)])  # tracking twice adds nothing
    assert len(stats.variables) == 2


def test_inference_reads_the_gated_statistics_inside_use_only(rng):
    norm = _norm()
    stats = PassStatistics()
    stats.track([("bn", norm)])
    own_mean, own_var = rng.normal(size=4), rng.uniform(0.5, 2, size=4)
    gated_mean, gated_var = rng.normal(size=4), rng.uniform(0.5, 2, size=4)
    norm.moving_mean.assign(own_mean.astype("float32"))
    norm.moving_variance.assign(own_var.astype("float32"))
    stats.variables[0].assign(gated_mean.astype("float32"))
    stats.variables[1].assign(gated_var.astype("float32"))
    x = rng.normal(size=(2, 6, 6, 4)).astype("float32")
    with stats.use([norm]):
        gated = keras.ops.convert_to_numpy(norm(x, training=False))
    own = keras.ops.convert_to_numpy(norm(x, training=False))
    np.testing.assert_allclose(
        gated, _reference(x, gated_mean, gated_var, norm), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(own, _reference(x, own_mean, own_var, norm), rtol=1e-5, atol=1e-5)
    assert norm.moving_mean is norm.weights[2]


def test_training_updates_only_the_gated_statistics(rng):
    norm = _norm()
    stats = PassStatistics()
    stats.track([("bn", norm)])
    x = (3 + rng.normal(size=(4, 6, 6, 4))).astype("float32")
    with stats.use([norm]):
        norm(x, training=True)
    # Momentum 0.5 from a zero start: half the batch mean went into the gated set only.
    np.testing.assert_allclose(
        stats.variables[0].numpy(), 0.5 * x.mean(axis=(0, 1, 2)), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(norm.moving_mean.numpy(), np.zeros(4, "float32"))
    # The norm still saves exactly its own four variables.
    assert [v.path for v in norm.variables] == [
        "bn/gamma",
        "bn/beta",
        "bn/moving_mean",
        "bn/moving_variance",
    ]


def test_the_norms_own_statistics_come_back_after_an_error():
    norm = _norm()
    own = norm.moving_mean
    stats = PassStatistics()
    stats.track([("bn", norm)])
    with pytest.raises(RuntimeError, match="inside"):
        with stats.use([norm]):
            assert norm.moving_mean is not own
            raise RuntimeError("inside")
    assert norm.moving_mean is own


def test_errors_name_the_norm():
    stats = PassStatistics()
    with pytest.raises(ValueError, match="'loose' must be built"):
        stats.track([("x", keras.layers.BatchNormalization(name="loose"))])
    tracked, other = _norm(name="tracked"), _norm(name="other")
    stats.track([("tracked", tracked)])
    own = tracked.moving_mean
    with pytest.raises(ValueError, match="'other' has no statistics here"):
        with stats.use([tracked, other]):
            pass
    assert tracked.moving_mean is own  # nothing was swapped


def test_interleaved_entries_restore_the_own_statistics_when_the_last_leaves():
    """MirroredStrategy replicas take turns inside one block (at a synchronised batch norm's
    all-reduce): the first to leave must not restore the norms under the other."""
    norm = _norm()
    own = norm.moving_mean
    stats = PassStatistics()
    stats.track([("bn", norm)])
    gated = stats.statistics(norm)[0]
    first, second = stats.use([norm]), stats.use([norm])
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert norm.moving_mean is gated
    second.__exit__(None, None, None)
    assert norm.moving_mean is own


def test_statistics_made_in_a_stateless_scope_copy_the_norms_own(rng):
    """Building inside a stateless scope (as compute_output_spec does) defers the variables'
    initialisation; the copy must still hold the norm's statistics, not zeros."""
    norm = _norm()
    norm.moving_variance.assign(rng.uniform(0.5, 2, size=4).astype("float32"))
    stats = PassStatistics()
    with keras.StatelessScope():
        stats.track([("bn", norm)])
    np.testing.assert_array_equal(stats.variables[1].numpy(), norm.moving_variance.numpy())


def test_renorm_is_refused():
    norm = keras.layers.BatchNormalization(renorm=True, name="renormed")
    norm.build((None, 6, 6, 4))
    with pytest.raises(ValueError, match="'renormed' uses renorm=True"):
        PassStatistics().track([("x", norm)])


def test_batch_norms_finds_nested_norms_in_order():
    inner = keras.Sequential([keras.layers.Conv2D(4, 1), _norm(name="a")], name="inner")
    block = keras.Sequential([inner, _norm(name="b"), keras.layers.ReLU()])
    block.build((None, 6, 6, 4))
    assert [n.name for n in batch_norms(block)] == ["a", "b"]


def _two_sets(rng, norm, stats):
    """Random own and gated statistics (and gamma, beta) for `norm`; returns the gated pair."""
    norm.gamma.assign(rng.uniform(0.5, 2, size=4).astype("float32"))
    norm.beta.assign(rng.normal(size=4).astype("float32"))
    norm.moving_mean.assign(rng.normal(size=4).astype("float32"))
    norm.moving_variance.assign(rng.uniform(0.5, 2, size=4).astype("float32"))
    gated = rng.normal(size=4), rng.uniform(0.2, 3, size=4)
    stats.variables[0].assign(gated[0].astype("float32"))
    stats.variables[1].assign(gated[1].astype("float32"))
    return gated


def test_one_kernel_copy_normalises_a_gated_pass_with_the_gated_statistics(rng):
    norm = _norm()
    stats = PassStatistics()
    stats.track([("bn", norm)])
    gated_mean, gated_var = _two_sets(rng, norm, stats)
    own_mean, own_var = norm.moving_mean.numpy(), norm.moving_variance.numpy()
    x = rng.normal(size=(2, 6, 6, 4)).astype("float32")
    with stats.one_kernel_copy():
        with stats.use([norm]):
            assert "call" in vars(norm)  # the first pass's norm, then the correction
            assert norm.moving_mean is norm.weights[2]  # no swap: the first pass's statistics
            gated = keras.ops.convert_to_numpy(norm(x, training=False))
        own = keras.ops.convert_to_numpy(norm(x, training=False))
        assert "call" not in vars(norm)
    np.testing.assert_allclose(
        gated, _reference(x, gated_mean, gated_var, norm), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(own, _reference(x, own_mean, own_var, norm), rtol=1e-5, atol=1e-5)
    # Outside the context a gated pass swaps the statistics again.
    with stats.use([norm]):
        assert "call" not in vars(norm) and norm.moving_mean is stats.variables[0]


def test_one_kernel_copy_refuses_training(rng):
    norm = _norm()
    stats = PassStatistics()
    stats.track([("bn", norm)])
    x = rng.normal(size=(2, 6, 6, 4)).astype("float32")
    with stats.one_kernel_copy(), stats.use([norm]):
        with pytest.raises(ValueError, match="'bn': one_kernel_copy is for inference"):
            norm(x, training=True)
    assert "call" not in vars(norm)
