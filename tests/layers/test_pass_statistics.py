"""PassStatistics: moving statistics per pass, swapped into batch norms for one call."""

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
    stats = PassStatistics(num_sets=3)
    stats.track([("block4_bn", norm)])
    assert [v.name for v in stats.variables] == [
        "block4_bn_pass2_moving_mean",
        "block4_bn_pass2_moving_variance",
        "block4_bn_pass3_moving_mean",
        "block4_bn_pass3_moving_variance",
    ]
    assert not stats.trainable_variables
    for mean in stats.variables[::2]:
        np.testing.assert_array_equal(mean.numpy(), norm.moving_mean.numpy())
    stats.track([("block4_bn", norm)])  # tracking twice adds nothing
    assert len(stats.variables) == 4


def test_inference_reads_the_set_of_the_pass(rng):
    norm = _norm()
    stats = PassStatistics(num_sets=2)
    stats.track([("bn", norm)])
    own_mean, own_var = rng.normal(size=4), rng.uniform(0.5, 2, size=4)
    set2_mean, set2_var = rng.normal(size=4), rng.uniform(0.5, 2, size=4)
    norm.moving_mean.assign(own_mean.astype("float32"))
    norm.moving_variance.assign(own_var.astype("float32"))
    stats.variables[0].assign(set2_mean.astype("float32"))
    stats.variables[1].assign(set2_var.astype("float32"))
    x = rng.normal(size=(2, 6, 6, 4)).astype("float32")
    for pass_index, (mean, var) in [(1, (own_mean, own_var)), (2, (set2_mean, set2_var)),
                                    (5, (set2_mean, set2_var))]:  # fmt: skip
        with stats.use([norm], pass_index):
            out = keras.ops.convert_to_numpy(norm(x, training=False))
        np.testing.assert_allclose(out, _reference(x, mean, var, norm), rtol=1e-5, atol=1e-5)
    # Outside `use`, the norm has its own variables again.
    assert norm.moving_mean is norm.weights[2]
    np.testing.assert_allclose(norm.moving_mean.numpy(), own_mean, rtol=1e-6)


def test_training_updates_only_the_set_of_the_pass(rng):
    norm = _norm()
    stats = PassStatistics(num_sets=2)
    stats.track([("bn", norm)])
    x = (3 + rng.normal(size=(4, 6, 6, 4))).astype("float32")
    with stats.use([norm], 2):
        norm(x, training=True)
    # Momentum 0.5 from a zero start: half the batch mean went into set 2 only.
    np.testing.assert_allclose(
        stats.variables[0].numpy(), 0.5 * x.mean(axis=(0, 1, 2)), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(norm.moving_mean.numpy(), np.zeros(4, "float32"))
    # The norm still saves exactly its own four variables.
    assert [v.path for v in norm.variables] == [
        "bn/gamma", "bn/beta", "bn/moving_mean", "bn/moving_variance"
    ]  # fmt: skip


def test_the_norms_own_statistics_come_back_after_an_error():
    norm = _norm()
    own = norm.moving_mean
    stats = PassStatistics(num_sets=2)
    stats.track([("bn", norm)])
    with pytest.raises(RuntimeError, match="inside"):
        with stats.use([norm], 2):
            assert norm.moving_mean is not own
            raise RuntimeError("inside")
    assert norm.moving_mean is own


def test_errors_name_the_value_and_the_norm():
    with pytest.raises(ValueError, match="num_sets must be an int >= 2; received 1"):
        PassStatistics(num_sets=1)
    stats = PassStatistics(num_sets=2)
    with pytest.raises(ValueError, match="'loose' must be built"):
        stats.track([("x", keras.layers.BatchNormalization(name="loose"))])
    with pytest.raises(ValueError, match=r"\['other'\] have no statistics here"):
        with stats.use([_norm(name="other")], 2):
            pass


def test_batch_norms_finds_nested_norms_in_order():
    inner = keras.Sequential([keras.layers.Conv2D(4, 1), _norm(name="a")], name="inner")
    block = keras.Sequential([inner, _norm(name="b"), keras.layers.ReLU()])
    block.build((None, 6, 6, 4))
    assert [n.name for n in batch_norms(block)] == ["a", "b"]


def test_config_round_trip():
    stats = PassStatistics(num_sets=4, name="pass_statistics")
    clone = PassStatistics.from_config(stats.get_config())
    assert clone.num_sets == 4 and clone.name == "pass_statistics"
