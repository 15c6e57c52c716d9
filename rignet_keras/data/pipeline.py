"""`build_dataset`: the one function that turns a dataset into batches for training or evaluation.

Two paths lead to the same batches:

- TFDS: `source` is "tfds:<name>[/<config>]", a dataset prepared by a TFDS builder
  (`rignet_keras.data.builders`, `rignet_keras.data.tfds_source`); every sample was checked when
  it was prepared, and TensorFlow reads and decodes the files in parallel.
- Direct (small sets, no preparation): `source` is "voc", "voc_aug", "sbd", "cocostuff10k" or
  "synthetic" on disk. Each sample is decoded and checked by Python through `tf.py_function`
  (images by TensorFlow's decoder, masks from palette PNGs or .mat files), so that a bad sample is
  named by its file; this holds the GIL: prepare big sets with their builder.

"synthetic" without `data_dir` is generated in memory (see `rignet_keras.data.synthetic`).

Determinism and resuming: with a `seed`, the shuffle order and every sample's augmentation are
fixed (stateless random ops with one seed per element, drawn from `tf.data.Dataset.random(seed)`;
ordered parallel maps). To resume a run after N training steps, build the same dataset (same seed,
`repeat=True`) with `skip_batches=N`: it yields exactly the batches the first run would have yielded
next, and it skips them cheaply (before decoding) unless `on_bad_sample="skip"`.
"""

import functools
import os

import numpy as np
import tensorflow as tf

from rignet_keras.data.augment import EVAL_MODES, eval_preprocess, train_augment
from rignet_keras.data.errors import BAD_SAMPLE_MARK, DatasetError, bad_sample_log
from rignet_keras.data.masks import load_sample
from rignet_keras.data.records import Record
from rignet_keras.data.sources import EVAL_PAD_SIZES, SOURCES, get_info, get_records
from rignet_keras.data.synthetic import SyntheticConfig, load_synthetic_config, make_synthetic
from rignet_keras.data.tfds_source import (
    builder_dataset_info,
    builder_synthetic_config,
    decode_element,
    is_tfds_source,
    load_builder,
    named_tfds_source,
    old_format_hint,
    tfds_elements,
)
from rignet_keras.preprocessing import IMAGENET_MEAN_RGB, check_mode, normalize

DEFAULT_CROP_SIZE = (321, 321)
DEFAULT_SYNTHETIC_SAMPLES = {"train": 1000, "val": 200, "test": 200}
TFDS_SHUFFLE_BUFFER = 512


class _Source:
    """Undecoded elements (paths, encoded examples or arrays), how to decode one, the info."""

    def __init__(self, raw, decode, info, size_hint, flags_bad=False, synthetic_config=None):
        self.raw = raw
        self.decode = decode
        self.info = info
        self.size_hint = size_hint  # number of elements, for the shuffle buffer
        self.flags_bad = flags_bad  # decode() adds "ok": False for a bad sample
        self.synthetic_config = synthetic_config  # a synthetic TFDS dataset's, from its metadata


@functools.lru_cache(maxsize=4)
def _synthetic_arrays(num_samples, seed, config, split):
    return make_synthetic(num_samples, seed, config, split)


