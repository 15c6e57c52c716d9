"""MiT (SegFormer's encoder) as a RIGNet backbone: our layers against keras-hub's `MiTBackbone`
(same weights, same features), any input size, weights from a file and a preset folder, every
unroll mode, `.keras` in safe mode in a fresh process, TFLite float32 and ONNX at ui 1-2 (slow)."""

import keras
import numpy as np
import pytest

from rignet_keras.backbones import build_blocks, load_imagenet_weights, split_model
from rignet_keras.backbones.hub import HUB_BACKBONES, MIT_CONFIGS
from rignet_keras.backbones.mit import (
    MIT_CUTS,
    MiTAttention,
    MiTDropPath,
    copy_hub_weights,
    mit_model,
)
from tests.harness import assert_reloads_in_a_fresh_process, chained, images, perturbed

keras_hub = pytest.importorskip("keras_hub")

NUM_CLASSES = 5
B0_CONTRACT = [(32, 4), (32, 4), (64, 8), (160, 16), (256, 32)]


def _hub_mit(name="mit_b0", size=96, seed=5):
    """A keras-hub `MiTBackbone` with random weights moved off their initial values."""
    hub = keras_hub.models.MiTBackbone(**MIT_CONFIGS[name], image_shape=(size, size, 3))
    return perturbed(hub, seed=seed)


@pytest.mark.large
def test_blocks_chained_are_keras_hub_pyramid_outputs():
    """keras-hub's MiT runs on square images whose side is a multiple of 32 only (it recovers the
    map's side as sqrt of the token count and reshapes with floor division), so the comparison
    is at 96x96 (stage maps 24, 12, 6, 3; every spatial reduction divides)."""
    hub = _hub_mit(size=96)
    model = mit_model(MIT_CONFIGS["mit_b0"])
    assert copy_hub_weights(hub, model) == 96
    blocks, contracts = split_model(model, list(MIT_CUTS))
    assert [(c.channels, c.stride) for c in contracts] == B0_CONTRACT
    x = images(batch=2, height=96, width=96)
    expected = keras.Model(hub.inputs[0], list(hub.pyramid_outputs.values()))(x, training=False)
    ours = chained(blocks, x)
    for level, (a, b) in enumerate(zip(ours[1:], expected, strict=True), start=1):
        b = keras.ops.convert_to_numpy(b)
        assert a.shape == b.shape, f"P{level}"
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * np.abs(b).max(), err_msg=f"P{level}")
    assert model.count_params() == hub.count_params()


def test_blocks_take_a_non_square_odd_size():
    """At 61x83 every stage rounds up (16x21, 8x11, 4x6, 2x3); the spatial reductions do not
    divide those maps (stage 1: 16x21 reduced by 8 to 2x2)."""
    blocks, contracts = build_blocks("hub_mit_b0", num_classes=NUM_CLASSES)
    shapes = [o.shape for o in chained(blocks, images(batch=1, height=61, width=83))]
    channels = [c for c, _ in B0_CONTRACT] + [NUM_CLASSES]
    sizes = [(16, 21), (16, 21), (8, 11), (4, 6), (2, 3), (2, 3)]
    assert shapes == [(1, h, w, c) for (h, w), c in zip(sizes, channels, strict=True)]
    assert [(c.channels, c.stride) for c in contracts[:5]] == B0_CONTRACT


