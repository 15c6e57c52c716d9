"""Errors for bad or missing data, and the policy for a bad sample (`on_bad_sample`).

Every message names the file or folder at fault and, for missing data, the command that gets it.
"""

import logging

logger = logging.getLogger("rignet_keras.data")

ON_BAD_SAMPLE = ("raise", "skip")


class DatasetError(ValueError):
    """A dataset folder, list or sample is missing or invalid; the message names the path."""


def check_on_bad_sample(on_bad_sample):
    """Returns `on_bad_sample` if it is "raise" or "skip"; raises `ValueError` otherwise."""
    if on_bad_sample not in ON_BAD_SAMPLE:
        raise ValueError(
            f"on_bad_sample must be one of {ON_BAD_SAMPLE}; received {on_bad_sample!r}"
        )
    return on_bad_sample


def download_hint(dataset, data_dir):
    """The command that downloads `dataset` into `data_dir`, for error messages."""
    return f"python -m rignet_keras.data download {dataset} --data-dir {data_dir}"


def missing_path_error(what, path, dataset, data_dir):
    """A `DatasetError` for a missing folder or file, with the command that gets the data."""
    return DatasetError(
        f"{what} not found: {path}. Get the data with `{download_hint(dataset, data_dir)}` "
        f"(or point data_dir at the folder that holds it)."
    )


class BadSampleLog:
    """Collects bad samples under `on_bad_sample="skip"`, and reports them once at the end.

    Under "raise", `add` raises the `DatasetError` at once.
    """

    def __init__(self, on_bad_sample, what="samples"):
        self.on_bad_sample = check_on_bad_sample(on_bad_sample)
        self.what = what
        self.bad = []  # (sample id, message)

    def add(self, sample_id, error):
        """Records (or raises) `error`, a `DatasetError` about sample `sample_id`."""
        if self.on_bad_sample == "raise":
            raise error
        logger.warning("skipping %s: %s", sample_id, error)
        self.bad.append((sample_id, str(error)))

    def summary(self, num_total):
        """One line: how many of `num_total` were skipped, and the first few file names."""
        if not self.bad:
            return f"{num_total} {self.what} checked, none skipped"
        shown = "; ".join(msg for _, msg in self.bad[:5])
        more = f" (and {len(self.bad) - 5} more)" if len(self.bad) > 5 else ""
        return f"skipped {len(self.bad)} of {num_total} {self.what}: {shown}{more}"