def _direct_decoder(num_classes, ignore_label, log):
    """decode(element of paths) -> {"image", "mask", "id", "ok"}, through `tf.py_function`.

    Every sample is decoded and checked in Python by `load_sample` (TensorFlow's image decoder;
    Pillow or SciPy for masks). A bad one stops iteration with a `tf.errors.InvalidArgumentError`
    whose message carries the `DatasetError`'s, naming the file (under "raise"; see
    `dataset_error_from`), or is recorded in `log` and flagged "ok": False (under "skip").
    """
    skip = log.on_bad_sample == "skip"

    def load(image_path, mask_path, mask_format, sample_id):
        record = Record(
            sample_id.numpy().decode(),
            image_path.numpy().decode(),
            mask_path.numpy().decode(),
            mask_format.numpy().decode(),
        )
        try:
            image, mask = load_sample(record, num_classes, ignore_label)
        except DatasetError as e:
            if skip:
                log.add(record.id, e)
            return np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0), np.uint8), str(e)
        return image, mask, ""

    def decode(el):
        image, mask, error = tf.py_function(
            load,
            [el["image_path"], el["mask_path"], el["mask_format"], el["id"]],
            [tf.uint8, tf.uint8, tf.string],
        )
        ok = tf.equal(error, "")
        if not skip:  # an error op with the one-line message, not a Python traceback
            with tf.control_dependencies([tf.debugging.Assert(ok, [BAD_SAMPLE_MARK, error])]):
                image = tf.identity(image)
        image.set_shape([None, None, 3])
        mask.set_shape([None, None])
        return {"image": image, "mask": mask, "id": el["id"], "ok": ok}

    return decode


def _resolve_source(
    source,
    split,
    *,
    training,
    seed,
    data_dir,
    label_convention,
    log,
    synthetic_config,
    num_samples,
    synthetic_seed,
    input_context=None,
):
    source = named_tfds_source(source, data_dir, str(label_convention)) or source
    if is_tfds_source(source):
        builder = load_builder(source, data_dir)
        raw, n = tfds_elements(
            builder, split, training=training, seed=seed, input_context=input_context
        )
        info = builder_dataset_info(builder)
        config = builder_synthetic_config(builder)
        return _Source(raw, decode_element, info, min(n, TFDS_SHUFFLE_BUFFER), False, config)

    if input_context is not None:
        raise ValueError(f"input_context needs a 'tfds:' source; received source {source!r}")
    if not isinstance(source, str) or source not in SOURCES:
        raise DatasetError(
            old_format_hint(source)
            or f"source must be one of {SOURCES} or 'tfds:<name>'; received {source!r}"
        )
    if source == "synthetic" and data_dir is None:
        config = synthetic_config or SyntheticConfig()
        n = num_samples or DEFAULT_SYNTHETIC_SAMPLES.get(split, 200)
        images, masks = _synthetic_arrays(n, synthetic_seed, config, split)
        ids = [f"syn_{split}_{i:06d}" for i in range(n)]
        raw = tf.data.Dataset.from_tensor_slices({"image": images, "mask": masks, "id": ids})
        return _Source(raw, lambda el: el, get_info("synthetic", synthetic_config=config), n)

    records, info = get_records(
        source, split, data_dir, label_convention=label_convention, on_bad_sample=log
    )
    if num_samples:
        records = records[:num_samples]
    if not records:
        raise DatasetError(f"{source} {split} in {data_dir} lists no samples")
    raw = tf.data.Dataset.from_tensor_slices(
        {
            "image_path": [r.image_path for r in records],
            "mask_path": [r.mask_path for r in records],
            "mask_format": [r.mask_format for r in records],
            "id": [r.id for r in records],
        }
    )
    decode = _direct_decoder(info.num_classes, info.ignore_label, log)
    return _Source(raw, decode, info, len(records), flags_bad=True)


def _default_eval_size(source, info, data_dir, synthetic_config):
    name = source if isinstance(source, str) and source in SOURCES else info.name
    if name in EVAL_PAD_SIZES:
        return EVAL_PAD_SIZES[name]
    if name == "synthetic":
        config = synthetic_config or load_synthetic_config(data_dir)
        return (config or SyntheticConfig()).image_size
    return None


