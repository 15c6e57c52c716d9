"""TFRecord shards: the fast path. Convert once (Python decodes the .mat and palette-PNG masks),
then train from shards that TensorFlow decodes in parallel (`tf.io.decode_jpeg`, `decode_png`).

A shard folder holds `<split>-00000-of-00004.tfrecord` files and `dataset_info.json`, the record of
the `DatasetInfo` and of the shards that make each split (see `rignet_keras.data.shards`, which
also reads them: `tfrecord_files`). Each example has:

    image/encoded   the image file's bytes, unchanged (JPEG for every supported dataset)
    image/format    "jpeg" (or "png", ...)
    image/height, image/width, image/id
    mask/encoded    single-channel uint8 PNG of the class INDICES (255 = ignore)

A split is written into a temporary folder first and committed at the end, so it appears whole or
not at all; a reader refuses shards that the record does not list as they are.
"""

import concurrent.futures
import dataclasses
import io
import math
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf
from PIL import Image
from tqdm import tqdm

from rignet_keras.data.errors import DatasetError, bad_sample_log, logger
from rignet_keras.data.masks import check_labels, check_size, decode_image_bytes, decode_mask
from rignet_keras.data.shards import (
    STAGING_PREFIX,
    check_same_dataset,
    commit_split,
    file_digest,
    load_record,
    remove_stale_staging,
    shard_names,
)
from rignet_keras.runtime.file_modes import apply_umask


@dataclasses.dataclass
class ConversionReport:
    """What `convert_to_tfrecord` wrote: shard paths, examples written, (id, message) of the bad
    samples skipped and of the listed samples with missing files (given the reader's log)."""

    shards: list
    num_examples: int
    bad: list
    summary: str
    missing: list = dataclasses.field(default_factory=list)


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


_MAGIC = ((b"\xff\xd8\xff", "jpeg"), (b"\x89PNG", "png"), (b"GIF8", "gif"), (b"BM", "bmp"))


def _image_format(data):
    """The `image/format` of an image file's bytes, from its signature."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    return "unknown"


def _encode_record(record, info):
    """(serialized example or None, DatasetError or None) for one record; never raises.

    The image is decoded by the decoder that reads the shards (`decode_image_bytes`), so every
    example written decodes in training.
    """
    try:
        try:
            with open(record.image_path, "rb") as f:
                image_bytes = f.read()
        except OSError as e:
            raise DatasetError(f"cannot read image {record.image_path}: {e}") from e
        image_hw = decode_image_bytes(image_bytes, record.image_path).shape[:2]
        mask = decode_mask(record.mask_path, record.mask_format)
        check_size(image_hw, mask, record.image_path, record.mask_path)
        check_labels(mask, info.num_classes, record.mask_path, info.ignore_label)
        return serialize_example(image_bytes, _image_format(image_bytes), mask, record.id), None
    except DatasetError as e:
        return None, e


def shard_paths(output_dir, split, num_shards):
    """The shard file paths of a split: `<output_dir>/<split>-00000-of-00004.tfrecord`, ..."""
    return [os.path.join(output_dir, name) for name in shard_names(split, num_shards)]


def _check_count(name, value, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int; received {value!r}")


def _write_shard(path, chunk, info, pool, log, bar):
    """Writes the valid records of `chunk` to `path`; returns its record entry."""
    count = 0
    with tf.io.TFRecordWriter(path) as writer:
        encoded = pool.map(_encode_record, chunk, [info] * len(chunk))
        for record, (example, error) in zip(chunk, encoded, strict=True):
            bar.update(1)
            if error is not None:
                log.add(record.id, error)
                continue
            writer.write(example)
            count += 1
    size, digest = file_digest(path)
    return {"file": os.path.basename(path), "num_examples": count, "bytes": size, "sha256": digest}


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
    """Writes records to TFRecord shards, checking every sample; the split appears whole or not.

    The shards are written into a temporary folder inside `output_dir`, then committed (see
    `rignet_keras.data.shards`): an error or a killed process leaves the split as it was, or
    (killed while committing) without an entry in the record, which readers refuse.

    Args:
        records: list of `Record` (from `voc_records`, `cocostuff_records`, ...).
        output_dir: folder for the shards and `dataset_info.json` (created).
        info: the `DatasetInfo`; labels are checked against `info.num_classes`.
        split: the split name used in the shard file names ("train", "val", ...).
        images_per_shard: examples per shard when `num_shards` is None (512: about 60 MB of VOC).
        num_shards: number of shards; overrides `images_per_shard`.
        on_bad_sample: "raise" (the first bad sample raises a `DatasetError` naming its file;
            nothing of that split changes) or "skip" (bad samples are left out and counted in the
            summary at the end); or the `BadSampleLog` that the reader was given, so that samples
            with missing files are counted too.
        num_workers: threads that decode samples (default: the number of CPUs).
        progress: show a tqdm progress bar.

    Returns:
        `ConversionReport`.
    """
    log = bad_sample_log(on_bad_sample)
    _check_count("images_per_shard", images_per_shard)
    _check_count("num_shards", num_shards, allow_none=True)
    if not records:
        raise DatasetError(f"no records to convert for split {split!r}")
    output_dir = os.path.expanduser(os.fspath(output_dir))
    os.makedirs(output_dir, exist_ok=True)
    meta = load_record(output_dir)
    if meta is not None:  # refused before any work; checked again when committing
        check_same_dataset(meta, info, output_dir)
    remove_stale_staging(output_dir, split)
    n = num_shards or max(1, math.ceil(len(records) / images_per_shard))
    per_shard = math.ceil(len(records) / n)
    workers = num_workers or os.cpu_count() or 1
    staged = tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{split}-", dir=output_dir)
    apply_umask(staged)
    try:
        with (
            concurrent.futures.ThreadPoolExecutor(workers) as pool,
            tqdm(
                total=len(records),
                desc=f"convert {info.name} {split}",
                unit="img",
                disable=not progress,
            ) as bar,
        ):
            shards = [
                _write_shard(
                    os.path.join(staged, name),
                    records[k * per_shard : (k + 1) * per_shard],
                    info,
                    pool,
                    log,
                    bar,
                )
                for k, name in enumerate(shard_names(split, n))
            ]
        paths = commit_split(output_dir, info, split, staged, shards)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    written = sum(entry["num_examples"] for entry in shards)
    summary = f"{info.name} {split}: wrote {written} examples to {n} shards in {output_dir}; "
    summary += log.summary(len(records))
    logger.info(summary)
    return ConversionReport(paths, written, list(log.bad), summary, list(log.missing))


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
