"""A run's `history.csv`: one row per epoch, written by `EpochHistory` and read by
`read_history`."""

import csv
import io
import os

import keras

from rignet_keras.training.checkpoints import atomic_write_text
from rignet_keras.training.faults import fault_point
from rignet_keras.training.model_state import python_logs


class EpochHistory(keras.callbacks.Callback):
    """`history.csv`: one row per epoch, `epoch` (0-based) then the epoch's logs in key order
    (`NA` where an epoch lacks a key, e.g. without validation), rewritten atomically at each
    epoch end. Each epoch has one row: writing an epoch drops the rows of that epoch and later
    ones (a resumed run redoing them), and `truncate` drops those a resume will redo.

    Args:
        path: the CSV file.
    """

    def __init__(self, path):
        super().__init__()
        self.path = path

    def rows(self):
        """The rows written so far, as {column: text} dicts."""
        if not os.path.isfile(self.path):
            return []
        with open(self.path, encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))

    def truncate(self, num_epochs):
        """Keeps the rows of epochs 0..num_epochs-1 only."""
        rows = self.rows()
        kept = [r for r in rows if int(r["epoch"]) < num_epochs]
        if not kept and os.path.isfile(self.path):
            os.remove(self.path)
        elif len(kept) != len(rows):
            self._write(kept)

    def _write(self, rows):
        keys = sorted({k for row in rows for k in row} - {"epoch"})
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=["epoch", *keys], restval="NA", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.path, out.getvalue(), ".csv")

    @staticmethod
    def _format(value):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return str(value)
        return str(value) if isinstance(value, int) else repr(float(value))

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": str(epoch)}
        row.update({k: self._format(v) for k, v in python_logs(logs).items()})
        rows = [r for r in self.rows() if int(r["epoch"]) < epoch]
        self._write([*rows, row])
        fault_point("after_history", row.get("step"))


def read_history(path):
    """The CSV log as {column: [values]} (floats where they parse); {} when there is none."""
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    history = {}
    for row in rows:
        for key, value in row.items():
            try:
                value = float(value)
            except (TypeError, ValueError):
                pass
            history.setdefault(key, []).append(value)
    return history