def build_dataset(
    source,
    split="train",
    *,
    batch_size,
    training,
    crop_size=None,
    preprocessing="caffe",
    seed=None,
    data_dir=None,
    label_convention="171",
    eval_mode="pad",
    eval_size=None,
    scale_range=(0.5, 2.0),
    flip=True,
    photometric=False,
    shuffle_buffer=None,
    repeat=False,
    skip_batches=0,
    drop_remainder=None,
    on_bad_sample="raise",
    synthetic_config=None,
    num_samples=None,
    synthetic_seed=0,
    return_ids=False,
    with_info=False,
    input_context=None,
):
    """A batched, prefetched `tf.data.Dataset` of (image, mask) for training or evaluation.

    Args:
        source: "voc", "voc_aug", "sbd", "cocostuff10k", "synthetic", or a prepared TFDS
            dataset "tfds:<name>[/<config>]" (for example "tfds:rignet_voc_aug").
        split: "train", "val", "trainval" (VOC) or "test" (COCO-Stuff); TFDS sources take TFDS's
            split slicing ("train[:10%]").
        batch_size: examples per batch.
        training: True for shuffled, augmented, repeated-if-asked batches of `crop_size`; False
            for evaluation batches in file order (see `eval_mode`).
        crop_size: (h, w) of training crops; default (321, 321), or the image size for "synthetic".
        preprocessing: normalisation mode of `rignet_keras.preprocessing.normalize`
            ("caffe", "torch", "tf").
        seed: int for a deterministic order and augmentation; None for a fast, random one.
        data_dir: folder that holds the named dataset (default `$RIGNET_DATA_DIR` or
            `~/.rignet/data`). For "synthetic", None generates the data in memory.
        label_convention: COCO-Stuff only: "171" or "182" (see `rignet_keras.data.cocostuff`).
        eval_mode: "pad" (pad to `eval_size` with the mean pixel / 255; batchable), "resize"
            (image resized to `eval_size`, mask at full resolution: batch 1, or ragged masks), or
            "none" (whole images, batch size 1). The mask is never resized.
        eval_size: (h, w) for "pad" and "resize"; default 512x512 for VOC, 640x640 for
            COCO-Stuff, the image size for "synthetic".
        scale_range: (min, max) random scale for training; (1, 1) for none.
        flip: random horizontal flips for training.
        photometric: random brightness, contrast and saturation for training (image only).
        shuffle_buffer: elements in the shuffle buffer; default the whole set (direct path and
            synthetic), at most 512 encoded examples for TFDS sources.
        repeat: repeat the training data forever (use with `steps_per_epoch`).
        skip_batches: batches to skip at the start, to resume a run (see the module docstring).
        drop_remainder: drop a last partial batch; default True for training, False otherwise.
        on_bad_sample: what a bad sample of the direct path does (an image that does not decode,
            a mask that cannot be read, does not fit the image or holds an unknown label; a
            listed file that is missing): "raise" (listing raises a `DatasetError`, iteration a
            `tf.errors.OpError` carrying one, both naming the file; `dataset_error_from` gives
            back the one-line `DatasetError`) or "skip" (it is left out, with one warning naming
            it). Pass a `BadSampleLog` instead to read afterwards how many were skipped, and
            which (`num_skipped`, `summary()`). TFDS sources hold no bad samples: every sample
            was checked with the same decoder when the dataset was prepared.
        synthetic_config: `SyntheticConfig` for the in-memory "synthetic" source.
        num_samples: use only the first `num_samples` records; for the in-memory "synthetic"
            source, how many to generate (default 1000 train, 200 val).
        synthetic_seed: the seed that generates the in-memory "synthetic" data (not the
            shuffling seed).
        return_ids: also yield the sample ids, as a third element (B,) string.
        input_context: a `tf.distribute.InputContext` (from
            `strategy.distribute_datasets_from_function`): each input pipeline reads its own
            files of a "tfds:" source (TFDS's `ReadConfig(input_context=...)`).
        with_info: return `(dataset, info)`, info being the `DatasetInfo` (for TFDS sources, the
            one in the builder's metadata).

    Returns:
        a `tf.data.Dataset` of (image float32 (B, h, w, 3) normalised, mask int32 (B, h, w) with
        255 = ignore), or `(dataset, info)` if `with_info`. With `eval_mode="resize"` and
        `batch_size > 1`, masks are a `tf.RaggedTensor` (B, None, None) (a dense tensor for the
        in-memory "synthetic" source, whose masks all have one size).
    """
    check_mode(preprocessing)
    log = bad_sample_log(on_bad_sample)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; received {batch_size!r}")
    if eval_mode not in EVAL_MODES:
        raise ValueError(f"eval_mode must be one of {EVAL_MODES}; received {eval_mode!r}")
    if not training and eval_mode == "none" and batch_size != 1:
        raise ValueError(f"eval_mode='none' needs batch_size=1; received {batch_size}")
    deterministic = seed is not None or not training
    skip_bad = log.on_bad_sample == "skip"
    if not is_tfds_source(source) and (not isinstance(source, str) or source not in SOURCES):
        source = os.path.expanduser(os.fspath(source))
    if data_dir is not None:
        data_dir = os.path.expanduser(os.fspath(data_dir))
    src = _resolve_source(
        source,
        split,
        training=training,
        seed=seed,
        data_dir=data_dir,
        label_convention=label_convention,
        log=log,
        synthetic_config=synthetic_config,
        num_samples=num_samples,
        synthetic_seed=synthetic_seed,
        input_context=input_context,
    )
    synthetic_config = synthetic_config or src.synthetic_config
    ignore = src.info.ignore_label
    is_synthetic = src.info.name == "synthetic"

    def decoded(ds):
        ds = ds.map(src.decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
        if skip_bad and src.flags_bad:
            ds = ds.filter(lambda el: el["ok"])
        return ds

    def output(el, image, mask):
        return (image, mask, el["id"]) if return_ids else (image, mask)

    if training:
        if crop_size is None:
            if is_synthetic:
                config = synthetic_config or load_synthetic_config(data_dir) or SyntheticConfig()
                crop_size = config.image_size
            else:
                crop_size = DEFAULT_CROP_SIZE
        aug = functools.partial(
            train_augment,
            crop_size=crop_size,
            scale_range=tuple(scale_range),
            flip=flip,
            photometric=photometric,
            ignore_label=ignore,
            mean=IMAGENET_MEAN_RGB,
        )
        raw = src.raw
        buffer = shuffle_buffer or src.size_hint
        if buffer > 1:
            raw = raw.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            raw = raw.repeat()
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

        def augment(el, s):
            return output(el, *aug(el["image"], el["mask"], s))

        if skip_bad:
            ds = tf.data.Dataset.zip((decoded(raw), seeds))
        else:
            ds = tf.data.Dataset.zip((raw, seeds))
            if skip_batches:  # before decoding: free
                ds = ds.skip(skip_batches * batch_size)
            ds = ds.map(
                lambda el, s: (src.decode(el), s),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=deterministic,
            )
        ds = ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
        ds = ds.batch(batch_size, drop_remainder=True if drop_remainder is None else drop_remainder)
        if skip_batches and skip_bad:
            ds = ds.skip(skip_batches)
    else:
        if eval_mode != "none" and eval_size is None:
            eval_size = _default_eval_size(source, src.info, data_dir, synthetic_config)
            if eval_size is None:
                raise ValueError(f"eval_mode={eval_mode!r} needs eval_size for source {source!r}")

        def prep(el):
            image, mask = eval_preprocess(
                el["image"], el["mask"], eval_mode, eval_size, ignore, IMAGENET_MEAN_RGB, el["id"]
            )
            return output(el, image, mask)

        ds = decoded(src.raw).map(prep, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if eval_mode == "resize" and batch_size > 1:
            ds = ds.ragged_batch(batch_size, drop_remainder=bool(drop_remainder))
        else:
            ds = ds.batch(batch_size, drop_remainder=bool(drop_remainder))
        if skip_batches:
            ds = ds.skip(skip_batches)

    def finish(image, mask, *ids):
        return (normalize(image, preprocessing), tf.cast(mask, tf.int32), *ids)

    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = deterministic
    ds = ds.with_options(options)
    return (ds, src.info) if with_info else ds
