"""The effective receptive field: exact supports of known convolutions, the mass radius of known
maps, and a RIGNet's ERF at ui = 1 equal to its feed-forward path's."""

import keras
import numpy as np
import pytest

from rignet_keras.receptive_field import effective_receptive_field, mass_radius, support
from tests.harness import images, tiny_rignet


def _convs(n, dilation=1):
    layers = [
        keras.layers.Conv2D(2, 3, padding="same", dilation_rate=dilation, use_bias=False)
        for _ in range(n)
    ]
    model = keras.Sequential([keras.Input((15, 15, 3)), *layers])
    return lambda x: model(x)


@pytest.mark.parametrize(
    "n, dilation, side", [(1, 1, 3), (2, 1, 5), (3, 1, 7), (1, 2, 5), (2, 2, 9)]
)
def test_support_of_stacked_convolutions(n, dilation, side):
    erf = effective_receptive_field(_convs(n, dilation), images(3, 15, 15), class_index=0)
    lo = 7 - side // 2
    assert support(erf) == (lo, lo, lo + side, lo + side)


def test_support_follows_the_pixel_and_the_predicted_class():
    erf = effective_receptive_field(_convs(1), images(2, 15, 15), pixel=(0, 14))
    assert support(erf) == (0, 13, 2, 15)  # clipped by the image border


def test_one_pixel_per_image():
    fn, x = _convs(2), images(3, 15, 15)
    maps = effective_receptive_field(fn, x, pixel=[(2, 2), (7, 7), (12, 3)], per_image=True)
    assert maps.shape == (3, 15, 15)
    assert [support(m) for m in maps] == [(0, 0, 5, 5), (5, 5, 10, 10), (10, 1, 15, 6)]
    # a class per image: the maps of class 0 and 1 picked image by image
    per_class = [
        effective_receptive_field(fn, x, pixel=(7, 7), class_index=c, per_image=True)
        for c in (0, 1)
    ]
    mixed = effective_receptive_field(fn, x, pixel=(7, 7), class_index=[0, 1, 0], per_image=True)
    for i, c in enumerate((0, 1, 0)):
        np.testing.assert_allclose(mixed[i], per_class[c][i], rtol=1e-6)
    assert not np.allclose(per_class[0][1], per_class[1][1])
    # each image's map is that of the image alone
    alone = effective_receptive_field(fn, x[1:2], pixel=(7, 7))
    np.testing.assert_allclose(maps[1], alone, rtol=1e-6)
    np.testing.assert_allclose(
        effective_receptive_field(fn, x, pixel=[(2, 2), (7, 7), (12, 3)], batch_size=2),
        maps.mean(0),
        rtol=1e-6,
    )


def test_mass_radius_of_known_maps():
    one = np.zeros((9, 9))
    one[4, 4] = 1
    assert mass_radius(one, 0.9) == 0.0
    ring = np.zeros((9, 9))
    ring[4, 4], ring[4, 7] = 1, 1  # half the mass at the centre, half 3 px away
    assert mass_radius(ring, 0.5) == 0.0
    assert mass_radius(ring, 0.9) == 3.0
    assert mass_radius(ring, 0.9, pixel=(4, 7)) == 3.0
    uniform = np.ones((11, 11))
    assert mass_radius(uniform, 1.0) == pytest.approx(np.hypot(5, 5))
    with pytest.raises(ValueError, match="fraction"):
        mass_radius(uniform, 0)
    with pytest.raises(ValueError, match="no mass"):
        mass_radius(np.zeros((3, 3)), 0.5)


def test_rignet_erf_at_ui1_is_its_feed_forward_path():
    model = tiny_rignet(num_classes=3, width_multiplier=0.25, head_filters=16, output_stride=8)
    x = images(2, 48, 48)
    model(x, training=False)

    def feed_forward(batch):
        y = batch
        for block in model.blocks:
            y = block(y, training=False)
        return model.upsample(y, (48, 48))

    at_ui1 = effective_receptive_field(lambda b: model(b, num_iterations=1, training=False), x)
    path = effective_receptive_field(feed_forward, x)
    np.testing.assert_allclose(at_ui1, path, rtol=1e-5, atol=1e-9)
    at_ui3 = effective_receptive_field(lambda b: model(b, num_iterations=3, training=False), x)
    assert not np.allclose(at_ui3, at_ui1, rtol=1e-3)


def test_refusals():
    with pytest.raises(ValueError, match="outside"):
        effective_receptive_field(_convs(1), images(1, 15, 15), pixel=(15, 0))
    with pytest.raises(ValueError, match="one per image"):
        effective_receptive_field(_convs(1), images(3, 15, 15), pixel=[(1, 1), (2, 2)])
    with pytest.raises(ValueError, match="shape"):
        effective_receptive_field(_convs(1), np.zeros((15, 15, 3)))
