"""The one writer of the PASCAL VOC 2012 and SBD folder layouts (`VOCLayoutWriter`), used by the
synthetic dataset on disk, the benchmarks and the tests.

Layouts (under `data_dir`, as the official archives extract)::

    VOCdevkit/VOC2012/JPEGImages/<id>.jpg
    VOCdevkit/VOC2012/SegmentationClass/<id>.png        palette PNG, class ids, 255 = void
    VOCdevkit/VOC2012/ImageSets/Segmentation/<split>.txt
    benchmark_RELEASE/dataset/img/<id>.jpg
    benchmark_RELEASE/dataset/cls/<id>.mat               GTcls.Segmentation
    benchmark_RELEASE/dataset/<split>.txt

Every file is written through `rignet_runtime.atomic` (a temporary sibling, then a rename):
a writer killed partway leaves whole files and at most a temporary sibling, never a truncated one.
"""

import os

import numpy as np
from PIL import Image

from rignet_keras.data.sbd import write_sbd_mask
from rignet_keras.data.voc import write_png_mask
from rignet_runtime.atomic import replacing, write_text

VOC_SUBDIR = os.path.join("VOCdevkit", "VOC2012")
SBD_SUBDIR = os.path.join("benchmark_RELEASE", "dataset")


def write_jpeg(path, image, quality=95):
    """Writes an RGB uint8 image (H, W, 3) as a JPEG at `path`, atomically."""
    with replacing(path, suffix=".jpg") as tmp:
        Image.fromarray(np.asarray(image, np.uint8)).save(tmp, format="JPEG", quality=quality)
    return path


def write_id_list(path, ids):
    """Writes a split list (one id a line) at `path`, atomically."""
    return write_text(path, "".join(f"{i}\n" for i in ids))


class VOCLayoutWriter:
    """Writes samples and split lists in the VOC 2012 and SBD layouts under `data_dir`.

    Attributes:
        voc_root: `data_dir/VOCdevkit/VOC2012`.
        sbd_root: `data_dir/benchmark_RELEASE/dataset`.
    """

    def __init__(self, data_dir, quality=95):
        self.data_dir = os.fspath(data_dir)
        self.quality = quality
        self.voc_root = os.path.join(self.data_dir, VOC_SUBDIR)
        self.sbd_root = os.path.join(self.data_dir, SBD_SUBDIR)

    def make_voc_folders(self):
        """Creates the VOC folders (JPEGImages, SegmentationClass, ImageSets/Segmentation)."""
        for sub in ("JPEGImages", "SegmentationClass", os.path.join("ImageSets", "Segmentation")):
            os.makedirs(os.path.join(self.voc_root, sub), exist_ok=True)
        return self.voc_root

    def voc_sample(self, sample_id, image, mask):
        """Writes `JPEGImages/<id>.jpg` and `SegmentationClass/<id>.png` (palette, 255 void)."""
        image_path = os.path.join(self.voc_root, "JPEGImages", f"{sample_id}.jpg")
        write_jpeg(image_path, image, self.quality)
        path = os.path.join(self.voc_root, "SegmentationClass", f"{sample_id}.png")
        with replacing(path, suffix=".png") as tmp:
            write_png_mask(tmp, mask)

    def voc_lists(self, lists):
        """Writes `ImageSets/Segmentation/<split>.txt` for each `{split: ids}`."""
        for split, ids in lists.items():
            write_id_list(
                os.path.join(self.voc_root, "ImageSets", "Segmentation", f"{split}.txt"), ids
            )

    def sbd_sample(self, sample_id, image, mask):
        """Writes SBD's `img/<id>.jpg` and `cls/<id>.mat` (class ids, no void in the real set)."""
        write_jpeg(os.path.join(self.sbd_root, "img", f"{sample_id}.jpg"), image, self.quality)
        path = os.path.join(self.sbd_root, "cls", f"{sample_id}.mat")
        with replacing(path, suffix=".mat") as tmp:
            write_sbd_mask(tmp, mask)

    def sbd_lists(self, lists):
        """Writes SBD's `<split>.txt` for each `{split: ids}`."""
        for split, ids in lists.items():
            write_id_list(os.path.join(self.sbd_root, f"{split}.txt"), ids)
