"""`validate_dataset`: one pass over a dataset that checks every sample and reports the bad ones."""

import dataclasses

from tqdm import tqdm

from rignet_keras.data.errors import DatasetError, bad_sample_log, logger
from rignet_keras.data.masks import load_sample


@dataclasses.dataclass
class ValidationReport:
    """What `validate_dataset` found: the valid records, (id, message) of each bad one, and of
    each listed sample whose file was missing (when the reader was given the same log)."""

    num_checked: int
    valid: list
    bad: list
    summary: str
    missing: list = dataclasses.field(default_factory=list)


def validate_dataset(records, info, *, on_bad_sample="raise", progress=True):
    """Decodes every sample fully and checks it.

    A sample is bad if its image or mask cannot be read, if the mask is not the size of the image,
    or if the mask holds a label outside 0..num_classes-1 other than `info.ignore_label`.

    Args:
        records: list of `Record`.
        info: the `DatasetInfo` whose `num_classes` bounds the labels.
        on_bad_sample: "raise" (the first bad sample raises a `DatasetError` that names its file)
            or "skip" (bad samples are collected, and counted in the summary at the end); or the
            `BadSampleLog` that the reader was given, so that samples with missing files are
            counted too.
        progress: show a tqdm progress bar.

    Returns:
        `ValidationReport`.
    """
    log = bad_sample_log(on_bad_sample)
    valid = []
    for r in tqdm(records, desc=f"validate {info.name}", unit="img", disable=not progress):
        try:
            load_sample(r, info.num_classes, info.ignore_label)
        except DatasetError as e:
            log.add(r.id, e)
        else:
            valid.append(r)
    summary = log.summary(len(records))
    logger.info("validate %s: %s", info.name, summary)
    return ValidationReport(len(records), valid, list(log.bad), summary, list(log.missing))
