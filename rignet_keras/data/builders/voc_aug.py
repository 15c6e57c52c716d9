"""`rignet_voc_aug`: PASCAL VOC 2012 segmentation with the SBD augmentation, as a TFDS builder.

Splits: "train" (VOC train ∪ SBD train ∪ SBD val minus VOC val: 10,582 images on the real data,
VOC masks where VOC has one, SBD's otherwise) and "val" (VOC val, 1,449 images). Prepared from a
`manual_dir` holding `VOCdevkit/VOC2012` and `benchmark_RELEASE` (the folders
`rignet data download voc_aug --data-dir DIR` writes), or a
`SegmentationClassAug` folder with its `train_aug.txt`; what `manual_dir` does not hold is
downloaded by TFDS's download manager (`fetch.py`: the VOC tar's SHA-256 is registered, SBD's MD5
is checked).
"""

import os

import tensorflow_datasets as tfds

from rignet_keras.data.builders.common import RignetBuilder, builder_info, record_examples
from rignet_keras.data.builders.fetch import (
    ArchiveBuilderMixin,
    fetch_archive,
    linked_layout,
    manual_dir_or_none,
    missing_message,
)
from rignet_keras.data.errors import DatasetError
from rignet_keras.data.sbd import _find_aug_png_dir, find_sbd_root, voc_aug_info, voc_aug_records
from rignet_keras.data.voc import find_voc_root


def _found(find, root):
    """`find(root)` (a reader's folder lookup), or None where it raises `DatasetError`."""
    try:
        return find(root)
    except DatasetError:
        return None


def _has_aug_masks(root):
    return _find_aug_png_dir(root)[0] is not None


class RignetVocAug(ArchiveBuilderMixin, RignetBuilder):
    """PASCAL VOC 2012 + SBD (train_aug / val) for semantic segmentation."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release: train_aug (VOC + SBD) and VOC val."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "manual_dir holds VOCdevkit/VOC2012 (VOCtrainval_11-May-2012.tar) and benchmark_RELEASE "
        "(SBD's benchmark.tgz): `rignet data download voc_aug --data-dir DIR`."
    )
    DOWNLOAD_NAME = "voc_aug"

    def _info(self):
        return builder_info(
            self,
            voc_aug_info(),
            "PASCAL VOC 2012 segmentation with the SBD augmentation: uint8 RGB images, uint8 "
            "masks (0-20, 255 = void), image ids.",
            "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
        )

    def _split_generators(self, dl_manager):
        data_dir = self._data_folder(dl_manager)
        return {
            split: self._generate_examples(
                voc_aug_records(data_dir, split, on_bad_sample=self.on_bad_sample)
            )
            for split in ("train", "val")
        }

    def _data_folder(self, dl_manager):
        """The folder holding VOC 2012 and SBD: `manual_dir` where it holds both, else one that
        links the parts it holds to the archives downloaded for the others."""
        manual = manual_dir_or_none(dl_manager)
        voc = _found(find_voc_root, manual) if manual else None
        sbd = None
        if manual and (_found(find_sbd_root, manual) or _has_aug_masks(manual)):
            sbd = manual
        if voc and sbd:
            return manual
        if voc is None:
            missing = missing_message(dl_manager, "VOC 2012 folder", "VOCdevkit", "VOC2012")
            voc = find_voc_root(fetch_archive(self, dl_manager, "voc", missing))
        if sbd is None:
            missing = missing_message(dl_manager, "SBD folder", "benchmark_RELEASE", "dataset")
            sbd = fetch_archive(self, dl_manager, "sbd", missing)
        links = {"VOCdevkit/VOC2012": voc}
        if sbd == manual and _found(find_sbd_root, manual) is None:
            # SegmentationClassAug (and its train_aug.txt) in manual_dir, VOC downloaded
            links["SegmentationClassAug"] = _find_aug_png_dir(manual)[0]
            if os.path.isfile(os.path.join(manual, "train_aug.txt")):
                links["train_aug.txt"] = os.path.join(manual, "train_aug.txt")
        else:
            links["benchmark_RELEASE/dataset"] = find_sbd_root(sbd)
        return linked_layout(dl_manager, self.name, links)

    def _generate_examples(self, records):
        yield from record_examples(records, voc_aug_info(), self.on_bad_sample)
