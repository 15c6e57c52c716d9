"""The synthetic task's long-range variant (bars, the mark at one end): the defaults' samples
unchanged, bars far longer than wide with the mark at an end, the distance map, refusals, and
the options' round trips through synthetic.json and the run configuration."""

import hashlib

import numpy as np
import pytest
from scipy import ndimage

from rignet_keras.data import SyntheticConfig, generate_sample, write_synthetic_voc
from rignet_keras.data.synthetic import load_synthetic_config, mark_distance

CLAIMS = dict(
    image_size=(96, 96),
    num_classes=3,
    mark_size=10,
    object_size=(0.4, 0.6),
    objects_per_image=(1, 2),
)
LONG_RANGE = dict(CLAIMS, object_size=(0.7, 0.9), object_shape="bar", mark_position="end")


def _digest(sample):
    return hashlib.sha256(sample.image.tobytes() + sample.mask.tobytes()).hexdigest()


def test_default_samples_are_unchanged():
    """Hashes recorded before the long-range options existed: the defaults draw the same."""
    assert _digest(generate_sample(0, 0)) == (
        "5ca8eb602f15aad639c1fb9b0d4aa5c0c719dd33a28569b36f1b88315e77726b"
    )
    assert _digest(generate_sample(0, 3, split="val")) == (
        "674478d6499d5809944c640bfa7d797a70b21f5139fd5fafa3723485508a014a"
    )
    # the claims sweep's configuration
    assert _digest(generate_sample(0, 5, SyntheticConfig(**CLAIMS), "val")) == (
        "03511f72a817906296f0807b41d7a7bd6a5773138929a55f3df9eeb9fad0268c"
    )


@pytest.mark.parametrize("index", range(6))
def test_bars_hold_their_mark_at_one_end(index):
    config = SyntheticConfig(**LONG_RANGE)
    s = generate_sample(0, index, config, "val")
    assert s.objects
    distance = mark_distance(s)
    for obj in s.objects:
        ys, xs = np.nonzero(obj.region)
        # elongated: the spread along the main axis is several times that across it
        spread = np.sort(np.linalg.eigvalsh(np.cov(np.stack([ys, xs]).astype(float))))
        assert spread[1] > 6 * spread[0]
        y0, x0, y1, x1 = obj.mark_box
        assert obj.region[y0:y1, x0:x1].all()
        assert (s.mask[y0:y1, x0:x1] == obj.class_id).all()
        # at an end: along the bar's axis, the mark's centre is as far out as a mark fits (its
        # half side, the void border and 1 px of margin, each side of the outline pixel)
        cy, cx = ndimage.center_of_mass(obj.region)
        axis = np.linalg.eigh(np.cov(np.stack([ys, xs]).astype(float)))[1][:, 1]
        along = np.abs((ys - cy) * axis[0] + (xs - cx) * axis[1])
        mark = abs(((y0 + y1 - 1) / 2 - cy) * axis[0] + ((x0 + x1 - 1) / 2 - cx) * axis[1])
        inset = config.resolved_mark_size / 2 + config.void_border + 2
        assert along.max() - mark <= inset + 1.5
        # so the far end lies most of a bar's length from the evidence
        assert np.nanmax(distance[obj.region]) > 0.5 * config.object_size[0] * 96
    for decoy in s.decoys:  # decoys take the same shape
        ys, xs = np.nonzero(decoy.region)
        spread = np.sort(np.linalg.eigvalsh(np.cov(np.stack([ys, xs]).astype(float))))
        assert spread[1] > 6 * spread[0]


def test_mark_distance_against_brute_force():
    s = generate_sample(2, 1, SyntheticConfig(**CLAIMS), "val")
    d = mark_distance(s)
    assert np.isnan(d[s.mask == 0]).all()
    for obj in s.objects:
        y0, x0, y1, x1 = obj.mark_box
        assert (d[y0:y1, x0:x1] == 0).all()
        my, mx = np.mgrid[y0:y1, x0:x1]
        for y, x in zip(*np.nonzero(obj.region), strict=True):
            assert d[y, x] == pytest.approx(np.hypot(my - y, mx - x).min(), abs=1e-4)


def test_variant_is_deterministic_and_differs_from_the_default():
    config = SyntheticConfig(**LONG_RANGE)
    assert _digest(generate_sample(1, 4, config)) == _digest(generate_sample(1, 4, config))
    assert _digest(generate_sample(1, 4, config)) != _digest(
        generate_sample(1, 4, SyntheticConfig(**CLAIMS))
    )
    # the mark placement alone changes only where the mark goes
    ends = SyntheticConfig(**dict(CLAIMS, mark_position="end"))
    assert generate_sample(1, 4, ends).objects


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(object_shape="square"), "object_shape must be one of"),
        (dict(mark_position="middle"), "mark_position must be one of"),
        (dict(bar_width=(0.3, 0.6)), "bar_width must be"),
        (dict(object_shape="bar", object_size=(0.2, 0.5), bar_width=(0.2, 0.3)), "longer"),
        (dict(object_shape="bar", bar_width=(0.05, 0.1), mark_size=10), "raise bar_width"),
    ],
)
def test_refusals(options, message):
    with pytest.raises(ValueError, match=message):
        SyntheticConfig(**options)


def test_options_round_trip(tmp_path):
    config = SyntheticConfig(**dict(LONG_RANGE, bar_width=(0.19, 0.22)))
    assert SyntheticConfig.from_dict(config.to_dict()) == config
    write_synthetic_voc(tmp_path, num_train=2, num_val=1, seed=0, config=config)
    assert load_synthetic_config(tmp_path) == config
    # a synthetic.json written before the options existed reads as the defaults
    old = {k: v for k, v in config.to_dict().items() if k not in ("object_shape", "mark_position")}
    assert SyntheticConfig.from_dict(old).object_shape == "blob"


def test_options_round_trip_through_the_run_configuration(tmp_path):
    from rignet_keras.config import DataConfig, RunConfig
    from rignet_keras.training.run_inputs import synthetic_config

    options = dict(LONG_RANGE, bar_width=(0.19, 0.22))
    run = RunConfig(data=DataConfig(source="synthetic", synthetic=options))
    path = str(tmp_path / "run_config.json")
    run.save(path)
    loaded = RunConfig.load(path)
    assert synthetic_config(loaded.data) == SyntheticConfig(**options)
    assert synthetic_config(loaded.data).object_shape == "bar"
