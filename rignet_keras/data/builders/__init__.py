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


def prepare_dataset(name, data_dir=None, manual_dir=None, *, on_bad_sample="raise", progress=True):
    """Prepares the TFDS dataset `name` ("rignet_voc_aug", "rignet_cocostuff10k/182", ...) in
    `data_dir` (TFDS's default when None) from `manual_dir`; returns its builder."""
    import tensorflow_datasets as tfds

    if not progress:
        tfds.disable_progress_bar()
    builder = tfds.builder(name, data_dir=data_dir, on_bad_sample=on_bad_sample)
    config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    builder.download_and_prepare(download_config=config)
    return builder


__all__ = [
    "CocoStuffConfig",
    "RignetCocostuff10k",
    "RignetSynthetic",
    "RignetVocAug",
    "SyntheticBuilderConfig",
    "prepare_dataset",
]
