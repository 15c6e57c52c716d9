"""The record of a TFRecord folder (`dataset_info.json`): which shards make each split, and the
checks a reader makes before it reads one.

A folder of shards holds `<split>-00000-of-00004.tfrecord` files and one record::

    {"format_version": 2,
     "info": {...},                           # the DatasetInfo
     "splits": {"train": {"num_examples": 1464,
                          "shards": [{"file": "train-00000-of-00003.tfrecord",
                                      "num_examples": 488, "bytes": 58123456,
                                      "sha256": "..."}, ...]}}}

A split is committed by `commit_split`: the new shards are written elsewhere first (a temporary
folder inside the output folder), then the split's entry is removed from the record, the old
shards are deleted, the new ones renamed into place, and the entry written again, last. Each
record write is atomic (a temporary file, fsync, rename). So a process killed at any point leaves
the split either as it was, or without an entry (read as absent), or whole and new; never old and
new shards mixed under one entry.

`tfrecord_files` reads a split only if the record lists it and its shards on disk are exactly the
listed ones, with the listed sizes and SHA-256 digests. One folder has one writer at a time.
"""

import concurrent.futures
import glob
import hashlib
import json
import os
import shutil

from rignet_keras.data.errors import DatasetError
from rignet_keras.data.info import DatasetInfo
from rignet_keras.runtime import atomic

INFO_FILENAME = "dataset_info.json"
SHARD_SUFFIX = ".tfrecord"
RECORD_VERSION = 2
STAGING_PREFIX = ".convert-"


def convert_hint(split="SPLIT"):
    """The command that converts a split, for error messages."""
    return (
        "`python -m rignet_keras.data convert <dataset> --data-dir DIR --output-dir OUT "
        f"--split {split}`"
    )


def shard_names(split, num_shards):
    """The shard file names of a split: `<split>-00000-of-00004.tfrecord`, ..."""
    return [f"{split}-{i:05d}-of-{num_shards:05d}{SHARD_SUFFIX}" for i in range(num_shards)]


def record_path(folder):
    """The record of a shard folder: `<folder>/dataset_info.json`."""
    return os.path.join(os.fspath(folder), INFO_FILENAME)


def load_record(folder):
    """The record of `folder` as a dict, or None if it has none.

    Raises:
        DatasetError: naming the file, if it is not a record of this format.
    """
    path = record_path(folder)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise DatasetError(f"cannot read the shard record {path}: {e}") from e
    if not isinstance(meta, dict) or meta.get("format_version") != RECORD_VERSION:
        found = meta.get("format_version") if isinstance(meta, dict) else None
        raise DatasetError(
            f"{path} has format_version {found!r}, not {RECORD_VERSION} (it lists no shard sizes "
            f"and digests); convert the data again with {convert_hint()}"
        )
    return meta


def new_record(info):
    """An empty record for a folder of `info`'s dataset."""
    return {"format_version": RECORD_VERSION, "info": info.to_dict(), "splits": {}}


def check_same_dataset(meta, info, folder):
    """Raises `DatasetError` if the record `meta` of `folder` describes another dataset or
    label convention than `info` (their labels would not be comparable)."""
    if DatasetInfo.from_dict(meta["info"]) != info:
        raise DatasetError(
            f"{record_path(folder)} describes {meta['info']['name']} (label_convention "
            f"{meta['info']['label_convention']!r}); refusing to mix in {info.name} "
            f"({info.label_convention!r}): use another output folder"
        )


def _fsync_dir(folder):
    if hasattr(os, "O_DIRECTORY"):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_record(folder, meta):
    """Writes the record atomically: a temporary file, fsync, then one rename."""
    atomic.write_json(record_path(folder), meta)


