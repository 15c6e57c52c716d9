"""`rignet_synthetic`: the built-in synthetic segmentation set (`rignet_keras.data.synthetic`) as
a TFDS builder. Nothing is downloaded: every sample is a function of (seed, split, index).

Configs: "default" (`SyntheticConfig()`, 96x96, 5 classes) and "long_range" (bars with their mark
at one end); any other `SyntheticBuilderConfig` may be passed as `config=`. Images are stored as
PNG, so the pixels read back are exactly the generated ones. The info's metadata holds the
`SyntheticConfig` ("synthetic"), from which `build_dataset("tfds:rignet_synthetic/<config>")`
takes its default crop and evaluation size (the config's `image_size`).
"""

import dataclasses

import tensorflow_datasets as tfds

from rignet_keras.data.builders.common import (
    RignetBuilder,
    array_example,
    builder_info,
)
from rignet_keras.data.synthetic import SyntheticConfig, generate_sample, synthetic_info


@dataclasses.dataclass
class SyntheticBuilderConfig(tfds.core.BuilderConfig):
    """A synthetic set: its `SyntheticConfig`, the sizes of its splits and its seed."""

    synthetic: SyntheticConfig = dataclasses.field(default_factory=SyntheticConfig)
    num_train: int = 200
    num_val: int = 50
    seed: int = 0


# The long-range study's task (bench/long_range.py, tests/data/test_synthetic_long_range.py).
LONG_RANGE = SyntheticConfig(
    image_size=(96, 96),
    num_classes=3,
    mark_size=10,
    object_size=(0.7, 0.9),
    objects_per_image=(1, 2),
    object_shape="bar",
    mark_position="end",
)


class RignetSynthetic(RignetBuilder):
    """The synthetic segmentation set, where a class is only readable from one small mark."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release: the default and long-range sets."}
    IMAGE_FORMAT = "png"
    BUILDER_CONFIGS = [
        SyntheticBuilderConfig(name="default", description="SyntheticConfig() defaults"),
        SyntheticBuilderConfig(
            name="long_range",
            synthetic=LONG_RANGE,
            description="bars with their class mark at one end",
        ),
    ]

    def _info(self):
        config = self.builder_config.synthetic
        return builder_info(
            self,
            synthetic_info(config),
            "Synthetic segmentation: uint8 RGB images, uint8 masks (255 = void), image ids.",
            "https://github.com/",
            synthetic=config.to_dict(),  # its image size sets the pipeline's crop and eval size
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        c = self.builder_config
        return {
            "train": self._generate_examples("train", c.num_train),
            "val": self._generate_examples("val", c.num_val),
        }

    def _generate_examples(self, split, count):
        c = self.builder_config
        for i in range(count):
            sample_id = f"syn_{split}_{i:06d}"
            s = generate_sample(c.seed, i, c.synthetic, split)
            yield sample_id, array_example(sample_id, s.image, s.mask)
