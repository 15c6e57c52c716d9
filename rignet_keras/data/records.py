"""`Record`: one sample on disk (an image file and the file its mask comes from), and the helpers
that the dataset readers share (id lists, existence checks)."""

import dataclasses
import os

from rignet_keras.data.errors import DatasetError, bad_sample_log, logger

# How a record's mask file is decoded into class indices (see `rignet_keras.data.masks`):
#   "png": a palette ('P') or grayscale ('L') PNG whose pixel values are the class indices (VOC).
#   "sbd_mat": an SBD `cls/*.mat` file, `GTcls.Segmentation`.
#   "cocostuff182", "cocostuff171": a COCO-Stuff `annotations/*.mat` file (field `S`), remapped.
MASK_FORMATS = ("png", "sbd_mat", "cocostuff182", "cocostuff171")


@dataclasses.dataclass(frozen=True)
class Record:
    """One sample: `id`, the image file, the mask file and how to decode it (`MASK_FORMATS`)."""

    id: str
    image_path: str
    mask_path: str
    mask_format: str = "png"

    def __post_init__(self):
        if self.mask_format not in MASK_FORMATS:
            raise ValueError(
                f"mask_format must be one of {MASK_FORMATS}; received {self.mask_format!r}"
            )


def read_id_list(path):
    """Reads a list of sample ids, one per line, from a split file such as `train.txt`.

    Also accepts the two-column lists of the `SegmentationClassAug` layout
    (`/JPEGImages/2007_000032.jpg /SegmentationClassAug/2007_000032.png`): the id is the file
    stem of the first column. Blank lines are ignored; the order of the file is kept.
    """
    if not os.path.isfile(path):
        raise DatasetError(f"split list not found: {path}")
    ids = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            first = line.split()[0]
            ids.append(os.path.splitext(os.path.basename(first))[0])
    return ids


def drop_missing(records, on_bad_sample, what):
    """Checks that every record's image and mask exist.

    Missing files raise a `DatasetError` that names the first few (`on_bad_sample="raise"`), or the
    records are dropped with one warning that counts them ("skip"); a `BadSampleLog` passed as
    `on_bad_sample` records each dropped sample, so that summaries count it.
    """
    log = bad_sample_log(on_bad_sample)
    missing = []
    kept = []
    for r in records:
        absent = [p for p in (r.image_path, r.mask_path) if not os.path.isfile(p)]
        if absent:
            missing.append((r.id, absent[0]))
        else:
            kept.append(r)
    if missing:
        paths = [path for _, path in missing]
        shown = ", ".join(paths[:5]) + (f" (and {len(paths) - 5} more)" if len(paths) > 5 else "")
        msg = f"{what}: {len(missing)} of {len(records)} listed samples have missing files: {shown}"
        if log.on_bad_sample == "raise":
            raise DatasetError(msg)
        logger.warning("%s; skipping them", msg)
        for sample_id, path in missing:
            log.add_missing(sample_id, path)
    return kept


def first_existing(candidates):
    """The first path in `candidates` that is a directory, or None."""
    for c in candidates:
        if os.path.isdir(c):
            return c
    return None
