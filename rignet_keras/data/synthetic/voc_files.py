"""Synthetic samples on disk, in the PASCAL VOC 2012 layout (`write_synthetic_voc`), with the
configuration they were drawn with (`synthetic.json`, read back by `load_synthetic_config`)."""

import json
import os

from rignet_keras.data.synthetic.config import SyntheticConfig, synthetic_info
from rignet_keras.data.synthetic.samples import generate_sample
from rignet_keras.data.voc_layout import VOCLayoutWriter
from rignet_runtime.atomic import write_json

CONFIG_FILENAME = "synthetic.json"


def write_synthetic_voc(data_dir, num_train=200, num_val=50, seed=0, config=None, quality=95):
    """Writes synthetic samples to disk in the VOC 2012 layout, readable by `voc_records`.

    Writes `data_dir/VOCdevkit/VOC2012/{JPEGImages/*.jpg, SegmentationClass/*.png (palette),
    ImageSets/Segmentation/{train,val,trainval}.txt}` and `data_dir/synthetic.json` (the config,
    the seed and the `DatasetInfo`). Ids are `syn_train_000000`, `syn_val_000000`, ...

    Returns:
        the `VOC2012` folder.
    """
    config = config or SyntheticConfig()
    writer = VOCLayoutWriter(data_dir, quality=quality)
    writer.make_voc_folders()
    lists = {}
    for split, n in (("train", num_train), ("val", num_val)):
        ids = []
        for i in range(n):
            sample_id = f"syn_{split}_{i:06d}"
            s = generate_sample(seed, i, config, split)
            writer.voc_sample(sample_id, s.image, s.mask)
            ids.append(sample_id)
        lists[split] = ids
    lists["trainval"] = lists["train"] + lists["val"]
    writer.voc_lists(lists)
    write_json(
        os.path.join(os.fspath(data_dir), CONFIG_FILENAME),
        {"seed": seed, "config": config.to_dict(), "info": synthetic_info(config).to_dict()},
    )
    return writer.voc_root


def load_synthetic_config(data_dir):
    """The `SyntheticConfig` stored by `write_synthetic_voc` in `data_dir`, or None."""
    if data_dir is None:
        return None
    path = os.path.join(os.fspath(data_dir), CONFIG_FILENAME)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return SyntheticConfig.from_dict(json.load(f)["config"])
