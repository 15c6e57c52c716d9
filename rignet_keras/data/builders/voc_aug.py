"""`rignet_voc_aug`: PASCAL VOC 2012 segmentation with the SBD augmentation, as a TFDS builder.

Splits: "train" (VOC train ∪ SBD train ∪ SBD val minus VOC val: 10,582 images on the real data,
VOC masks where VOC has one, SBD's otherwise) and "val" (VOC val, 1,449 images). Prepared from a
`manual_dir` holding `VOCdevkit/VOC2012` and `benchmark_RELEASE` (the folders
`python -m rignet_keras.data download voc_aug --data-dir DIR` writes), or a
`SegmentationClassAug` folder with its `train_aug.txt`.
"""

import tensorflow_datasets as tfds

from rignet_keras.data.builders.common import (
    RignetBuilder,
    builder_info,
    record_examples,
    require_manual_dir,
)
from rignet_keras.data.sbd import voc_aug_info, voc_aug_records


class RignetVocAug(RignetBuilder):
    """PASCAL VOC 2012 + SBD (train_aug / val) for semantic segmentation."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release: train_aug (VOC + SBD) and VOC val."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "manual_dir holds VOCdevkit/VOC2012 (VOCtrainval_11-May-2012.tar) and benchmark_RELEASE "
        "(SBD's benchmark.tgz): `python -m rignet_keras.data download voc_aug --data-dir DIR`."
    )

    def _info(self):
        return builder_info(
            self,
            voc_aug_info(),
            "PASCAL VOC 2012 segmentation with the SBD augmentation: uint8 RGB images, uint8 "
            "masks (0-20, 255 = void), image ids.",
            "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
        )

    def _split_generators(self, dl_manager):
        data_dir = require_manual_dir(dl_manager, "voc_aug", "VOC 2012 + SBD")
        return {
            split: self._generate_examples(
                voc_aug_records(data_dir, split, on_bad_sample=self.on_bad_sample)
            )
            for split in ("train", "val")
        }

    def _generate_examples(self, records):
        yield from record_examples(records, voc_aug_info(), self.on_bad_sample)
