"""Shared fixtures of the training tests: a tiny backbone and a tiny learnable dataset."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

NUM_CLASSES = 3


def tiny_blocks(num_classes=NUM_CLASSES, width=8, dropout=0.1, sync_batch_norm=False):
    """Six small blocks B1-B6 (strides 2, 2, 2, 1, 2, 1), the last to `num_classes`: a custom
    backbone that traces in seconds, with batch norm (state) and a dropout in the head."""

    def conv_block(name, filters, stride, in_channels):
        return keras.Sequential(
            [
                keras.Input((None, None, in_channels)),
                keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False),
                keras.layers.BatchNormalization(synchronized=sync_batch_norm),
                keras.layers.ReLU(),
            ],
            name=name,
        )

    head = keras.Sequential(
        [
            keras.Input((None, None, 2 * width)),
            keras.layers.Conv2D(width, 3, padding="same"),
            keras.layers.Dropout(dropout),
            keras.layers.Conv2D(num_classes, 1),
        ],
        name="block6",
    )
    return [
        conv_block("block1", width, 2, 3),
        conv_block("block2", width, 2, width),
        conv_block("block3", 2 * width, 2, width),
        conv_block("block4", 2 * width, 1, 2 * width),
        conv_block("block5", 2 * width, 2, 2 * width),
        head,
    ]


def make_arrays(num, size=32, num_classes=NUM_CLASSES, seed=0):
    """Random images whose mask is a function of the image: the class of a pixel is which of
    three colour bands the smoothed red channel falls in; a border of void (255)."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(num, size // 8, size // 8, 3)).astype("float32")
    images = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)
    images += 0.1 * rng.normal(size=images.shape).astype("float32")
    edges = np.quantile(images[..., 0], np.linspace(0, 1, num_classes + 1)[1:-1])
    masks = np.digitize(images[..., 0], edges).astype("int32")
    masks[:, :1, :] = 255
    return images.astype("float32"), masks


def make_dataset(num=16, batch_size=4, size=32, seed=0):
    images, masks = make_arrays(num, size, seed=seed)
    return tf.data.Dataset.from_tensor_slices((images, masks)).batch(batch_size)


@pytest.fixture
def tiny_dataset():
    return make_dataset()


def write_voc_fixture(root, num_train=6, num_val=3, size=(48, 64), seed=0):
    """A tiny VOCdevkit: JPEGs, palette PNG masks (classes 0, 1, 15 and void 255 borders), the
    ImageSets lists, and the SegmentationClassAug folder + train_aug.txt of VOC-aug."""
    from PIL import Image

    from rignet_keras.training.visualize import voc_palette

    rng = np.random.default_rng(seed)
    voc = os.path.join(root, "VOCdevkit", "VOC2012")
    folders = {
        name: os.path.join(voc, name)
        for name in ("JPEGImages", "SegmentationClass", "SegmentationClassAug")
    }
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    sets = os.path.join(voc, "ImageSets", "Segmentation")
    os.makedirs(sets, exist_ok=True)
    h, w = size
    palette = voc_palette().reshape(-1).tolist()
    ids = {"train": [], "val": []}
    for split, n in (("train", num_train), ("val", num_val)):
        for i in range(n):
            sample_id = f"2007_{split}{i:03d}"
            image = np.full((h, w, 3), 100, np.uint8) + rng.integers(
                0, 20, (h, w, 3), dtype=np.uint8
            )
            mask = np.zeros((h, w), np.uint8)
            for cls, colour in ((1, (220, 40, 40)), (15, (40, 40, 220))):
                y0, x0 = int(rng.integers(0, h - 16)), int(rng.integers(0, w - 16))
                image[y0 : y0 + 16, x0 : x0 + 16] = colour
                mask[y0 : y0 + 16, x0 : x0 + 16] = cls
                mask[y0, x0 : x0 + 16] = 255
            Image.fromarray(image).save(os.path.join(folders["JPEGImages"], f"{sample_id}.jpg"))
            png = Image.frombytes("P", (w, h), mask.tobytes())
            png.putpalette(palette)
            png.save(os.path.join(folders["SegmentationClass"], f"{sample_id}.png"))
            png.save(os.path.join(folders["SegmentationClassAug"], f"{sample_id}.png"))
            ids[split].append(sample_id)
    lists = {**ids, "trainval": ids["train"] + ids["val"], "train_aug": ids["train"]}
    for name, entries in lists.items():
        with open(os.path.join(sets, f"{name}.txt"), "w") as f:
            f.write("".join(f"{i}\n" for i in entries))
    return root


VOC_RECIPE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "recipes",
    "voc_r50.py",
)


# The flags that make recipes/voc_r50.py a two-step ResNet-18 run on the tiny VOCdevkit.
SMALL_VOC_RUN = (
    "--backbone",
    "resnet18",
    "--steps",
    "2",
    "--batch-size",
    "2",
    "--crop-size",
    "48",
    "--eval-size",
    "64",
    "--num-visualize",
    "2",
    "--quiet",
)


@pytest.fixture(scope="session")
def voc_run(tmp_path_factory):
    """A finished two-step run of recipes/voc_r50.py (ResNet-18, ui = 6) on a tiny VOCdevkit:
    (data_dir, run folder). Shared by the recipe, command-line and configuration tests."""
    from rignet_keras.cli import load_recipe

    root = tmp_path_factory.mktemp("voc")
    data_dir = write_voc_fixture(str(root / "data"))
    out = root / "run"
    module = load_recipe(VOC_RECIPE)
    argv = ["--data-dir", data_dir, "--output-dir", str(out), *SMALL_VOC_RUN]
    assert module.recipe_main(module.EXPERIMENTS, argv) == 0
    return data_dir, out
