"""Reading a prepared TFDS dataset (the rignet builders, `rignet_keras.data.builders`, or any
TFDS segmentation set with `image`, `mask` and `image/id` features) for `build_dataset`.

`source` "tfds:<name>[/<config>]" reads the dataset prepared under `data_dir` (TFDS's data folder,
default `~/tensorflow_datasets`), with TFDS's split slicing ("train[:10%]"). The named sources
"voc_aug" and "cocostuff10k" resolve to their builder when `data_dir` is a TFDS folder holding
its prepared dataset (`named_tfds_source`). For training, TFDS
shuffles the files (`shuffle_files`, seeded by `seed`) and, under `tf.distribute`, each worker
reads its own files (`input_context`: `tfds.ReadConfig(input_context=...)`). The image and mask
stay encoded until the pipeline decodes them (`tfds.decode.SkipDecoding`), so that batches
skipped to resume a run are not decoded.
"""

import glob
import json
import os

import tensorflow as tf

from rignet_keras.data.errors import DatasetError
from rignet_keras.data.info import DatasetInfo
from rignet_keras.data.synthetic.config import SyntheticConfig

PREFIX = "tfds:"


def is_tfds_source(source):
    """True for a "tfds:<name>" source."""
    return isinstance(source, str) and source.startswith(PREFIX)


# Named sources of `build_dataset` that have a builder -> its TFDS name (the COCO-Stuff config is
# the label convention).
NAMED_BUILDERS = {"voc_aug": "rignet_voc_aug", "cocostuff10k": "rignet_cocostuff10k"}


def named_tfds_source(source, data_dir, label_convention="171"):
    """ "tfds:<builder>" where a named source ("voc_aug", "cocostuff10k") has its builder's
    dataset prepared in `data_dir` (a TFDS data folder holding `<builder>/...`); else None, and
    the source reads the downloaded folders as before."""
    name = NAMED_BUILDERS.get(source) if isinstance(source, str) else None
    if name is None or data_dir is None:
        return None
    if source == "cocostuff10k":
        name = f"{name}/{label_convention}"
    folder = os.path.join(os.fspath(data_dir), *name.split("/"))
    if not glob.glob(os.path.join(folder, "*", "dataset_info.json")):
        return None
    return PREFIX + name


# The builder that replaces a folder converted by the removed `convert` command, by the dataset
# name in its `dataset_info.json` ("{convention}": the COCO-Stuff label convention).
_OLD_FORMAT_BUILDERS = {
    "voc": "rignet_voc_aug",
    "voc_aug": "rignet_voc_aug",
    "sbd": "rignet_voc_aug",
    "cocostuff10k": "rignet_cocostuff10k/{convention}",
    "synthetic": "rignet_synthetic",
}


def _old_format_record(folder):
    """The `dataset_info.json` of a folder of the old converted format as a dict, or None."""
    path = os.path.join(folder, "dataset_info.json")
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None
    splits = meta.get("splits") if isinstance(meta, dict) else None
    if isinstance(splits, dict) and any(
        isinstance(v, dict) and "shards" in v for v in splits.values()
    ):
        return meta
    return None


def old_format_hint(source):
    """One line on how to migrate, if `source` names TFRecords of the old converted format (a
    folder with a `dataset_info.json` listing shards, a `.tfrecord` file or a glob of them), which
    `build_dataset` no longer reads; else None."""
    if not isinstance(source, str):
        return None
    folder = source if os.path.isdir(source) else os.path.dirname(source)
    meta = _old_format_record(folder) if folder else None
    if meta is None and not source.endswith(".tfrecord"):
        if not (os.path.isdir(source) and glob.glob(os.path.join(source, "*.tfrecord"))):
            return None
    info = (meta or {}).get("info") or {}
    name = _OLD_FORMAT_BUILDERS.get(info.get("name"), "<builder>")
    name = name.format(convention=info.get("label_convention") or "171")
    return (
        f"{source} holds TFRecord shards of the old converted format, which is no longer read: "
        f"prepare the TFDS dataset from the same downloads (`rignet data prepare "
        f"{name} --manual-dir DOWNLOADS --data-dir DIR`) and read source 'tfds:{name}' "
        "(docs/DATA.md, 'From TFRecord folders converted by convert')"
    )


def load_builder(source, data_dir=None):
    """The prepared builder of a "tfds:<name>[/<config>]" source, or a one-line `DatasetError`
    naming the dataset, the folder and how to prepare it."""
    import tensorflow_datasets as tfds

    import rignet_keras.data.builders  # noqa: F401 (registers the rignet builders)

    name = source[len(PREFIX) :]
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except (tfds.core.registered.DatasetNotFoundError, ValueError, AssertionError) as e:
        raise DatasetError(f"{source}: {str(e).splitlines()[0]}") from None
    if not builder.is_prepared():
        raise DatasetError(
            f"{source}: not prepared in {builder.data_dir}; prepare it with "
            f"`rignet data prepare {name} --manual-dir DOWNLOADS --data-dir DIR` "
            "(see docs/DATA.md)"
        )
    return builder


def builder_dataset_info(builder):
    """The rignet `DatasetInfo` stored in a builder's metadata."""
    meta = builder.info.metadata
    if not meta or "class_names" not in meta:
        raise DatasetError(
            f"tfds:{builder.name}: its info holds no class names (metadata 'class_names')"
        )
    return DatasetInfo.from_dict({k: meta[k] for k in DatasetInfo.__dataclass_fields__})


def builder_synthetic_config(builder):
    """The `SyntheticConfig` stored in a synthetic builder's metadata ("synthetic"), or None
    (another dataset): its `image_size` is the default crop and evaluation size."""
    meta = builder.info.metadata
    if not meta or not isinstance(meta.get("synthetic"), dict):
        return None
    return SyntheticConfig.from_dict(dict(meta["synthetic"]))


def tfds_elements(builder, split, *, training, seed, input_context=None):
    """(encoded elements {"image", "mask", "id"} as a `tf.data.Dataset`, their number)."""
    import tensorflow_datasets as tfds

    read_config = tfds.ReadConfig(
        shuffle_seed=seed, input_context=input_context, try_autocache=False
    )
    decoders = {"image": tfds.decode.SkipDecoding(), "mask": tfds.decode.SkipDecoding()}
    ds = builder.as_dataset(
        split=split, shuffle_files=training, read_config=read_config, decoders=decoders
    )
    ds = ds.map(lambda ex: {"image": ex["image"], "mask": ex["mask"], "id": ex["image/id"]})
    return ds, int(builder.info.splits[split].num_examples)


def decode_element(el):
    """{"image" uint8 (H, W, 3), "mask" uint8 (H, W), "id"} of an encoded element."""
    image = tf.io.decode_image(el["image"], channels=3, expand_animations=False)
    mask = tf.io.decode_png(el["mask"], channels=1)[..., 0]
    image.set_shape([None, None, 3])
    mask.set_shape([None, None])
    return {"image": image, "mask": mask, "id": el["id"]}
