"""keras-hub backbones cut at their pyramid levels (random weights, built from their constructors,
offline), their weights from a local file and a preset folder, and the message without
keras-hub."""

import sys

import keras
import numpy as np
import pytest

from rignet_keras.backbones import BACKBONES, build_blocks, load_imagenet_weights, split_model
from rignet_keras.backbones.hub import HUB_BACKBONES, INSTALL_HINT
from tests.harness import backbone_params, chained, images, perturbed

CONTRACTS = {
    "hub_resnet18": [(64, 4), (64, 4), (128, 8), (256, 16), (512, 32)],
    "hub_resnet_vd34": [(64, 4), (64, 4), (128, 8), (256, 16), (512, 32)],
    "hub_resnet50": [(64, 4), (256, 4), (512, 8), (1024, 16), (2048, 32)],
    "hub_mobilenet_v3_small": [(16, 2), (16, 4), (24, 8), (48, 16), (576, 32)],
    "hub_mit_b0": [(32, 4), (32, 4), (64, 8), (160, 16), (256, 32)],
    "hub_mit_b1": [(64, 4), (64, 4), (128, 8), (320, 16), (512, 32)],
}


def test_every_hub_backbone_is_registered_with_a_contract_here():
    assert set(CONTRACTS) == set(HUB_BACKBONES)
    assert set(HUB_BACKBONES) <= set(BACKBONES)


# keras-hub's registry counts a dense classifier on the last features in some presets' "params":
# {preset: classes}. The difference of the counts is exactly that layer (features * classes +
# classes), so the rest of the architecture is the one recorded here.
PRESET_CLASSIFIERS = {
    "resnet_vd_34_imagenet": 1000,
    "mit_b0_ade20k_512": 10,
    "mit_b1_ade20k_512": 10,
}


@pytest.mark.parametrize("name", backbone_params(sorted(HUB_BACKBONES)))
def test_recorded_architectures_are_the_published_presets(name):
    """Offline, against keras-hub's preset registry (its metadata ships with the package): the
    preset that `backbone_weights="imagenet"` downloads exists, and the keras-hub model built
    from the constructor arguments recorded in `hub.py` has the preset's parameter count."""
    keras_hub = pytest.importorskip("keras_hub")
    from rignet_keras.backbones.hub import MIT_HUB_IMAGE_SHAPE

    source = HUB_BACKBONES[name].source
    if name.startswith("hub_mit"):
        config, preset = source.args
        cls, shape = keras_hub.models.MiTBackbone, MIT_HUB_IMAGE_SHAPE
    else:
        class_name, config, preset = source.args
        cls, shape = getattr(keras_hub.models, class_name), (None, None, 3)
    assert preset in cls.presets, (name, preset, sorted(cls.presets))
    published = cls.presets[preset]["metadata"]["params"]
    model = cls(**config, image_shape=shape)
    classifier = (model.outputs[-1].shape[-1] + 1) * PRESET_CLASSIFIERS.get(preset, 0)
    assert model.count_params() + classifier == published


def test_without_keras_hub_the_hub_backbones_say_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_hub", None)  # `import keras_hub` now fails
    for name in ("hub_resnet18", "hub_mit_b0"):
        with pytest.raises(ImportError, match="need keras-hub, which is not installed") as error:
            build_blocks(name, num_classes=3)
        assert INSTALL_HINT in str(error.value)
    _, contracts = build_blocks("mobilenetv3small", num_classes=3)  # nothing else changes
    assert len(contracts) == 6


@pytest.mark.parametrize("name", backbone_params(sorted(HUB_BACKBONES)))
def test_blocks_chained_are_the_source_features(name):
    pytest.importorskip("keras_hub")
    backbone = HUB_BACKBONES[name]
    source = perturbed(backbone.source(None))
    cuts = backbone.cuts(source)
    blocks, contracts = split_model(source, cuts, check=False)
    ends = [source.get_layer(c).output if isinstance(c, str) else c for c in cuts]
    x = images(batch=1, height=45, width=53)
    expected = keras.Model(source.inputs[0], ends)(x, training=False)
    for k, (ours, theirs) in enumerate(zip(chained(blocks, x), expected, strict=True), start=1):
        np.testing.assert_array_equal(ours, keras.ops.convert_to_numpy(theirs), err_msg=f"B{k}")
    assert [(c.channels, c.stride) for c in contracts] == CONTRACTS[name]


def _assert_same_weights(blocks, source):
    reference = {layer.name: layer.get_weights() for layer in source.layers if layer.weights}
    seen = 0
    for layer in (layer for block in blocks[:5] for layer in block.layers if layer.weights):
        for ours, theirs in zip(layer.get_weights(), reference[layer.name], strict=True):
            np.testing.assert_array_equal(ours, theirs, err_msg=layer.name)
        seen += 1
    assert seen == len(reference)


@pytest.mark.large
def test_hub_weights_from_a_local_file_and_a_preset_folder(tmp_path):
    """Weights of a random keras-hub ResNet-18 load into the blocks tensor by tensor, from a
    `.weights.h5` file and from a preset folder written by keras-hub's `save_to_preset`."""
    pytest.importorskip("keras_hub")
    from rignet_keras import RIGNet

    source = perturbed(HUB_BACKBONES["hub_resnet18"].source(None))
    path = tmp_path / "resnet18.weights.h5"
    source.save_weights(path)
    blocks, _ = build_blocks("hub_resnet18", num_classes=3)
    assert load_imagenet_weights("hub_resnet18", blocks, str(path)) > 0
    _assert_same_weights(blocks, source)

    preset = tmp_path / "preset"
    source.save_to_preset(str(preset))
    model = RIGNet(3, backbone="hub_resnet18", num_iterations=1, backbone_weights=str(preset))
    _assert_same_weights(model.blocks, source)
    with pytest.raises(ValueError, match="backbone weights file not found: '/nope.h5'"):
        load_imagenet_weights("hub_resnet18", blocks, "/nope.h5")