def _reference_attention(layer, x):
    """NumPy efficient self-attention of `layer` (a built `MiTAttention`) on a (1, h, w, C) map."""
    q_k, q_b, k_k, k_b, v_k, v_b, p_k, p_b, sr_k, sr_b, gamma, beta = layer.get_weights()
    r, (_, h, w, c) = layer.sr_ratio, x.shape
    heads, d = layer.num_heads, c // layer.num_heads
    crop = x[0, : h // r * r, : w // r * r]
    patches = crop.reshape(h // r, r, w // r, r, c).transpose(0, 2, 1, 3, 4)
    reduced = np.einsum("ijabc,abco->ijo", patches, sr_k) + sr_b
    mean = reduced.mean(-1, keepdims=True)
    var = reduced.var(-1, keepdims=True)
    reduced = (reduced - mean) / np.sqrt(var + layer.layer_norm_epsilon) * gamma + beta
    tokens, kv = x[0].reshape(h * w, c), reduced.reshape(-1, c)
    q = (tokens @ q_k + q_b).reshape(h * w, heads, d).transpose(1, 0, 2)
    k = (kv @ k_k + k_b).reshape(-1, heads, d).transpose(1, 0, 2)
    v = (kv @ v_k + v_b).reshape(-1, heads, d).transpose(1, 0, 2)
    logits = q @ k.transpose(0, 2, 1) / np.sqrt(d)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    out = (weights @ v).transpose(1, 0, 2).reshape(h * w, c) @ p_k + p_b
    return out.reshape(1, h, w, c)


def test_attention_on_a_non_square_map_is_the_reference():
    """Queries from every position of a 7x11 map, keys and values from its 2x2 reduction (3x5,
    the odd row and column left out by the strided convolution), two heads."""
    layer = MiTAttention(8, num_heads=2, sr_ratio=2)
    layer.build((None, None, None, 8))
    rng = np.random.default_rng(1)
    layer.set_weights([rng.normal(0.0, 0.5, w.shape).astype("float32") for w in layer.weights])
    x = rng.normal(size=(1, 7, 11, 8)).astype("float32")
    out = keras.ops.convert_to_numpy(layer(x, training=False))
    np.testing.assert_allclose(out, _reference_attention(layer, x), rtol=1e-4, atol=1e-5)


def test_a_map_smaller_than_the_spatial_reduction_is_refused():
    layer = MiTAttention(8, num_heads=2, sr_ratio=8)
    layer.build((None, None, None, 8))  # as in a network built for any size
    with pytest.raises(
        ValueError, match=r"a 5x9 map is smaller than its spatial reduction \(sr_ratio=8\)"
    ):
        layer(np.zeros((1, 5, 9, 8), "float32"))


def test_drop_path_drops_whole_samples_while_training_only():
    layer = MiTDropPath(0.5, seed=3)
    x = np.ones((16, 3, 5, 4), "float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    per_sample = out.reshape(16, -1)
    assert set(np.unique(per_sample)) <= {0.0, 2.0}
    assert (per_sample == per_sample[:, :1]).all()  # one decision per sample
    assert 0 < (per_sample[:, 0] == 0).sum() < 16


def _assert_same_weights(blocks, hub):
    """Every weight of B1-B5, in order, equals keras-hub's (both list them stage by stage)."""
    ours = [w for block in blocks[:5] for w in block.weights]
    theirs = hub.weights
    assert [tuple(w.shape) for w in ours] == [tuple(w.shape) for w in theirs]
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), err_msg=b.path
        )


@pytest.fixture(scope="module")
def hub_b0():
    return _hub_mit(size=64)


@pytest.mark.large
def test_weights_from_a_local_weights_file(hub_b0, tmp_path):
    """A random keras-hub MiT-B0's `.weights.h5` file loads into the blocks tensor by tensor."""
    path = tmp_path / "mit_b0.weights.h5"
    hub_b0.save_weights(path)
    blocks, _ = build_blocks("hub_mit_b0", num_classes=NUM_CLASSES)
    assert load_imagenet_weights("hub_mit_b0", blocks, str(path)) == 16
    _assert_same_weights(blocks, hub_b0)
    with pytest.raises(ValueError, match="backbone weights file not found: '/nope.h5'"):
        load_imagenet_weights("hub_mit_b0", blocks, "/nope.h5")


@pytest.mark.large
def test_weights_from_a_preset_folder(hub_b0, tmp_path):
    """A preset folder written by keras-hub's `save_to_preset` loads through `RIGNet`'s
    `backbone_weights`."""
    from rignet_keras import RIGNet

    preset = tmp_path / "preset"
    hub_b0.save_to_preset(str(preset))
    model = RIGNet(3, backbone="hub_mit_b0", num_iterations=1, backbone_weights=str(preset))
    _assert_same_weights(model.blocks, hub_b0)


@pytest.mark.large
def test_weights_of_another_configuration_are_refused_naming_block_and_layer():
    """MiT-B1 weights (a B1 preset folder, say) into MiT-B0 layers. (A B1 `.weights.h5` file is
    refused earlier, by Keras' own loader, which lists the layers it could not fill.)"""
    model = mit_model(MIT_CONFIGS["mit_b0"])
    with pytest.raises(ValueError, match=r"B1 layer 'patch_embed_1\.proj': weight shapes"):
        copy_hub_weights(_hub_mit("mit_b1", size=64), model)


def test_the_mit_backbones_are_registered():
    assert {"hub_mit_b0", "hub_mit_b1"} <= set(HUB_BACKBONES)
    assert HUB_BACKBONES["hub_mit_b0"].preprocessing == "torch"
    assert "mit_b0_ade20k_512" in HUB_BACKBONES["hub_mit_b0"].weights_from
    assert "mit_b0_ade20k_512" in keras_hub.models.MiTBackbone.presets


def _network(unroll_mode="parallel", num_iterations=2):
    from rignet_keras import RIGNet

    return RIGNet(
        NUM_CLASSES,
        backbone="hub_mit_b0",
        head_filters=32,
        unroll_mode=unroll_mode,
        feedback_blocks=(4, 6),
        num_iterations=num_iterations,
    )


@pytest.mark.large
def test_every_unroll_mode():
    from rignet_keras.models.arguments import UNROLL_MODES

    x = images(batch=1, height=45, width=53)
    for mode in UNROLL_MODES:
        model = _network(mode)
        out = keras.ops.convert_to_numpy(model(x, num_iterations=2))
        assert out.shape == (1, 45, 53, NUM_CLASSES), mode
        assert np.isfinite(out).all(), mode
        if model.can_step:
            states = list(model.iterate(x, num_iterations=2))
            assert len(states) == 2, mode
            last = model.upsample(states[-1].logits, (45, 53))
            np.testing.assert_allclose(
                keras.ops.convert_to_numpy(last), out, atol=1e-5, err_msg=mode
            )


@pytest.mark.slow  # one training step through the unrolled network: about 100 s on 2 busy cores
def test_training_moves_every_weight():
    """Gradients reach every trainable weight through the attention, drop-path and dropout.

    At 64x72 every spatial reduction leaves at least two keys (stage 1: 16x18 reduced by 8 to
    2x2). Where it leaves one (a 48x48 image), that stage's attention weights are all 1 and its
    query and key projections get no gradient: a property of MiT, not of these layers.
    """
    model = _network()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 64, 72, 3)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, size=(2, 64, 72))
    model(x[:1])
    before = [np.array(w) for w in model.trainable_weights]
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(True))
    history = model.fit(x, y, epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    moved = [
        not np.array_equal(a, np.array(w))
        for a, w in zip(before, model.trainable_weights, strict=True)
    ]
    still = [w.path for w, m in zip(model.trainable_weights, moved, strict=True) if not m]
    assert not still, still


def _calibrated_network():
    """A parallel RIGNet on MiT-B0 whose head's batch norms are calibrated, so that its
    predictions are decided (see tests/export/conftest.py)."""
    from rignet_keras.export.samples import synthetic_images
    from rignet_keras.models.calibration import calibrate_batch_norm
    from rignet_keras.preprocessing import normalize
    from tests.harness import SIZE

    model = _network()
    calibrate_batch_norm(model, normalize(synthetic_images(4, SIZE, seed=100), model.preprocessing))
    return model


@pytest.mark.subprocess
def test_save_and_load_in_safe_mode_in_a_fresh_process(tmp_path):
    model = _calibrated_network()
    probe = images(batch=1, height=41, width=45)
    assert_reloads_in_a_fresh_process({"mit_b0": model}, probe, tmp_path)


@pytest.mark.slow  # about 4 minutes on 2 cores: TFLite and ONNX conversions, parity runs
def test_tflite_float32_and_onnx_exports_at_ui_1_and_2(tmp_path):
    """Both files match the Keras model. The ONNX file is the regression check of the attention's
    reshapes (`MiTAttention._heads`): written with the input's batch dimension they converted
    to a graph that onnxruntime refuses to run."""

    from rignet_keras.export import export_model
    from tests.harness import SIZE, assert_exports_match_keras

    model = _calibrated_network()
    folder = tmp_path / "export"
    manifest = export_model(
        model,
        folder,
        input_size=SIZE,
        formats=("tflite", "onnx"),
        uis=(1, 2),
        precisions=("float32",),
        stepwise_precisions=("float32",),
        latency_runs=2,
    )
    signatures = [s for a in manifest["artifacts"] for s in a["signatures"] if "parity" in s]
    assert signatures and all(s["parity"]["passed"] for s in signatures)
    assert_exports_match_keras(model, folder, what="hub_mit_b0")
