"""RIGNet's behaviour against hand-written references of its unrolling (docs/DESIGN.md)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from rignet_keras import RIGNet
from rignet_keras.models.arguments import BLOCKWISE_MODES, UNROLL_MODES
from tests.harness import images, tiny_rignet


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _feed_forward(model, x):
    """The plain network: B1..B6 in order, logits resized to the input."""
    y = x
    for block in model.blocks:
        y = block(y, training=False)
    return _np(model.upsample(y, x.shape[1:3]))


def _randomise_gates(model, scale=0.05):
    """Gates start near identity-like; push them away so unrolling visibly matters."""
    rng = np.random.default_rng(7)
    layers = list(model.gates) + ([model.network_feedback] if model.network_feedback else [])
    for layer in layers:
        for w in layer.weights:
            w.assign(rng.normal(scale=scale, size=w.shape).astype("float32"))


@pytest.mark.parametrize("mode", UNROLL_MODES)
def test_one_iteration_is_the_feed_forward_network(mode):
    model = tiny_rignet(unroll_mode=mode, feedback_blocks=(2, 6))
    x = images()
    np.testing.assert_allclose(
        _np(model(x, num_iterations=1)), _feed_forward(model, x), rtol=1e-5, atol=1e-5
    )


def test_parallel_matches_a_hand_unrolled_reference():
    model = tiny_rignet(unroll_mode="parallel", feedback_blocks=(4, 6))
    x = images()
    model(x)
    _randomise_gates(model)
    b, g = model.blocks, model.gates
    y = [x]
    for block in b:
        y.append(block(y[-1]))
    for _ in range(2):  # passes 2 and 3; B1-B3 are not recomputed
        y4 = b[3](g[0]((y[3], y[4])))
        y5 = b[4](g[1]((y4, y[5])))
        y6 = b[5](g[2]((y5, y[6])))
        y = y[:4] + [y4, y5, y6]
    expected = _np(model.upsample(y[6], x.shape[1:3]))
    np.testing.assert_allclose(_np(model(x, num_iterations=3)), expected, rtol=1e-5, atol=1e-5)


def test_sequential_matches_a_hand_unrolled_reference():
    model = tiny_rignet(unroll_mode="sequential", feedback_blocks=(5, 6))
    x = images()
    model(x)
    _randomise_gates(model)
    b, g = model.blocks, model.gates
    h = x
    for block in b[:4]:
        h = block(h)
    y5 = b[4](h)
    for _ in range(2):
        y5 = b[4](g[0]((h, y5)))
    y6 = b[5](y5)
    for _ in range(2):
        y6 = b[5](g[1]((y5, y6)))
    expected = _np(model.upsample(y6, x.shape[1:3]))
    np.testing.assert_allclose(_np(model(x, num_iterations=3)), expected, rtol=1e-5, atol=1e-5)


def test_multi_range_matches_a_hand_unrolled_reference():
    model = tiny_rignet(unroll_mode="multi_range", feedback_blocks=(5, 6))
    x = images()
    model(x)
    _randomise_gates(model)
    b, g = model.blocks, model.gates
    h = x
    for block in b[:4]:
        h = block(h)
    y5, y6 = b[4](h), None
    y6 = b[5](y5)
    y5_next = b[4](g[0]((h, y5, y6)))  # short range y5, long range y6
    y6_next = b[5](g[1]((y5_next, y6)))  # B6's own gate is the basic one
    expected = _np(model.upsample(y6_next, x.shape[1:3]))
    np.testing.assert_allclose(_np(model(x, num_iterations=2)), expected, rtol=1e-5, atol=1e-5)


def test_network_gated_matches_a_hand_unrolled_reference():
    model = tiny_rignet(unroll_mode="network_gated")
    x = images()
    model(x)
    _randomise_gates(model)
    logits = model.initial_state(x).logits
    gated = model.network_feedback((x, logits))
    h = gated
    for block in model.blocks:
        h = block(h)
    expected = _np(model.upsample(h, x.shape[1:3]))
    np.testing.assert_allclose(_np(model(x, num_iterations=2)), expected, rtol=1e-5, atol=1e-5)


def test_sequential_and_parallel_differ_and_iterations_are_returned():
    x = images()
    parallel = tiny_rignet(unroll_mode="parallel", return_all_iterations=True)
    parallel(x)
    _randomise_gates(parallel, scale=0.3)
    outputs = [_np(o) for o in parallel(x)]
    sequential = tiny_rignet(unroll_mode="sequential")
    sequential(x)
    sequential.set_weights(parallel.get_weights())  # same variables, same order
    assert len(outputs) == 3
    np.testing.assert_allclose(outputs[0], _np(sequential(x, num_iterations=1)), atol=1e-5)
    scale = np.abs(outputs[-1]).max()
    assert np.abs(outputs[-1] - _np(sequential(x))).max() > 0.05 * scale
    last_only = tiny_rignet(unroll_mode="parallel")
    last_only(x)
    last_only.set_weights(parallel.get_weights())
    np.testing.assert_allclose(outputs[-1], _np(last_only(x)), rtol=1e-5, atol=1e-5)
    # every iteration is a different prediction (coarse to fine)
    assert np.abs(outputs[1] - outputs[0]).max() > 0.05 * scale


@pytest.mark.parametrize("mode", UNROLL_MODES)
def test_every_variable_gets_a_gradient(mode):
    model = tiny_rignet(unroll_mode=mode, feedback_blocks=(1, 6), num_iterations=2)
    x = images(batch=2, height=48, width=48)
    target = np.random.default_rng(1).integers(0, 5, size=(2, 48, 48))
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss = keras.losses.sparse_categorical_crossentropy(target, logits, from_logits=True)
        loss = keras.ops.mean(loss)
    grads = tape.gradient(loss, model.trainable_variables)
    missing = [
        v.path
        for v, gr in zip(model.trainable_variables, grads, strict=True)
        if gr is None or not np.any(_np(gr))
    ]
    assert not missing, f"no gradient for {missing}"


def test_weights_do_not_depend_on_ui_and_gates_add_what_spec_implies():
    counts = {ui: tiny_rignet(num_iterations=ui) for ui in (1, 2, 6)}
    for model in counts.values():
        model.build((None, None, None, 3))
    assert len({m.count_params() for m in counts.values()}) == 1
    baseline = tiny_rignet(feedback_blocks=None)
    baseline.build((None, None, None, 3))
    gated = counts[2]
    # ResNet-18: B3 -> 128, B4 -> 256, B5 -> 512, B6 -> 5 channels.
    gate4 = 3 * 3 * 256 * 128 + 128  # conv from y (B4's 256) to x (B4's input, 128)
    gate5 = 3 * 3 * 512 * 256 + 256
    gate6 = 3 * 3 * 5 * 512 + 512
    assert gated.gates[0].count_params() == gate4
    # The gated passes' batch-norm statistics (mean and variance): B4 and B5 hold five norms
    # each (two per basic block, one in the first block's shortcut), the head one of 512.
    statistics = 2 * (5 * 256 + 5 * 512 + 512)
    assert gated.pass_statistics.count_params() == statistics
    assert gated.count_params() - baseline.count_params() == gate4 + gate5 + gate6 + statistics


def test_default_num_iterations_one_still_saves_every_gate(tmp_path):
    """The default call never reaches the gates; they must still save and reload."""
    model = tiny_rignet(num_iterations=1)
    x = images(batch=1)
    model(x)
    _randomise_gates(model)
    expected = _np(model(x, num_iterations=3))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(_np(loaded(x, num_iterations=3)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size", [(33, 47), (64, 64), (97, 31)])
def test_any_input_size_gives_logits_at_that_size(size):
    model = tiny_rignet()
    out = model(images(batch=1, height=size[0], width=size[1]))
    assert tuple(out.shape) == (1, *size, 5)
    assert out.dtype == "float32"


def test_one_graph_serves_every_size():
    model = tiny_rignet()
    fn = tf.function(
        lambda x: model(x, num_iterations=2),
        input_signature=[tf.TensorSpec((None, None, None, 3))],
    )
    for size in [(40, 56), (65, 71)]:
        assert tuple(fn(images(1, *size)).shape) == (1, *size, 5)


def test_mixed_precision_keeps_float32_logits():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = tiny_rignet(unroll_mode="multi_range")
        out = model(images(batch=1, height=40, width=40))
        assert out.dtype == "float32"
        assert model.gates[0].compute_dtype == "bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_custom_backbone_of_six_layers():
    def blocks():
        def conv_block(c_in, c_out, stride, name):
            inp = keras.Input((None, None, c_in))
            out = keras.layers.Conv2D(c_out, 3, strides=stride, padding="same")(inp)
            return keras.Model(inp, keras.layers.ReLU()(out), name=name)

        widths = [3, 8, 8, 16, 16, 16]
        made = [conv_block(widths[i], widths[i + 1], 2, f"b{i + 1}") for i in range(5)]
        head_in = keras.Input((None, None, 16))
        made.append(keras.Model(head_in, keras.layers.Conv2D(4, 1)(head_in), name="b6"))
        return made

    model = RIGNet(num_classes=4, backbone=blocks, feedback_blocks=(3, 6), num_iterations=2)
    x = images(batch=1, height=37, width=45)
    assert tuple(model(x).shape) == (1, 37, 45, 4)
    assert model.preprocessing == "torch"
    clone = RIGNet.from_config(model.get_config())
    clone.build(x.shape)
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(_np(clone(x)), _np(model(x)), rtol=1e-6)


@keras.saving.register_keras_serializable(package="rignet_keras_tests")
class CountingConv(keras.layers.Conv2D):
    """A convolution that counts its calls (eager), to see which blocks an unroll re-runs."""

    calls = 0

    def call(self, inputs):
        type(self).calls += 1
        return super().call(inputs)


@pytest.mark.parametrize("mode, expected", [("parallel", 1), ("multi_range", 1)])
def test_blocks_before_the_first_feedback_block_run_once(mode, expected):
    blocks = [CountingConv(8, 3, strides=2, padding="same")]
    blocks += [keras.layers.Conv2D(8, 3, padding="same") for _ in range(4)]
    blocks.append(keras.layers.Conv2D(3, 1))
    model = RIGNet(num_classes=3, backbone=blocks, unroll_mode=mode, feedback_blocks=(3, 6))
    model.build((1, 16, 16, 3))
    CountingConv.calls = 0
    model(images(batch=1, height=16, width=16), num_iterations=4)
    assert CountingConv.calls == expected


def test_network_wide_modes_rerun_the_whole_network():
    blocks = [CountingConv(8, 3, strides=2, padding="same")]
    blocks += [keras.layers.Conv2D(8, 3, padding="same") for _ in range(4)]
    blocks.append(keras.layers.Conv2D(3, 1))
    model = RIGNet(num_classes=3, backbone=blocks, unroll_mode="network_gated")
    model.build((1, 16, 16, 3))
    CountingConv.calls = 0
    model(images(batch=1, height=16, width=16), num_iterations=4)
    assert CountingConv.calls == 4


def test_preset_builds_the_papers_model():
    model = RIGNet.from_preset("deeplabv2_rignet", num_classes=21)
    assert model.backbone == "deeplabv2" and model.feedback_blocks == (4, 6)
    assert model.num_iterations == 2 and model.unroll_mode == "parallel"
    assert model.blocks[5].get_layer("aspp_conv_rate24") is not None
    assert model.blocks[4].get_layer("conv5_block1_2_conv").dilation_rate == (4, 4)


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(unroll_mode="paralel"), "unroll_mode must be one of .* received 'paralel'"),
        (dict(backbone="resnet51"), "backbone must be one of .* received 'resnet51'"),
        (dict(gate_pooling="sum"), "pooling must be one of .* received 'sum'"),
        (dict(gate_combine="add"), "combine must be one of .* received 'add'"),
        (dict(num_iterations=0), "num_iterations must be an int >= 1; received 0"),
        (dict(feedback_blocks=(0, 6)), r"feedback_blocks must be .* received \(0, 6\)"),
        (dict(feedback_blocks=(6, 4)), r"feedback_blocks must be .* received \(6, 4\)"),
        (dict(feedback_blocks=(4, 7)), r"feedback_blocks must be .* received \(4, 7\)"),
        (dict(output_stride=12), "output_stride must be one of .* received 12"),
        (dict(head="psp"), "head must be one of .* received 'psp'"),
        (dict(num_classes=0), "num_classes must be a positive int; received 0"),
        (dict(unroll_mode="sequential", return_all_iterations=True), "return_all_iterations"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_rignet(**kwargs)


def test_bad_num_iterations_at_call_time():
    model = tiny_rignet()
    with pytest.raises(ValueError, match="num_iterations must be an int >= 1; received -1"):
        model(images(batch=1), num_iterations=-1)


@pytest.mark.parametrize("shape", [(1, 32, 32), (1, 32, 32, 1), (1, 32, 32, 4)])
def test_bad_image_shapes_are_named(shape):
    model = tiny_rignet()
    with pytest.raises(ValueError, match=r"images must be \(batch, height, width, 3\)"):
        model(np.zeros(shape, "float32"))


def test_custom_backbone_with_wrong_block_count():
    with pytest.raises(ValueError, match="must have 6 blocks .* received 5"):
        RIGNet(num_classes=3, backbone=[keras.layers.Conv2D(3, 1) for _ in range(5)])


def test_custom_backbone_whose_blocks_do_not_chain():
    def block(c_in, c_out):
        inp = keras.Input((None, None, c_in))
        return keras.Model(inp, keras.layers.Conv2D(c_out, 1)(inp))

    blocks = [block(3, 8), block(8, 8), block(16, 8), block(8, 8), block(8, 8), block(8, 3)]
    model = RIGNet(num_classes=3, backbone=blocks)
    with pytest.raises(ValueError, match=r"block 3 .* cannot take an input of shape"):
        model(images(batch=1, height=16, width=16))


def test_custom_backbone_with_wrong_class_count():
    blocks = [keras.layers.Conv2D(8, 1) for _ in range(5)] + [keras.layers.Conv2D(7, 1)]
    model = RIGNet(num_classes=3, backbone=blocks)
    with pytest.raises(ValueError, match="block 6 must return num_classes=3 channels; returns 7"):
        model(images(batch=1, height=16, width=16))


def test_blockwise_modes_constant():
    assert set(BLOCKWISE_MODES) < set(UNROLL_MODES)


def test_width_multiplier_narrows_a_named_resnet_and_round_trips():
    narrow = RIGNet(num_classes=3, backbone="resnet18", width_multiplier=0.25)
    wide = RIGNet(num_classes=3, backbone="resnet18")
    x = images(1, 33, 35)
    narrow(x), wide(x)
    assert narrow.count_params() < wide.count_params() / 8
    # B5's output: 512 * 0.25 channels.
    assert narrow.blocks[4].compute_output_shape((1, 33, 35, 64))[-1] == 128
    config = narrow.get_config()
    assert config["width_multiplier"] == 0.25
    rebuilt = RIGNet.from_config(config)
    rebuilt(x)
    assert rebuilt.count_params() == narrow.count_params()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(backbone="mobilenetv2", width_multiplier=0.5), "has no width multiplier"),
        (dict(backbone="resnet18", width_multiplier=0), "must be > 0"),
        (dict(backbone="resnet18", width_multiplier="half"), "must be a number"),
        (
            dict(backbone="resnet18", width_multiplier=0.5, backbone_weights="imagenet"),
            "needs width_multiplier=1.0",
        ),
    ],
)
def test_width_multiplier_refuses_what_it_cannot_honour(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RIGNet(num_classes=3, **kwargs)