def file_digest(path, chunk_size=1 << 22):
    """(size in bytes, SHA-256 hex digest) of a file."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def split_shards_on_disk(folder, split):
    """The shard files of `split` in `folder` (sorted), listed in the record or not."""
    return sorted(glob.glob(os.path.join(folder, f"{split}-*-of-*{SHARD_SUFFIX}")))


def remove_stale_staging(folder, split):
    """Deletes the temporary folders that an interrupted conversion of `split` left behind."""
    for path in glob.glob(os.path.join(folder, f"{STAGING_PREFIX}{split}-*")):
        shutil.rmtree(path, ignore_errors=True)


def commit_split(folder, info, split, staged, shards):
    """Replaces `split` in `folder` by the shards in the folder `staged` (see the module doc).

    The record is read again here, so that the entries of other splits written meanwhile stay.

    Args:
        folder: the shard folder.
        info: the `DatasetInfo` of the shards (checked against the record's).
        split: the split name.
        staged: the folder (on the same file system) that holds the new shard files.
        shards: list of {"file", "num_examples", "bytes", "sha256"}, one per new shard.

    Returns:
        the paths of the new shards in `folder`.
    """
    for entry in shards:
        with open(os.path.join(staged, entry["file"]), "rb") as f:
            os.fsync(f.fileno())
    meta = load_record(folder) or new_record(info)
    check_same_dataset(meta, info, folder)
    if split in meta["splits"]:
        del meta["splits"][split]
        save_record(folder, meta)  # from here until the last write, the split reads as absent
    for path in split_shards_on_disk(folder, split):
        os.remove(path)
    paths = []
    for entry in shards:
        path = os.path.join(folder, entry["file"])
        os.replace(os.path.join(staged, entry["file"]), path)
        paths.append(path)
    meta["splits"][split] = {
        "num_examples": sum(entry["num_examples"] for entry in shards),
        "shards": shards,
    }
    save_record(folder, meta)
    return paths


def is_tfrecord_source(source):
    """True if `source` names TFRecords: a glob, a `.tfrecord` file, or a folder of shards."""
    source = os.fspath(source)
    if any(ch in source for ch in "*?["):
        return True
    if source.endswith(SHARD_SUFFIX):
        return True
    return os.path.isdir(source) and (
        os.path.isfile(record_path(source))
        or bool(glob.glob(os.path.join(source, f"*{SHARD_SUFFIX}")))
    )


def _listed(meta):
    """{file name: (split, shard entry)} of every shard in the record `meta`."""
    return {
        entry["file"]: (split, entry)
        for split, value in meta["splits"].items()
        for entry in value["shards"]
    }


def _require_record(folder):
    meta = load_record(folder)
    if meta is None:
        raise DatasetError(
            f"{folder} holds no {INFO_FILENAME} (the record of which shards make each split): "
            f"shards without one are not read; write them with {convert_hint()}"
        )
    return meta


def _folder_files(folder, split):
    meta = _require_record(folder)
    path = record_path(folder)
    if split is None:
        wanted = list(meta["splits"])
        on_disk = sorted(glob.glob(os.path.join(folder, f"*{SHARD_SUFFIX}")))
    else:
        wanted = [split]
        on_disk = split_shards_on_disk(folder, split)
        if split not in meta["splits"]:
            state = (
                f"its {len(on_disk)} shard file(s) are not listed (a conversion was interrupted, "
                "or is under way)"
                if on_disk
                else "no shards of it are there"
            )
            raise DatasetError(
                f"split {split!r} is not recorded in {path}: {state}; recorded: "
                f"{sorted(meta['splits'])}. Convert it with {convert_hint(split)}"
            )
    listed = [entry for s in wanted for entry in meta["splits"][s]["shards"]]
    names = {entry["file"] for entry in listed}
    extra = [p for p in on_disk if os.path.basename(p) not in names]
    if extra:
        raise DatasetError(
            f"{extra[0]} is not listed in {path} ({len(extra)} unlisted shard file(s)): shards of "
            "another conversion; remove them or convert the split again"
        )
    return [(os.path.join(folder, entry["file"]), entry, path) for entry in listed]


def _glob_files(pattern):
    matched = sorted(glob.glob(pattern))
    if not matched:
        raise DatasetError(f"no TFRecord shards match {pattern}; write them with {convert_hint()}")
    out = []
    by_folder = {}
    for p in matched:
        by_folder.setdefault(os.path.dirname(p) or ".", []).append(p)
    for folder, files in by_folder.items():
        meta = _require_record(folder)
        listed = _listed(meta)
        path = record_path(folder)
        for p in files:
            if os.path.basename(p) not in listed:
                raise DatasetError(
                    f"{p} is not listed in {path}: a shard of another conversion; remove it or "
                    "convert the split again"
                )
            out.append((p, listed[os.path.basename(p)][1], path))
        names = {os.path.basename(p) for p in files}
        for split in sorted({listed[n][0] for n in names}):
            split_files = [e["file"] for e in meta["splits"][split]["shards"]]
            left_out = [f for f in split_files if f not in names]
            if left_out:
                raise DatasetError(
                    f"{pattern} matches {len(split_files) - len(left_out)} of the "
                    f"{len(split_files)} shards of split {split!r} in {folder} (not "
                    f"{left_out[0]}); name the folder, or a pattern that matches the whole split "
                    "(num_samples takes a subset)"
                )
    return out


def _check_shard(item):
    path, entry, record = item
    if not os.path.isfile(path):
        return f"shard {path}, listed in {record}, is missing"
    size = os.path.getsize(path)
    if size != entry["bytes"]:
        return (
            f"shard {path} has {size} bytes, but {record} lists {entry['bytes']}: it is not the "
            "shard that conversion wrote (another conversion's, or damaged)"
        )
    _, digest = file_digest(path)
    if digest != entry["sha256"]:
        return f"shard {path} does not match its SHA-256 in {record}: it is damaged or was replaced"
    return None


def tfrecord_files(source, split=None, *, verify=True):
    """The shard files of `source` (a folder, a glob or a file), in the order of the record.

    A folder gives the shards of `split` (all splits if None). Every file must be listed in the
    record of its folder; a folder's split must be recorded and its shards on disk exactly the
    listed ones; a glob or file must cover whole splits. With `verify`, each shard's size and
    SHA-256 digest are checked against the record (threads; about one second per GB).

    Raises:
        DatasetError: naming the folder, shard or record at fault, and the command that converts
            the data.
    """
    source = os.fspath(source)
    if os.path.isdir(source):
        items = _folder_files(source, split)
    else:
        items = _glob_files(source)
    if not items:
        raise DatasetError(f"{source} records no shards; convert a split with {convert_hint()}")
    if verify:
        with concurrent.futures.ThreadPoolExecutor(min(8, len(items))) as pool:
            for problem in pool.map(_check_shard, items):
                if problem:
                    raise DatasetError(f"{problem}; convert the split again with {convert_hint()}")
    return [path for path, _, _ in items]


def read_tfrecord_info(source):
    """The `DatasetInfo` in the record beside the shards of `source`, or None if it has none."""
    source = os.fspath(source)
    folder = source if os.path.isdir(source) else os.path.dirname(source)
    meta = load_record(folder or ".")
    return None if meta is None else DatasetInfo.from_dict(meta["info"])
