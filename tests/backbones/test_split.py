"""Cutting functional models into RIGNet blocks: the splitter's checks, and the backbones
registered from `keras.applications` (random weights, small odd inputs, offline)."""

import keras
import numpy as np
import pytest
from keras import layers

from rignet_keras.backbones import (
    BACKBONES,
    build_blocks,
    get_backbone_spec,
    load_imagenet_weights,
    split_backbone,
    split_model,
)
from rignet_keras.backbones.applications import APPLICATION_BACKBONES
from tests.harness import (
    assert_reloads_in_a_fresh_process,
    backbone_params,
    chained,
    images,
    perturbed,
)

# (channels, stride) of B1-B5 of each backbone, from the published architectures.
CONTRACTS = {
    "efficientnetv2b0": [(16, 2), (32, 4), (48, 8), (112, 16), (1280, 32)],
    "mobilenetv3small": [(16, 2), (16, 4), (24, 8), (48, 16), (576, 32)],
    "mobilenetv3large": [(16, 2), (24, 4), (40, 8), (112, 16), (960, 32)],
    "convnext_tiny": [(96, 4), (96, 4), (192, 8), (384, 16), (768, 32)],
    "resnet50v2": [(64, 4), (256, 4), (512, 8), (1024, 16), (2048, 32)],
}


def test_every_application_backbone_has_a_contract_here():
    assert set(CONTRACTS) == set(APPLICATION_BACKBONES)
    assert set(APPLICATION_BACKBONES) <= set(BACKBONES)


@pytest.mark.parametrize("name", backbone_params(sorted(APPLICATION_BACKBONES)))
def test_blocks_chained_are_the_source_features(name):
    """Blocks cut from a source with random weights give its features at every cut, bit for bit,
    at an odd input size; the contracts are the architecture's channels and strides."""
    backbone = APPLICATION_BACKBONES[name]
    source = perturbed(backbone.source(None))
    cuts = backbone.cuts(source)
    blocks, contracts = split_model(source, cuts, check=False)
    ends = [source.get_layer(c).output if isinstance(c, str) else c for c in cuts]
    x = images(batch=1, height=45, width=53)
    expected = keras.Model(source.inputs[0], ends)(x, training=False)
    for k, (ours, theirs) in enumerate(zip(chained(blocks, x), expected, strict=True), start=1):
        np.testing.assert_array_equal(ours, keras.ops.convert_to_numpy(theirs), err_msg=f"B{k}")
    assert [(c.channels, c.stride) for c in contracts] == CONTRACTS[name]
    # The registry adds the head: six blocks, B6 at B5's stride with one channel per class.
    _, registered = build_blocks(name, num_classes=7)
    assert [(c.channels, c.stride) for c in registered] == [*CONTRACTS[name], (7, 32)]


def _toy_model():
    """conv a (stride 2) -> conv b -> add(a, conv c(b)) -> four strided convs."""
    inputs = keras.Input((None, None, 3))
    a = layers.Conv2D(4, 3, strides=2, padding="same", name="a")(inputs)
    b = layers.Conv2D(4, 3, padding="same", name="b")(a)
    c = layers.Conv2D(4, 3, padding="same", name="c")(b)
    x = layers.Add(name="skip_add")([a, c])
    for k in range(4):
        x = layers.Conv2D(8, 3, strides=2, padding="same", name=f"d{k}")(x)
    return keras.Model(inputs, x, name="toy")


def test_a_residual_path_across_a_cut_is_refused_naming_the_layers():
    with pytest.raises(
        ValueError,
        match=r"the cut at 'b' does not separate the graph: layer 'skip_add' of B2 reads 'a'",
    ):
        split_model(_toy_model(), ["b", "skip_add", "d1", "d2", "d3"])
    split_model(_toy_model(), ["a", "skip_add", "d1", "d2", "d3"])  # the add inside one block


def test_a_residual_path_across_a_cut_of_an_application_is_refused():
    source = keras.applications.ResNet50V2(include_top=False, weights=None)
    cuts = [
        "pool1_pool",
        "conv2_block1_2_conv",
        "conv3_block3_out",
        "conv4_block5_out",
        "post_relu",
    ]
    with pytest.raises(
        ValueError, match=r"layer 'conv2_block1_0_conv' of B3 reads 'conv2_block1_preact_relu'"
    ):
        split_model(source, cuts)


def test_unknown_layers_and_wrong_counts_are_clear_errors():
    toy = _toy_model()
    with pytest.raises(ValueError, match=r"cut 'nope': no layer of that name in model 'toy'"):
        split_model(toy, ["a", "skip_add", "nope", "d2", "d3"])
    with pytest.raises(ValueError, match=r"needs 5 cuts \(the ends of blocks B1-B5\); received 4"):
        split_model(toy, ["a", "skip_add", "d1", "d3"])
    with pytest.raises(ValueError, match=r"needs 5 cuts .*; received 6"):
        split_model(toy, ["a", "b", "skip_add", "d1", "d2", "d3"])
    with pytest.raises(ValueError, match=r"cut 'd0' \(end of B3\) comes before cut 'd1'"):
        split_model(toy, ["a", "d1", "d0", "d2", "d3"])


