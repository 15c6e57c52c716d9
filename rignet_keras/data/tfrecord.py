"""TFRecord shards: the fast path. Convert once (Python decodes the .mat and palette-PNG masks),
then train from shards that TensorFlow decodes in parallel (`tf.io.decode_jpeg`, `decode_png`).

A shard folder holds `<split>-00000-of-00004.tfrecord` files and `dataset_info.json` (the
`DatasetInfo` and the number of examples per split). Each example has:

    image/encoded   the image file's bytes, unchanged (JPEG for every supported dataset)
    image/format    "jpeg" (or "png", ...)
    image/height, image/width, image/id
    mask/encoded    single-channel uint8 PNG of the class INDICES (255 = ignore)

Every shard is written to a temporary file first, then renamed (`os.replace`), so a shard that
exists is complete.
"""

import concurrent.futures
import dataclasses
import glob
import io
import json
import math
import os

import numpy as np
import tensorflow as tf
from PIL import Image
from tqdm import tqdm

from rignet_keras.data.errors import BadSampleLog, DatasetError, logger
from rignet_keras.data.info import DatasetInfo
from rignet_keras.data.masks import check_labels, check_size, decode_mask

INFO_FILENAME = "dataset_info.json"
SHARD_SUFFIX = ".tfrecord"


@dataclasses.dataclass
class ConversionReport:
    """What `convert_to_tfrecord` wrote: shard paths, examples written, bad samples skipped."""

    shards: list
    num_examples: int
    bad: list
    summary: str


def _bytes(v):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))


def _int(v):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))


def encode_mask_png(mask):
    """PNG bytes of a (H, W) uint8 mask of class indices, as a grayscale ('L') PNG."""
    buf = io.BytesIO()
    mask = np.ascontiguousarray(mask, np.uint8)
    Image.frombytes("L", (mask.shape[1], mask.shape[0]), mask.tobytes()).save(
        buf, format="PNG", compress_level=1
    )
    return buf.getvalue()


def serialize_example(image_bytes, image_format, mask, sample_id):
    """A serialized `tf.train.Example` of one sample (see the module docstring for the keys)."""
    feature = {
        "image/encoded": _bytes(image_bytes),
        "image/format": _bytes(image_format.encode()),
        "image/height": _int(mask.shape[0]),
        "image/width": _int(mask.shape[1]),
        "image/id": _bytes(sample_id.encode()),
        "mask/encoded": _bytes(encode_mask_png(mask)),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _encode_record(record, info):
    """(serialized example or None, DatasetError or None) for one record; never raises."""
    try:
        try:
            with open(record.image_path, "rb") as f:
                image_bytes = f.read()
            with Image.open(io.BytesIO(image_bytes)) as im:
                image_format = (im.format or "jpeg").lower()
                im.load()  # a full decode catches truncated and corrupt files
                image_hw = (im.size[1], im.size[0])
        except Exception as e:  # Pillow raises several types for corrupt files
            raise DatasetError(f"cannot read image {record.image_path}: {e}") from e
        if image_format not in ("jpeg", "png", "bmp", "gif"):
            raise DatasetError(
                f"image {record.image_path} is {image_format}; TensorFlow decodes only "
                "JPEG, PNG, BMP and GIF"
            )
        mask = decode_mask(record.mask_path, record.mask_format)
        check_size(image_hw, mask, record.image_path, record.mask_path)
        check_labels(mask, info.num_classes, record.mask_path, info.ignore_label)
        return serialize_example(image_bytes, image_format, mask, record.id), None
    except DatasetError as e:
        return None, e


def shard_paths(output_dir, split, num_shards):
    """The shard file names of a split: `<split>-00000-of-00004.tfrecord`, ..."""
    return [
        os.path.join(output_dir, f"{split}-{i:05d}-of-{num_shards:05d}{SHARD_SUFFIX}")
        for i in range(num_shards)
    ]


def _write_info(output_dir, info, split, num_examples, shards):
    path = os.path.join(output_dir, INFO_FILENAME)
    meta = {"info": info.to_dict(), "splits": {}}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
        if DatasetInfo.from_dict(old["info"]) != info:
            raise DatasetError(
                f"{path} describes {old['info']['name']} (label_convention "
                f"{old['info']['label_convention']!r}); refusing to mix in {info.name} "
                f"({info.label_convention!r}): use another output folder"
            )
        meta["splits"] = old.get("splits", {})
    meta["splits"][split] = {
        "num_examples": num_examples,
        "shards": [os.path.basename(s) for s in shards],
    }
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)
    os.replace(tmp, path)


