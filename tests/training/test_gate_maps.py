"""Gate maps that show what the gates do: the statistics against NumPy references on hand-made
gate tensors, the reading of a tiny RIGNet's gates, the files written, and `rignet predict
--gate-maps` end to end on a saved tiny RIGNet."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from rignet_keras.training.evaluate import logits_per_iteration
from rignet_keras.training.gate_figures import (
    gate_map_file_names,
    save_gate_figure,
    save_gate_map_images,
)
from rignet_keras.training.gate_maps import (
    channel_spread,
    gate_activations,
    gate_change,
    gate_maps,
    gate_statistics,
    labels_changed,
    most_selective_channels,
    probability_change,
)
from rignet_keras.training.visualize import save_predictions
from tests.harness import TRAIN_CLASSES, learnable_arrays, tiny_rignet

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tiny(mode="parallel", ui=3, blocks=(4, 6), combine="mul_sigmoid"):
    return tiny_rignet(
        mode,
        "trainable",
        ui,
        num_classes=TRAIN_CLASSES,
        feedback_blocks=blocks,
        input_shape=(32, 32, 3),
        gate_combine=combine,
    )


# --------------------------------------------------------------------------------------------
# The statistics, on hand-made gates


def hand_made_gates():
    """(1, 2, 3, 4): channel 0 constant 0.5, channel 1 a step 0 | 1 across the width, channel 2
    a weak ramp, channel 3 constant 0.75."""
    g = np.zeros((1, 2, 3, 4), np.float32)
    g[..., 0] = 0.5
    g[0, :, :, 1] = [[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]]
    g[0, :, :, 2] = [[0.4, 0.5, 0.6], [0.4, 0.5, 0.6]]
    g[..., 3] = 0.75
    return g


def test_spread_is_the_std_across_channels_per_pixel():
    g = hand_made_gates()
    got = channel_spread(g)
    assert got.shape == (1, 2, 3)
    for i in range(2):
        for j in range(3):
            np.testing.assert_allclose(got[0, i, j], np.std(g[0, i, j, :]), rtol=1e-6)
    assert channel_spread(np.full((2, 3, 3, 5), 0.3)).max() < 1e-7  # equal channels: none


def test_most_selective_channels_rank_by_variation_over_the_image():
    g = hand_made_gates()
    channels, variation = most_selective_channels(g, 2)
    assert channels.tolist() == [[1, 2]]  # the step varies most, then the ramp
    np.testing.assert_allclose(variation[0], [np.std(g[0, :, :, 1]), np.std(g[0, :, :, 2])])
    channels, variation = most_selective_channels(g, 10)  # at most C
    assert channels.tolist() == [[1, 2, 0, 3]]  # constant channels tie: the lower index first
    np.testing.assert_allclose(variation[0, 2:], 0.0, atol=1e-7)
    # per sample: a second sample whose ramp is strong and step weak ranks them the other way
    h = g.copy()
    h[0, :, :, 1] = 0.5 + 0.01 * g[0, :, :, 1]
    h[0, :, :, 2] = [[0.0, 0.5, 1.0], [0.0, 0.5, 1.0]]
    channels, _ = most_selective_channels(np.concatenate([g, h]), 1)
    assert channels.tolist() == [[1], [2]]


def test_gate_and_prediction_changes_against_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(size=(2, 2, 4, 5, 6)).astype(np.float32)
    np.testing.assert_allclose(gate_change(a, b), np.abs(a - b).mean(-1), rtol=1e-6)
    assert gate_change(a, a).max() == 0.0
    p = tf.nn.softmax(rng.normal(size=(2, 4, 5, 3)), axis=-1).numpy()
    q = tf.nn.softmax(rng.normal(size=(2, 4, 5, 3)), axis=-1).numpy()
    tv = probability_change(p, q)
    np.testing.assert_allclose(tv, 0.5 * np.abs(p - q).sum(-1), rtol=1e-5)
    assert tv.min() >= 0 and tv.max() <= 1
    one_hot = np.eye(3)[[[0, 1], [2, 2]]][None]  # (1, 2, 2, 3)
    flipped = np.eye(3)[[[1, 1], [2, 0]]][None]
    np.testing.assert_allclose(probability_change(one_hot, flipped), [[[1, 0], [0, 1]]])
    np.testing.assert_allclose(labels_changed(one_hot, flipped), [0.5])
    np.testing.assert_allclose(
        labels_changed(p, q), np.mean(p.argmax(-1) != q.argmax(-1), axis=(1, 2))
    )


# --------------------------------------------------------------------------------------------
# Reading a tiny RIGNet


def test_statistics_of_a_tiny_rignet_match_its_gates_and_predictions():
    net = tiny(ui=3)
    images = learnable_arrays(2)[0]
    gates = gate_activations(net, images)
    assert sorted(gates) == sorted((f"block{k}", t) for k in (4, 5, 6) for t in (2, 3))
    assert gates[("block4", 2)].shape == (2, 4, 4, 16)  # block 4's input: stride 8, 16 channels
    means = gate_maps(net, images)
    np.testing.assert_allclose(means[("block5", 3)], gates[("block5", 3)].mean(-1), rtol=1e-6)

    stats = gate_statistics(net, images, top_k=3)
    assert stats["iterations"] == 3 and stats["blocks"] == ["block4", "block5", "block6"]
    g3, g2 = gates[("block6", 3)], gates[("block6", 2)]
    np.testing.assert_allclose(stats["spread"][("block6", 3)], g3.std(-1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(stats["change"][("block6", 3)], np.abs(g3 - g2).mean(-1), atol=1e-6)
    assert sorted(stats["change"]) == sorted((f"block{k}", 3) for k in (4, 5, 6))
    sel = stats["selective"]["block6"]
    variation = g3.reshape(2, -1, g3.shape[-1]).std(1)
    assert sel["iteration"] == 3 and sel["channels"].shape == (2, 3)
    for b in range(2):
        assert np.all(np.diff(variation[b, sel["channels"][b]]) <= 1e-7)  # largest first
        assert variation[b, sel["channels"][b][-1]] >= np.sort(variation[b])[-3] - 1e-7
        np.testing.assert_array_equal(sel["maps"][b, 0], g3[b, :, :, sel["channels"][b][0]])
    assert sel["range"] == (0.0, 1.0)  # sigmoid gates

    logits = logits_per_iteration(net, images, [1, 2, 3])
    probs = {t: tf.nn.softmax(v).numpy() for t, v in logits.items()}
    np.testing.assert_allclose(
        stats["prediction_change"][3], 0.5 * np.abs(probs[3] - probs[2]).sum(-1), atol=1e-5
    )
    np.testing.assert_array_equal(
        stats["labels"], tf.argmax(net(images, num_iterations=3), -1).numpy()
    )


@pytest.mark.parametrize("mode", ["sequential", "multi_range", "network_gated"])
def test_statistics_in_every_gated_mode(mode):
    net = tiny(mode, ui=3, combine="mul_tanh" if mode == "multi_range" else "mul_sigmoid")
    stats = gate_statistics(net, learnable_arrays(1)[0], top_k=2)
    assert stats["blocks"] == (
        ["network"] if mode == "network_gated" else ["block4", "block5", "block6"]
    )
    assert sorted(stats["prediction_change"]) == [2, 3]
    for sel in stats["selective"].values():
        lo, hi = sel["range"]
        assert lo <= sel["maps"].min() and sel["maps"].max() <= hi


# --------------------------------------------------------------------------------------------
# The files


def test_figure_and_map_files_have_the_expected_names_and_sizes(tmp_path):
    net = tiny(ui=3)
    images = learnable_arrays(2)[0]
    stats = gate_statistics(net, images, top_k=2)
    path = save_gate_figure(stats, np.zeros((32, 32, 3), np.uint8), str(tmp_path / "f" / "a.png"))
    with Image.open(path) as im:
        assert im.format == "PNG"
        # 1 + 3 blocks x (spread, change, selective) rows, 1 + max(2 gated ui, 2 channels) columns
        assert im.size == (630, 1800)  # 1.9 in a column + 0.6, 1.8 in a row, 100 dpi
    paths = save_gate_map_images(stats, str(tmp_path / "maps"), index=1)
    names = sorted(os.path.basename(p) for p in paths)
    channels = {n: stats["selective"][n]["channels"][1] for n in stats["blocks"]}
    expected = (
        [f"block{k}_ui{t}_spread.png" for k in (4, 5, 6) for t in (2, 3)]
        + [f"block{k}_ui3_change.png" for k in (4, 5, 6)]
        + [f"prediction_ui{t}_change.png" for t in (2, 3)]
        + [f"{n}_ui3_channel{c}.png" for n, cs in channels.items() for c in cs]
    )
    assert names == sorted(expected)
    assert sorted(n for n, _, _ in gate_map_file_names(stats)) == sorted(
        n for n in expected if "channel" not in n
    )
    sizes = {"block4": (4, 4), "block5": (4, 4), "block6": (2, 2), "prediction": (32, 32)}
    for p in paths:
        with Image.open(p) as im:
            assert im.size == sizes[os.path.basename(p).split("_")[0]], p


@pytest.mark.large
def test_save_predictions_writes_the_new_gate_maps(tmp_path):
    net = tiny(ui=2)
    images, masks = learnable_arrays(3)
    ids = tf.constant([b"img_a", b"img_b", b"img_c"])
    data = tf.data.Dataset.from_tensor_slices((images, masks, ids)).batch(2)
    out = save_predictions(net, data, str(tmp_path), num_images=3, preprocessing="torch")
    folder = tmp_path / "gate_maps"
    assert sorted(os.listdir(folder)) == sorted(
        [f"img_{c}.png" for c in "abc"] + [f"img_{c}" for c in "abc"]
    )
    assert (folder / "img_b" / "block6_ui2_spread.png").is_file()
    assert (folder / "img_b" / "prediction_ui2_change.png").is_file()
    assert not (folder / "img_b" / "block6_ui2_change.png").exists()  # ui 2: no earlier gate
    with Image.open(tmp_path / "masks" / "img_c.png") as im:  # the labels are ui 2's
        want = tf.argmax(net(images[2:], num_iterations=2), -1).numpy()[0]
        np.testing.assert_array_equal(np.array(im), want)
    assert len(out["gate_maps"]) == 3 + sum(len(os.listdir(folder / f"img_{c}")) for c in "abc")


# --------------------------------------------------------------------------------------------
# The command line, end to end


@pytest.mark.subprocess
def test_rignet_predict_gate_maps_end_to_end(tmp_path):
    model = tiny_rignet(num_classes=TRAIN_CLASSES)
    model(np.zeros((1, 64, 64, 3), np.uint8))
    model.save(tmp_path / "m.keras")
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (48, 72, 3), np.uint8)).save(inputs / "cat.jpg")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rignet_cli",
            "predict",
            str(inputs),
            "--model",
            str(tmp_path / "m.keras"),
            "--output-dir",
            str(tmp_path / "out"),
            "--gate-maps",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(os.listdir(tmp_path / "out")) == ["cat.png", "cat_gates.png", "cat_overlay.png"]
    with Image.open(tmp_path / "out" / "cat_gates.png") as im:
        # ui 3: 1 + 3 blocks x 3 rows; 1 + max(2 gated ui, 4 channels) columns
        assert im.format == "PNG" and im.size == (1010, 1800)
    assert sorted(os.listdir(inputs)) == ["cat.jpg"]


@pytest.mark.parametrize(
    ("kwargs", "ui", "message"),
    [
        (dict(feedback_blocks=None, num_iterations=1), None, "the model has no feedback gates"),
        (dict(), 1, "ui 1 runs no gate"),
    ],
)
def test_gate_maps_that_cannot_be_drawn_are_refused(tmp_path, kwargs, ui, message):
    """Asked for gate maps that do not exist, `predict` refuses instead of writing none."""
    from rignet_keras.cli import UsageError, predict_images

    model = tiny_rignet(num_classes=TRAIN_CLASSES, **kwargs)
    path = tmp_path / "cat.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(path)
    with pytest.raises(UsageError, match=message):
        predict_images(model, [str(path)], str(tmp_path / "out"), ui, with_gate_maps=True)
    assert not (tmp_path / "out").exists()