def test_a_layer_shared_by_two_blocks_is_refused():
    inputs = keras.Input((None, None, 3))
    shared = layers.Conv2D(4, 3, padding="same", name="shared")
    x = layers.Conv2D(4, 3, strides=2, padding="same", name="s0")(inputs)
    for k in range(1, 5):
        x = layers.Conv2D(4, 3, strides=2, padding="same", name=f"s{k}")(shared(x))
    model = keras.Model(inputs, x, name="shared_toy")
    with pytest.raises(ValueError, match="layer 'shared' is called in B2 and in B3; blocks cannot"):
        split_model(model, ["s0", "s1", "s2", "s3", "s4"])


def _toy_backbone(num_classes):
    toy = perturbed(_toy_model())
    return split_backbone(toy, ["a", "skip_add", "d1", "d2", "d3"], num_classes=num_classes)


def _application_backbone(name, num_classes):
    backbone = APPLICATION_BACKBONES[name]
    source = perturbed(backbone.source(None))
    return split_backbone(source, backbone.cuts(source), num_classes, head_filters=8)


@pytest.mark.subprocess
def test_split_backbone_blocks_load_in_safe_mode_in_a_fresh_process(tmp_path):
    """A list from `split_backbone` is a RIGNet backbone as it stands; its `.keras` file loads in
    safe mode in a new process that never sees the source models (a toy built here, MobileNetV3's
    symbolic operations, ConvNeXt's own layer classes) and gives the same outputs."""
    from rignet_keras import RIGNet

    blocks, contracts = _toy_backbone(3)
    assert [(c.channels, c.stride) for c in contracts] == [
        (4, 2), (4, 2), (8, 8), (8, 16), (8, 32), (3, 32)
    ]  # fmt: skip
    cases = {
        "toy": blocks,
        "mobilenetv3small": _application_backbone("mobilenetv3small", 3)[0],
        "convnext_tiny": _application_backbone("convnext_tiny", 3)[0],
    }
    x = images(batch=1, height=41, width=37)
    models = {
        name: RIGNet(3, backbone=backbone, feedback_blocks=(4, 6), num_iterations=2)
        for name, backbone in cases.items()
    }
    assert_reloads_in_a_fresh_process(models, x, tmp_path, atol=1e-6)


def test_split_backbones_keep_their_native_output_stride():
    with pytest.raises(ValueError, match="output_stride=16: a backbone cut from a model keeps"):
        build_blocks("mobilenetv3small", 3, output_stride=16)


def test_sync_batch_norm_reaches_the_copied_layers():
    blocks, _ = build_blocks("mobilenetv3small", 3, sync_batch_norm=True)
    norms = [n for b in blocks for n in b.layers if isinstance(n, layers.BatchNormalization)]
    assert norms and all(n.synchronized for n in norms)


@pytest.mark.large
def test_application_weights_from_a_local_file(tmp_path):
    """Weights written from a random source load into the blocks, equal tensor by tensor, both
    through `load_imagenet_weights` and `RIGNet(backbone_weights=path)`."""
    from rignet_keras import RIGNet

    backbone = APPLICATION_BACKBONES["efficientnetv2b0"]
    source = perturbed(backbone.source(None))
    path = tmp_path / "efficientnetv2-b0_notop.weights.h5"
    source.save_weights(path)
    reference = {
        layer.name: layer.get_weights() for layer in source.layers if layer.weights
    }  # fmt: skip
    blocks, _ = build_blocks("efficientnetv2b0", num_classes=3)
    assert load_imagenet_weights("efficientnetv2b0", blocks, str(path)) == len(reference)
    model = RIGNet(3, backbone="efficientnetv2b0", num_iterations=1, backbone_weights=str(path))
    for loaded in (blocks[:5], model.blocks[:5]):
        seen = 0
        for layer in (layer for block in loaded for layer in block.layers if layer.weights):
            for ours, theirs in zip(layer.get_weights(), reference[layer.name], strict=True):
                np.testing.assert_array_equal(ours, theirs, err_msg=layer.name)
            seen += 1
        assert seen == len(reference)
    assert get_backbone_spec("efficientnetv2b0").preprocessing == "torch"
    with pytest.raises(ValueError, match="backbone weights file not found: '/nope.h5'"):
        load_imagenet_weights("efficientnetv2b0", blocks, "/nope.h5")
    wrong = tmp_path / "resnet50v2.weights.h5"
    keras.applications.ResNet50V2(include_top=False, weights=None).save_weights(wrong)
    with pytest.raises(ValueError, match="could not be loaded"):
        load_imagenet_weights("efficientnetv2b0", blocks, str(wrong))
