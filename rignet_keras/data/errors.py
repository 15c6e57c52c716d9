"""Errors for bad or missing data, and the policy for a bad sample (`on_bad_sample`).

Every message names the file or folder at fault and, for missing data, the command that gets it.
"""

import logging
import re
import threading

logger = logging.getLogger("rignet_keras.data")

ON_BAD_SAMPLE = ("raise", "skip")


class DatasetError(ValueError):
    """A dataset folder, list or sample is missing or invalid; the message names the path."""


def check_on_bad_sample(on_bad_sample):
    """The policy ("raise" or "skip") of `on_bad_sample`: one of those strings, or a
    `BadSampleLog`; raises `ValueError` naming the value otherwise."""
    if isinstance(on_bad_sample, BadSampleLog):
        return on_bad_sample.on_bad_sample
    if on_bad_sample not in ON_BAD_SAMPLE:
        raise ValueError(
            f"on_bad_sample must be one of {ON_BAD_SAMPLE}; received {on_bad_sample!r}"
        )
    return on_bad_sample


def download_hint(dataset, data_dir):
    """The command that downloads `dataset` into `data_dir`, for error messages."""
    return f"rignet data download {dataset} --data-dir {data_dir}"


def missing_path_error(what, path, dataset, data_dir):
    """A `DatasetError` for a missing folder or file, with the command that gets the data."""
    return DatasetError(
        f"{what} not found: {path}. Get the data with `{download_hint(dataset, data_dir)}` "
        f"(or point data_dir at the folder that holds it)."
    )


class BadSampleLog:
    """The policy for a bad sample (`on_bad_sample`), and the record of the samples it skipped.

    Under "raise", `add` raises the `DatasetError` at once; `add_missing` is not called (the
    readers raise first). Under "skip", each sample is recorded once (a pipeline that reads a
    set again, epoch after epoch, counts it once), with one warning naming its file. Safe to use
    from the threads of a `tf.data` map or a thread pool.

    Pass a `BadSampleLog` as `on_bad_sample` (to the readers, `validate_dataset`,
    `build_dataset`, the TFDS builders) to read the count afterwards: `num_skipped`,
    `summary()`.
    """

    def __init__(self, on_bad_sample, what="samples"):
        self.on_bad_sample = check_on_bad_sample(on_bad_sample)
        self.what = what
        self.bad = []  # (sample id, message) of samples that failed a check
        self.missing = []  # (sample id, message) of listed samples with a missing file
        self._seen = set()
        self._lock = threading.Lock()

    @property
    def num_skipped(self):
        """Samples left out so far: bad ones and listed ones with a missing file."""
        return len(self.bad) + len(self.missing)

    def _record(self, entries, sample_id, message):
        with self._lock:
            if sample_id in self._seen:
                return False
            self._seen.add(sample_id)
            entries.append((sample_id, message))
            return True

    def add(self, sample_id, error):
        """Records (or raises) `error`, a `DatasetError` about sample `sample_id`."""
        if self.on_bad_sample == "raise":
            raise error
        if self._record(self.bad, sample_id, str(error)):
            logger.warning("skipping %s: %s", sample_id, error)

    def add_missing(self, sample_id, path):
        """Records a listed sample whose file `path` does not exist (the caller warns once)."""
        if self.on_bad_sample == "raise":
            raise DatasetError(f"{sample_id}: file not found: {path}")
        self._record(self.missing, sample_id, f"file not found: {path}")

    def summary(self, num_checked=None):
        """One line: how many samples were skipped and why, and the first few file names.

        Args:
            num_checked: samples that were read and checked (the missing ones come on top);
                None where the total is not known (a `tf.data` pipeline).
        """
        total = None if num_checked is None else num_checked + len(self.missing)
        if not self.num_skipped:
            if total is None:
                return f"no {self.what} skipped"
            return f"{total} {self.what} checked, none skipped"
        of = "" if total is None else f" of {total}"
        why = ""
        if self.missing:
            why = f" ({len(self.missing)} with missing files, {len(self.bad)} bad)"
        entries = self.missing + self.bad
        shown = "; ".join(msg for _, msg in entries[:5])
        more = f" (and {len(entries) - 5} more)" if len(entries) > 5 else ""
        return f"skipped {self.num_skipped}{of} {self.what}{why}: {shown}{more}"


def bad_sample_log(on_bad_sample):
    """`on_bad_sample` itself if it is a `BadSampleLog`, else a new one with that policy."""
    if isinstance(on_bad_sample, BadSampleLog):
        return on_bad_sample
    return BadSampleLog(on_bad_sample)


BAD_SAMPLE_MARK = "rignet_keras.data bad sample"
# How an `Assert` carrying the mark and the message prints them: in a graph ("[mark] [line]")
# and eagerly ("b'mark'" and "b'line'" on two lines).
_CARRIED = re.compile(
    r"\[" + re.escape(BAD_SAMPLE_MARK) + r"\] \[(.*)\]$"
    r"|b'" + re.escape(BAD_SAMPLE_MARK) + r"'\nb'(.*)'$",
    re.MULTILINE,
)


def dataset_error_from(error):
    """The `DatasetError` of a bad sample that stopped the iteration of a `build_dataset` dataset.

    Iterating re-raises it as a `tf.errors.InvalidArgumentError` whose message carries the
    one-line message (naming the file) after `BAD_SAMPLE_MARK`, inside TensorFlow's context. This
    returns a `DatasetError` with that line, for a command line to print, or None if `error`
    carries none (then it is no bad sample).
    """
    if isinstance(error, DatasetError):
        return error
    match = _CARRIED.search(getattr(error, "message", None) or str(error))
    return DatasetError(match.group(1) or match.group(2)) if match else None
