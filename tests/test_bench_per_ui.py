"""The benchmarks' per-ui figures read every ui from one unroll: the same numbers as running the
network once per ui (what they did before); and the long-range study's result files go where
the caller says (no module state)."""

import numpy as np
import pytest

from bench import long_range, receptive_field
from bench.common import load_results
from bench.long_range_files import ResultFiles
from tests.harness import tiny_rignet

UIS = [1, 2, 3]


def pixels(num=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (num, 65, 71, 3), dtype=np.uint8)


def per_ui_calls(network, images, iterations):
    """The old way: the whole unroll once per ui."""
    return {k: np.asarray(network(images, num_iterations=k, training=False)) for k in iterations}


@pytest.mark.parametrize("mode", ["parallel", "sequential"])
def test_logits_by_ui_match_a_call_per_ui(mode):
    network = tiny_rignet(mode, backbone="tiny", ui=3, calibrate=True, seed=0)
    images = pixels()
    logits = receptive_field.logits_by_ui(network, images, UIS)
    expected = per_ui_calls(network, images, UIS)
    assert sorted(logits) == UIS
    for k in UIS:
        np.testing.assert_allclose(logits[k], expected[k], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(logits[k].argmax(-1), expected[k].argmax(-1))
    assert not np.array_equal(logits[1].argmax(-1), logits[3].argmax(-1))  # the uis differ


def test_accuracy_by_distance_matches_a_call_per_ui():
    network = tiny_rignet(backbone="tiny", num_classes=3, ui=3, calibrate=True, seed=0)
    images = pixels(5)
    rng = np.random.default_rng(1)
    masks = rng.integers(0, 3, images.shape[:3]).astype(np.uint8)
    masks[:, :2] = 255
    distances = rng.uniform(0, 80, images.shape[:3]).astype(np.float32)
    distances[:, :, :3] = np.nan
    measured = long_range.accuracy_by_distance(network, images, masks, distances, UIS, batch_size=2)

    labelled = (masks > 0) & (masks != 255) & ~np.isnan(distances)
    bins = np.digitize(np.nan_to_num(distances), np.array(long_range.BIN_EDGES[1:]))
    n = len(long_range.BIN_EDGES)
    for k, logits in per_ui_calls(network, images, UIS).items():
        right = labelled & (logits.argmax(-1) == masks)
        assert measured[str(k)] == {
            "correct": np.bincount(bins[right], minlength=n).tolist(),
            "total": np.bincount(bins[labelled], minlength=n).tolist(),
        }


def test_erf_records_go_to_the_folder_given(tmp_path):
    first, second = ResultFiles(str(tmp_path / "a")), ResultFiles(str(tmp_path / "b"))
    rng = np.random.default_rng(0)
    measured = {k: {"map": rng.random((9, 9)), "r50": float(k), "r90": 2.0 * k} for k in (1, 2)}
    receptive_field.record(first, "standard", "pu3", 0, measured, setup={"pixel": "centre"})
    receptive_field.record(first, "standard", "pu3", 1, measured, setup={"pixel": "centre"})
    assert not (tmp_path / "b").exists()
    results = load_results(first.erf)
    assert results["runs"]["standard"]["pu3"]["1"]["2"] == {"r50": 2.0, "r90": 4.0}
    assert sorted(receptive_field.load_maps(first)) == [
        f"standard/pu3/{s}/{k}" for s in (0, 1) for k in (1, 2)
    ]
    assert receptive_field.load_maps(second) == {}
    summary = receptive_field.summary(results)
    assert summary["standard"]["pu3"][2]["r90"] == {"mean": 4.0, "sd": 0.0, "n": 2}
    assert "| standard | pu3 | 2 | 2.0 ± 0.0 | 4.0 ± 0.0 | 2 |" in receptive_field.markdown(results)
