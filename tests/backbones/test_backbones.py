"""The backbone contract over the registry, and ImageNet weights loading by layer name."""

import keras
import numpy as np
import pytest

from rignet_keras.backbones import (
    BACKBONES,
    build_blocks,
    load_imagenet_weights,
    transfer_weights_by_name,
)
from rignet_keras.backbones.common import stage_strides_and_dilations
from tests.harness import backbone_params, chained, images

SMALL = ["resnet18", "resnet34", "resnet50", "mobilenetv2"]


@pytest.mark.parametrize("name", backbone_params(BACKBONES))
def test_backbone_contract(name):
    """Every block returns its declared channels at its declared stride; no NaN."""
    if name.startswith("hub_"):
        pytest.importorskip("keras_hub")
    output_stride = 8 if name == "deeplabv2" else 32
    blocks, contracts = build_blocks(name, num_classes=7)
    assert len(blocks) == len(contracts) == 6
    size = 64
    outs = chained(blocks, images(batch=1, height=size, width=size))
    for k, (out, contract) in enumerate(zip(outs, contracts, strict=True), start=1):
        assert out.shape[-1] == contract.channels, f"{name} block {k}"
        assert out.shape[1] == -(-size // contract.stride), f"{name} block {k}"
        assert np.isfinite(out).all(), f"{name} block {k}"
    assert contracts[-1].stride == output_stride


@pytest.mark.parametrize("name", backbone_params(SMALL))
@pytest.mark.parametrize("output_stride", [8, 16])
def test_dilated_backbones_keep_resolution_and_weight_shapes(name, output_stride):
    plain, _ = build_blocks(name, 3, output_stride=32)
    dilated, contracts = build_blocks(name, 3, output_stride=output_stride)
    assert contracts[-1].stride == output_stride
    assert [w.shape for b in plain for w in b.weights] == [
        w.shape for b in dilated for w in b.weights
    ]
    out = chained(dilated, images(batch=1, height=64, width=64))[-1]
    assert out.shape[1:3] == (64 // output_stride, 64 // output_stride)


@pytest.mark.large
def test_resnet_block_table_matches_spec():
    _, r50 = build_blocks("resnet50", 21)
    assert [(c.channels, c.stride) for c in r50] == [
        (64, 4),
        (256, 4),
        (512, 8),
        (1024, 16),
        (2048, 32),
        (21, 32),
    ]
    _, os8 = build_blocks("resnet101", 21, output_stride=8)
    assert [(c.stride, c.dilation) for c in os8[3:5]] == [(8, 2), (8, 4)]


def test_stride_plan():
    assert stage_strides_and_dilations((4, 1, 2, 2, 2), 32) == [
        (4, 1),
        (1, 1),
        (2, 1),
        (2, 1),
        (2, 1),
    ]
    assert stage_strides_and_dilations((4, 1, 2, 2, 2), 8) == [
        (4, 1),
        (1, 1),
        (2, 1),
        (1, 2),
        (1, 4),
    ]


STAGES = {
    "resnet50": (
        keras.applications.ResNet50,
        [
            "pool1_pool",
            "conv2_block3_out",
            "conv3_block4_out",
            "conv4_block6_out",
            "conv5_block3_out",
        ],
    ),
    "mobilenetv2": (
        keras.applications.MobileNetV2,
        ["expanded_conv_project_BN", "block_2_add", "block_5_add", "block_12_add", "out_relu"],
    ),
}


@pytest.mark.parametrize("name", backbone_params(STAGES))
def test_keras_applications_weights_load_by_name(name, tmp_path):
    """Weights of a randomly initialised keras.applications model give the same stage outputs."""
    constructor, stage_names = STAGES[name]
    source = constructor(include_top=False, weights=None, input_shape=(None, None, 3))
    rng = np.random.default_rng(5)
    for layer in source.layers:  # batch-norm statistics too, so nothing matches by accident
        if layer.weights:
            layer.set_weights(
                [rng.normal(1.0, 0.1, w.shape).astype("float32") for w in layer.get_weights()]
            )
    blocks, _ = build_blocks(name, num_classes=3)
    copied = transfer_weights_by_name(source, blocks[:5])
    assert copied == sum(1 for layer in source.layers if layer.weights)
    stages = keras.Model(source.input, [source.get_layer(n).output for n in stage_names])
    # Keras' MobileNetV2 built for unknown sizes pads stride-2 convolutions (0, 1) even at odd
    # sizes, unlike its own fixed-size build; at even sizes all three agree with 'same'.
    x = images(batch=1, height=67, width=61) if name == "resnet50" else images(1, 64, 96)
    expected = [keras.ops.convert_to_numpy(o) for o in stages(x, training=False)]
    ours = chained(blocks[:5], x)
    for k, (a, b) in enumerate(zip(ours, expected, strict=True), start=1):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max(), err_msg=f"B{k}")


@pytest.mark.large
def test_imagenet_weights_from_a_local_file(tmp_path):
    source = keras.applications.ResNet50(include_top=False, weights=None)
    path = tmp_path / "resnet50_notop.weights.h5"
    source.save_weights(path)
    blocks, _ = build_blocks("resnet50", num_classes=3)
    assert load_imagenet_weights("resnet50", blocks, str(path)) == 106
    kernel = source.get_layer("conv4_block2_2_conv").get_weights()[0]
    np.testing.assert_array_equal(
        blocks[3].get_layer("conv4_block2_2_conv").get_weights()[0], kernel
    )


def test_weights_errors_name_the_problem(tmp_path):
    blocks, _ = build_blocks("resnet18", num_classes=3)
    with pytest.raises(ValueError, match="no ImageNet weights are published for backbone"):
        load_imagenet_weights("resnet18", blocks)
    with pytest.raises(ValueError, match="backbone weights file not found: '/nope.h5'"):
        load_imagenet_weights("resnet50", blocks, "/nope.h5")
    source = keras.applications.MobileNetV2(include_top=False, weights=None)
    with pytest.raises(ValueError, match="has no namesake"):
        transfer_weights_by_name(source, blocks[:5])


def test_a_weights_file_of_another_architecture_is_one_line_naming_it(tmp_path):
    """Keras lists every object that did not load (tens of kilobytes); the error names the
    file and the backbone it was meant for, in one short line."""
    other = keras.applications.MobileNetV3Small(include_top=False, weights=None)
    path = str(tmp_path / "mobilenetv3small.weights.h5")
    other.save_weights(path)
    blocks, _ = build_blocks("mobilenetv2", num_classes=3)
    with pytest.raises(ValueError) as error:
        load_imagenet_weights("mobilenetv2", blocks, path)
    message = str(error.value)
    assert message.startswith(f"backbone weights {path!r} do not load into backbone 'mobilenetv2'")
    assert "\n" not in message and len(message) < 500


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("backbone", "named"),
    [
        ("resnet50", ["https://storage.googleapis.com/"]),
        ("hub_resnet18", ["from_preset('resnet_18_imagenet')", "a preset folder"]),
        ("hub_mit_b0", ["from_preset('mit_b0_ade20k_512')", "trained on ADE20K"]),
    ],
)
def test_published_weights_offline_fail_fast_naming_the_source_and_the_local_option(
    tmp_path, backbone, named
):
    """A real failed download (a proxy on a closed loopback port refuses the connection; empty
    Keras and kagglehub caches): one error naming where the weights come from (the URL, or the
    keras-hub preset and what it was trained on) and the local-file option."""
    import os
    import subprocess
    import sys

    if backbone.startswith("hub_"):
        pytest.importorskip("keras_hub")
    env = dict(os.environ, KERAS_HOME=str(tmp_path / "keras_home"))
    env.update(KAGGLEHUB_CACHE=str(tmp_path / "kagglehub"))
    env.update(HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")
    code = (
        "from rignet_keras import RIGNet\n"
        "from rignet_keras.backbones import WeightsDownloadError\n"
        "try:\n"
        f"    RIGNet(num_classes=3, backbone={backbone!r}, backbone_weights='imagenet')\n"
        "except WeightsDownloadError as error:\n"
        "    print('ERROR', error)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("ERROR")]
    assert len(line) == 1, proc.stdout
    assert f"backbone {backbone!r}" in line[0]
    assert "pass the local file (or keras-hub preset folder) as backbone_weights" in line[0]
    for text in named:
        assert text in line[0]
