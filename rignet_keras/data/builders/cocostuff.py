"""`rignet_cocostuff10k`: COCO-Stuff 10k v1.1 as a TFDS builder, one config per label convention
("171": the 171 classes used in papers, "182": the raw ids 0-181 with 255 void).

Splits: "train" (9,000 images) and "test" (1,000). Prepared from a `manual_dir` holding
`cocostuff-10k` (`rignet data download cocostuff10k --data-dir DIR`), else from
`cocostuff-10k-v1.1.zip` downloaded by TFDS's download manager (`fetch.py`; no published checksum
is known for it, so only the transfer and the zip's CRCs check it).
"""

import dataclasses

import tensorflow_datasets as tfds

from rignet_keras.data.builders.common import RignetBuilder, builder_info, record_examples
from rignet_keras.data.builders.fetch import (
    ArchiveBuilderMixin,
    fetch_archive,
    manual_dir_or_none,
    missing_message,
)
from rignet_keras.data.cocostuff import cocostuff_info, cocostuff_records, find_cocostuff_root
from rignet_keras.data.errors import DatasetError


@dataclasses.dataclass
class CocoStuffConfig(tfds.core.BuilderConfig):
    """A label convention of COCO-Stuff 10k: `label_convention` "171" or "182"."""

    label_convention: str = "171"


class RignetCocostuff10k(ArchiveBuilderMixin, RignetBuilder):
    """COCO-Stuff 10k (train / test) for semantic segmentation."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release: the 171- and 182-class conventions."}
    BUILDER_CONFIGS = [
        CocoStuffConfig(name="171", label_convention="171", description="171 classes, 255 void"),
        CocoStuffConfig(name="182", label_convention="182", description="182 ids, 255 void"),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "manual_dir holds cocostuff-10k (cocostuff-10k-v1.1.zip extracted): "
        "`rignet data download cocostuff10k --data-dir DIR`."
    )
    DOWNLOAD_NAME = "cocostuff10k"

    def _label_info(self):
        return cocostuff_info(self.builder_config.label_convention)

    def _info(self):
        return builder_info(
            self,
            self._label_info(),
            "COCO-Stuff 10k v1.1: uint8 RGB images, uint8 masks (255 = void), image ids.",
            "https://github.com/nightrome/cocostuff10k",
        )

    def _split_generators(self, dl_manager):
        data_dir = self._data_folder(dl_manager)
        convention = self.builder_config.label_convention
        return {
            split: self._generate_examples(
                cocostuff_records(data_dir, split, convention, on_bad_sample=self.on_bad_sample)
            )
            for split in ("train", "test")
        }

    def _data_folder(self, dl_manager):
        """The COCO-Stuff 10k folder: in `manual_dir` where it is there, else downloaded."""
        manual = manual_dir_or_none(dl_manager)
        if manual:
            try:
                return find_cocostuff_root(manual)
            except DatasetError:
                pass
        missing = missing_message(dl_manager, "COCO-Stuff 10k folder", "cocostuff-10k")
        return find_cocostuff_root(fetch_archive(self, dl_manager, "cocostuff10k", missing))

    def _generate_examples(self, records):
        yield from record_examples(records, self._label_info(), self.on_bad_sample)
