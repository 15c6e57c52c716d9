"""The keras-hub pieces in process: the preprocessor's numbers and config round trip, the
one-line refusals (integer images without a preprocessor, unknown presets and formats, an
existing preset folder), and a backbone preset folder's round trip."""

import json

import keras
import numpy as np
import pytest

from rignet_keras.preprocessing import normalize
from rignet_keras.tasks import (
    RIGNetBackbone,
    RIGNetImageSegmenter,
    RIGNetImageSegmenterPreprocessor,
    segmentation_masks,
)

PIXELS = np.random.default_rng(0).integers(0, 256, (2, 24, 20, 3), dtype=np.uint8)


def small_backbone(**kwargs):
    return RIGNetBackbone(
        num_classes=3, backbone="resnet18", width_multiplier=0.125, num_iterations=2, **kwargs
    )


@pytest.mark.parametrize("mode", ["caffe", "torch", "tf"])
def test_preprocessor_normalises_as_the_data_pipeline_bit_for_bit(mode):
    out = RIGNetImageSegmenterPreprocessor(mode)(PIXELS)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), normalize(PIXELS, mode).numpy())


def test_preprocessor_resizes_images_and_masks_keeping_void():
    masks = np.zeros((2, 24, 20), np.uint8)
    masks[:, :12] = 255
    pre = RIGNetImageSegmenterPreprocessor("torch", image_size=(12, 10))
    x, y = pre(PIXELS, masks)
    assert tuple(x.shape) == (2, 12, 10, 3) and keras.backend.standardize_dtype(y.dtype) == "int32"
    y = keras.ops.convert_to_numpy(y)
    assert set(np.unique(y)) == {0, 255}
    assert (y[:, :6] == 255).all() and (y[:, 6:] == 0).all()


def test_preprocessor_config_round_trip():
    pre = RIGNetImageSegmenterPreprocessor("caffe", pixels="uint8", image_size=(12, 10))
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(pre)))
    again = keras.saving.deserialize_keras_object(config)
    assert type(again) is RIGNetImageSegmenterPreprocessor
    assert again.get_config() == pre.get_config()
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(again(PIXELS)), keras.ops.convert_to_numpy(pre(PIXELS))
    )


def test_normalized_preprocessor_refuses_pixels_in_one_line():
    pre = RIGNetImageSegmenterPreprocessor("torch", pixels="normalized")
    with pytest.raises(ValueError) as error:
        pre(PIXELS)
    assert str(error.value) == (
        "RIGNetImageSegmenterPreprocessor(pixels='normalized') takes normalised float images, "
        "not uint8 pixels; build it with pixels='uint8' for pixels"
    )


def test_backbone_and_segmenter_without_preprocessor_refuse_uint8_in_one_line():
    backbone = small_backbone()
    for model, owner in (
        (backbone, "RIGNetBackbone"),
        (RIGNetImageSegmenter(backbone), "RIGNetImageSegmenter without a preprocessor"),
    ):
        with pytest.raises(ValueError) as error:
            model(PIXELS)
        message = str(error.value)
        assert "\n" not in message
        assert message.startswith(f"{owner} takes normalised float images, not uint8 pixels; ")


def test_segmenter_with_preprocessor_equals_backbone_on_normalised_images():
    backbone = small_backbone()
    segmenter = RIGNetImageSegmenter(
        backbone, preprocessor=RIGNetImageSegmenterPreprocessor(backbone.preprocessing)
    )
    scores = keras.ops.convert_to_numpy(segmenter(PIXELS))
    expected = keras.ops.convert_to_numpy(backbone(normalize(PIXELS, backbone.preprocessing)))
    np.testing.assert_array_equal(scores, expected)
    masks = keras.ops.convert_to_numpy(segmentation_masks(scores))
    np.testing.assert_array_equal(masks, scores.argmax(-1))


