"""The mechanics of `bench.voc_dry_run`: the VOC + SBD layout it writes is what the data layer
reads as voc_aug, its ResNet-50 weights file loads through the backbone loader, and its readings
of a run (the recipe's learning rate, Keras' epoch lines) are right."""

import os

import numpy as np
import pytest
from PIL import Image

from bench import voc_dry_run as dry
from rignet_keras.data.sbd import read_sbd_mask, voc_aug_train_ids
from rignet_keras.data.sources import get_records
from rignet_keras.data.voc import read_png_mask


def test_written_layout_reads_as_voc_aug(tmp_path):
    info = dry.write_voc_and_sbd(str(tmp_path), num_voc_train=6, num_val=3, num_sbd=8)
    ids, _ = voc_aug_train_ids(str(tmp_path))
    assert len(ids) == info["voc_aug_train"] == 6 + 8 - 2 - 2  # minus shared and VOC val ids
    val, val_info = get_records("voc", "val", str(tmp_path))
    assert len(val) == 3 and val_info.num_classes == 21
    train, _ = get_records("voc_aug", "train", str(tmp_path))
    assert sorted(r.id for r in train) == ids
    assert not {r.id for r in train} & {r.id for r in val}
    sizes = set()
    for record in train + val:
        with Image.open(record.image_path) as image:
            assert image.format == "JPEG"
            sizes.add(image.size[::-1])
        read = read_sbd_mask if record.mask_path.endswith(".mat") else read_png_mask
        mask = read(record.mask_path)
        assert mask.shape == image.size[::-1]
        assert set(np.unique(mask)) <= set(range(21)) | {255}
        if record.mask_path.endswith(".png"):  # VOC's own masks: palette PNGs with void
            with Image.open(record.mask_path) as png:
                assert png.mode == "P"
            assert 255 in mask
    assert len(sizes) >= 3 and max(max(s) for s in sizes) == 500


def test_recipe_learning_rate_formula():
    assert dry.recipe_lr(0) == pytest.approx(0.001)  # 0.1 x 0.01 at the start of the warm-up
    assert dry.recipe_lr(250) == pytest.approx(0.01 * (1 - 250 / 30000) ** 0.9 * 0.55)
    assert dry.recipe_lr(500) == pytest.approx(0.01 * (1 - 500 / 30000) ** 0.9)
    assert dry.recipe_lr(30000) == 0.0
    checked = dry.check_schedule([{"step": 6.0, "lr": dry.recipe_lr(6)}, {"loss": 1.0}])
    assert checked["ok"] and [r["step"] for r in checked["rows"]] == [6]
    assert not dry.check_schedule([{"step": 6.0, "lr": 0.01}])["ok"]


def test_epoch_lines_give_seconds_per_step(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(
        "Epoch 1/5000\n6/6 - 663s - 111s/step - loss: 3.0 - lr: 0.0011 - step: 6.0000\n"
        "Epoch 2/5000\n6/6 - 3s - 450ms/step - loss: 2.0\n"
    )
    assert dry.epoch_step_times(str(log)) == [111.0, 0.45]


@pytest.mark.slow
def test_weights_file_loads_through_the_backbone_loader(tmp_path):
    from rignet_keras.backbones import build_blocks, load_imagenet_weights

    path = str(tmp_path / "w" / "resnet50_notop.weights.h5")
    written = dry.write_resnet50_weights(path)
    assert os.path.getsize(path) == written["bytes"] > 90e6
    blocks, _ = build_blocks("resnet50", 21)
    assert load_imagenet_weights("resnet50", blocks, path) > 100
