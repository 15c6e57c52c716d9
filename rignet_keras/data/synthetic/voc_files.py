"""Synthetic samples on disk, in the PASCAL VOC 2012 layout (`write_synthetic_voc`), with the
configuration they were drawn with (`synthetic.json`, read back by `load_synthetic_config`)."""

import json
import os

from PIL import Image

from rignet_keras.data.synthetic.config import SyntheticConfig, synthetic_info
from rignet_keras.data.synthetic.samples import generate_sample
from rignet_keras.runtime.images import write_mask

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
    root = os.path.join(os.fspath(data_dir), "VOCdevkit", "VOC2012")
    for sub in ("JPEGImages", "SegmentationClass", os.path.join("ImageSets", "Segmentation")):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    lists = {}
    for split, n in (("train", num_train), ("val", num_val)):
        ids = []
        for i in range(n):
            sample_id = f"syn_{split}_{i:06d}"
            s = generate_sample(seed, i, config, split)
            Image.fromarray(s.image).save(
                os.path.join(root, "JPEGImages", f"{sample_id}.jpg"), quality=quality
            )
            write_mask(os.path.join(root, "SegmentationClass", f"{sample_id}.png"), s.mask)
            ids.append(sample_id)
        lists[split] = ids
    lists["trainval"] = lists["train"] + lists["val"]
    for split, ids in lists.items():
        with open(os.path.join(root, "ImageSets", "Segmentation", f"{split}.txt"), "w") as f:
            f.write("".join(f"{i}\n" for i in ids))
    with open(os.path.join(os.fspath(data_dir), CONFIG_FILENAME), "w", encoding="utf-8") as f:
        json.dump(
            {"seed": seed, "config": config.to_dict(), "info": synthetic_info(config).to_dict()},
            f,
            indent=2,
        )
    return root


def load_synthetic_config(data_dir):
    """The `SyntheticConfig` stored by `write_synthetic_voc` in `data_dir`, or None."""
    if data_dir is None:
        return None
    path = os.path.join(os.fspath(data_dir), CONFIG_FILENAME)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return SyntheticConfig.from_dict(json.load(f)["config"])