def convert_to_tfrecord(
    records,
    output_dir,
    info,
    *,
    split,
    images_per_shard=512,
    num_shards=None,
    on_bad_sample="raise",
    num_workers=None,
    progress=True,
):
    """Writes records to TFRecord shards, checking every sample.

    Args:
        records: list of `Record` (from `voc_records`, `cocostuff_records`, ...).
        output_dir: folder for the shards and `dataset_info.json` (created).
        info: the `DatasetInfo`; labels are checked against `info.num_classes`.
        split: the split name used in the shard file names ("train", "val", ...).
        images_per_shard: examples per shard when `num_shards` is None (512: about 60 MB of VOC).
        num_shards: number of shards; overrides `images_per_shard`.
        on_bad_sample: "raise" (the first bad sample raises a `DatasetError` naming its file; no
            shard of that split is left half-written) or "skip" (bad samples are left out and
            counted in the summary at the end).
        num_workers: threads that decode samples (default: the number of CPUs).
        progress: show a tqdm progress bar.

    Returns:
        `ConversionReport`.
    """
    log = BadSampleLog(on_bad_sample)
    if not records:
        raise DatasetError(f"no records to convert for split {split!r}")
    output_dir = os.path.expanduser(os.fspath(output_dir))
    os.makedirs(output_dir, exist_ok=True)
    n = num_shards or max(1, math.ceil(len(records) / images_per_shard))
    paths = shard_paths(output_dir, split, n)
    # Shards of an earlier conversion of this split with another shard count would be read too.
    stale = set(glob.glob(os.path.join(output_dir, f"{split}-*-of-*{SHARD_SUFFIX}"))) - set(paths)
    per_shard = math.ceil(len(records) / n)
    written = 0
    bar = tqdm(
        total=len(records), desc=f"convert {info.name} {split}", unit="img", disable=not progress
    )
    workers = num_workers or os.cpu_count() or 1
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for k, path in enumerate(paths):
            chunk = records[k * per_shard : (k + 1) * per_shard]
            tmp = path + ".tmp"
            try:
                with tf.io.TFRecordWriter(tmp) as writer:
                    for record, (example, error) in zip(
                        chunk, pool.map(_encode_record, chunk, [info] * len(chunk)), strict=True
                    ):
                        bar.update(1)
                        if error is not None:
                            log.add(record.id, error)
                            continue
                        writer.write(example)
                        written += 1
            except BaseException:
                if os.path.exists(tmp):
                    os.remove(tmp)
                raise
            os.replace(tmp, path)
    bar.close()
    for s in stale:
        os.remove(s)
    _write_info(output_dir, info, split, written, paths)
    summary = f"{info.name} {split}: wrote {written} examples to {n} shards in {output_dir}; "
    summary += log.summary(len(records))
    logger.info(summary)
    return ConversionReport(paths, written, log.bad, summary)


def is_tfrecord_source(source):
    """True if `source` names TFRecords: a glob, a `.tfrecord` file, or a folder of shards."""
    source = os.fspath(source)
    if any(ch in source for ch in "*?["):
        return True
    if source.endswith(SHARD_SUFFIX):
        return True
    return os.path.isdir(source) and (
        os.path.isfile(os.path.join(source, INFO_FILENAME))
        or bool(glob.glob(os.path.join(source, f"*{SHARD_SUFFIX}")))
    )


def tfrecord_files(source, split=None):
    """The sorted shard files of `source`: a folder (its `<split>-*.tfrecord`), a glob or a file.

    Raises:
        DatasetError: naming `source`, if no file matches.
    """
    source = os.fspath(source)
    if os.path.isdir(source):
        pattern = os.path.join(source, f"{split}-*{SHARD_SUFFIX}" if split else f"*{SHARD_SUFFIX}")
    else:
        pattern = source
    files = sorted(glob.glob(pattern))
    if not files:
        raise DatasetError(
            f"no TFRecord shards match {pattern}; write them with "
            "`python -m rignet_keras.data convert <dataset> --data-dir DIR --output-dir OUT`"
        )
    return files


def read_tfrecord_info(source):
    """The `DatasetInfo` stored beside the shards of `source` (`dataset_info.json`), or None."""
    source = os.fspath(source)
    folder = source if os.path.isdir(source) else os.path.dirname(source)
    path = os.path.join(folder, INFO_FILENAME)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return DatasetInfo.from_dict(json.load(f)["info"])


_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/height": tf.io.FixedLenFeature([], tf.int64),
    "image/width": tf.io.FixedLenFeature([], tf.int64),
    "image/id": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "mask/encoded": tf.io.FixedLenFeature([], tf.string),
}


def parse_example(serialized):
    """Decodes one serialized example.

    Returns:
        dict with "image" uint8 (H, W, 3), "mask" uint8 (H, W) and "id" string.
    """
    ex = tf.io.parse_single_example(serialized, _FEATURES)
    image = tf.io.decode_image(ex["image/encoded"], channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    mask = tf.io.decode_png(ex["mask/encoded"], channels=1)[..., 0]
    return {"image": image, "mask": mask, "id": ex["image/id"]}