def test_segmenter_refuses_mismatches_and_unknown_names(tmp_path):
    backbone = small_backbone()
    with pytest.raises(ValueError, match="num_classes=4 differs"):
        RIGNetImageSegmenter(backbone, num_classes=4)
    with pytest.raises(ValueError, match="normalises for 'caffe'"):
        RIGNetImageSegmenter(backbone, preprocessor=RIGNetImageSegmenterPreprocessor("caffe"))
    with pytest.raises(ValueError, match="neither a built-in preset"):
        RIGNetImageSegmenter.from_preset("no_such_preset", num_classes=3)
    segmenter = RIGNetImageSegmenter(backbone)
    with pytest.raises(ValueError, match="format must be one of"):
        segmenter.export(tmp_path / "x", format="tflite")
    with pytest.raises(ValueError, match="takes 'auto' only"):
        segmenter.compile(loss="sparse_categorical_crossentropy")
    assert not (tmp_path / "x").exists()


def test_backbone_preset_folder_round_trip_and_refuses_an_existing_folder(tmp_path):
    backbone = small_backbone()
    x = normalize(PIXELS, backbone.preprocessing)
    expected = keras.ops.convert_to_numpy(backbone(x))
    backbone.save_to_preset(tmp_path / "preset")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preset"]
    names = sorted(p.name for p in (tmp_path / "preset").iterdir())
    assert names == ["config.json", "metadata.json", "model.weights.h5"]
    again = RIGNetBackbone.from_preset(tmp_path / "preset")
    assert type(again) is RIGNetBackbone
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(again(x)), expected)
    before = (tmp_path / "preset" / "config.json").read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        small_backbone().save_to_preset(tmp_path / "preset")
    assert (tmp_path / "preset" / "config.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preset"]
    with pytest.raises(ValueError, match="has num_classes=3"):
        RIGNetBackbone.from_preset(tmp_path / "preset", num_classes=5)


def test_builtin_preset_by_name_gives_a_uint8_preprocessor():
    segmenter = RIGNetImageSegmenter.from_preset(
        "resnet18_rignet", num_classes=3, width_multiplier=0.125
    )
    assert isinstance(segmenter.backbone, RIGNetBackbone)
    assert segmenter.preprocessor.pixels == "uint8"
    assert segmenter.preprocessor.preprocessing == segmenter.backbone.preprocessing
    assert segmenter.backbone.num_iterations == 3


def test_evaluate_reports_miou_at_every_ui_from_one_unroll():
    segmenter = RIGNetImageSegmenter(
        small_backbone(), preprocessor=RIGNetImageSegmenterPreprocessor("torch")
    )
    segmenter.compile()
    masks = np.random.default_rng(1).integers(0, 3, PIXELS.shape[:3]).astype(np.uint8)
    masks[:, :4] = 255
    logs = segmenter.evaluate(PIXELS, masks, batch_size=2, verbose=0, return_dict=True)
    assert sorted(logs) == ["loss", "mIoU", "mIoU_ui1", "mIoU_ui2"]
    assert logs["mIoU_ui2"] == pytest.approx(logs["mIoU"], abs=1e-6)
    one = RIGNetImageSegmenter(
        segmenter.backbone,
        preprocessor=segmenter.preprocessor,
        eval_iterations=1,
        per_ui_metrics=False,
    )
    one.compile()
    alone = one.evaluate(PIXELS, masks, batch_size=2, verbose=0, return_dict=True)
    assert sorted(alone) == ["loss", "mIoU"]
    assert alone["mIoU"] == pytest.approx(logs["mIoU_ui1"], abs=1e-6)


def test_segmenter_keras_file_round_trip(tmp_path):
    backbone = small_backbone()
    segmenter = RIGNetImageSegmenter(
        backbone,
        preprocessor=RIGNetImageSegmenterPreprocessor("torch", image_size=(16, 16)),
        train_iterations=(1, 2),
    )
    expected = keras.ops.convert_to_numpy(segmenter(PIXELS))
    segmenter.save(tmp_path / "segmenter.keras")
    again = keras.models.load_model(tmp_path / "segmenter.keras", safe_mode=True)
    assert type(again) is RIGNetImageSegmenter and type(again.backbone) is RIGNetBackbone
    assert again.train_iterations == (1, 2) and again.preprocessor.image_size == (16, 16)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(again(PIXELS)), expected)


def test_segmenter_refuses_a_preprocessor_with_another_void_label():
    backbone = small_backbone()
    other = RIGNetImageSegmenterPreprocessor(backbone.preprocessing, ignore_label=0)
    with pytest.raises(ValueError, match="ignore_label=0 differs from the loss's 255"):
        RIGNetImageSegmenter(backbone, preprocessor=other)
