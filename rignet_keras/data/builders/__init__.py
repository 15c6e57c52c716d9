"""TensorFlow Datasets builders of the rignet-keras datasets. Importing this package registers
them with TFDS (a `GeneratorBasedBuilder` subclass registers itself when it is defined):

- `rignet_voc_aug`: PASCAL VOC 2012 + SBD (splits "train" = train_aug, "val");
- `rignet_cocostuff10k/171`, `rignet_cocostuff10k/182`: COCO-Stuff 10k ("train", "test");
- `rignet_synthetic/default`, `rignet_synthetic/long_range`: the synthetic set ("train", "val").

`import rignet_keras.data` registers them too when `tensorflow_datasets` is already imported;
otherwise import this package (TFDS and TensorFlow load only then). See docs/DATA.md.
"""

from rignet_keras.data.builders.cocostuff import CocoStuffConfig, RignetCocostuff10k
from rignet_keras.data.builders.synthetic import RignetSynthetic, SyntheticBuilderConfig
from rignet_keras.data.builders.voc_aug import RignetVocAug

# Source names of `build_dataset` -> the TFDS name of their builder.
BUILDER_NAMES = {
    "voc_aug": "rignet_voc_aug",
    "cocostuff10k": "rignet_cocostuff10k",
    "synthetic": "rignet_synthetic",
}

__all__ = [
    "BUILDER_NAMES",
    "CocoStuffConfig",
    "RignetCocostuff10k",
    "RignetSynthetic",
    "RignetVocAug",
    "SyntheticBuilderConfig",
]
