"""A run folder's files, written whole or not at all: checkpoints (`atomic_save`), JSON records
(`atomic_write_json`), the clean-up of what a killed run left (`remove_stale_files`), and the
best/last checkpoint callback (`BestAndLastCheckpoint`).

Every file goes through the project's atomic writer (`rignet_runtime.atomic.replacing`):
it is written to a temporary name in its folder (`TEMP_PREFIX` + 8 characters + its suffix) and
moved into place with `os.replace`, so a run killed while writing leaves the previous file
intact and a temporary file that `remove_stale_files` deletes at the next start. No checkpoint is
written from weights that hold a NaN or an infinity: `atomic_save` refuses with
`NonFiniteTrainingError`.
"""

import json
import math
import os
import re

import keras

from rignet_keras.training.faults import fault_point
from rignet_keras.training.model_state import saved_variables
from rignet_keras.training.nan_guard import (
    NonFiniteTrainingError,
    describe_variables,
    nonfinite_variables,
)
from rignet_keras.training.steps import global_step
from rignet_runtime.atomic import replacing, write_json, write_text

TEMP_PREFIX = ".tmp-rignet-"
_TEMP_NAME = re.compile(
    re.escape(TEMP_PREFIX) + r"[a-z0-9_]{8}(\.json|\.csv|\.keras|\.weights\.h5)\Z"
)
# The exact-resume backup (`backup.ResumableBackup`): its record, and its weights files.
BACKUP_STATE_FILE = "state.json"
BACKUP_WEIGHTS_NAME = re.compile(r"state-(\d{9})\.weights\.h5\Z")


def atomic_write_text(path, text, suffix):
    """Writes `text` (UTF-8, newlines as given) to `path` atomically; the temporary file is
    named `TEMP_PREFIX` + 8 characters + `suffix` (".csv", ".json")."""
    write_text(path, text, prefix=TEMP_PREFIX, suffix=suffix)


def atomic_write_json(path, obj):
    """Writes `obj` as JSON (indented, keys sorted) to `path` atomically."""
    write_json(path, obj, sort_keys=True, prefix=TEMP_PREFIX, suffix=".json")


def save_json(path, obj):
    """Writes `obj` as indented JSON (atomically); values JSON does not know are written as
    their `str`."""
    atomic_write_json(path, json.loads(json.dumps(obj, default=str)))


def read_json(path, default=None):
    """The JSON value in the file at `path`, or `default` when there is no such file.

    Raises:
        ValueError: naming the file, when it is not whole JSON (a damaged run folder).
    """
    if not os.path.isfile(path):
        return default
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path} is damaged (not valid JSON: {error}); restore it, or start the run afresh "
            "in another folder"
        ) from None


def refuse_nonfinite(model, path):
    """Raises `NonFiniteTrainingError` naming `path` and the variables when a weight or
    optimizer variable of `model` holds a NaN or an infinity."""
    bad = nonfinite_variables(saved_variables(model))
    if bad:
        raise NonFiniteTrainingError(
            f"refusing to write {path}: non-finite values in {describe_variables(bad)}",
            what=f"non-finite values in {describe_variables(bad)}",
        )


def atomic_save(model, path, before_replace=None, *, checked=False):
    """Saves `model` to `path` (`.keras`: whole model; `.weights.h5`: weights) atomically.

    Refuses (raises `NonFiniteTrainingError`, `path` untouched) when a weight or optimizer
    variable holds a NaN or an infinity, unless `checked` says the caller has just found them
    finite (one pass over the weights per save point, not one per file). `before_replace`, if
    given, is called once the temporary file is complete, just before it replaces `path` (the
    kill tests' hook).
    """
    path = os.fspath(path)
    if path.endswith(".weights.h5"):
        suffix = ".weights.h5"
    elif path.endswith(".keras"):
        suffix = ".keras"
    else:
        raise ValueError(f"path must end with .keras or .weights.h5; received {path!r}")
    if not checked:
        refuse_nonfinite(model, path)
    with replacing(path, prefix=TEMP_PREFIX, suffix=suffix) as tmp:
        if suffix == ".keras":
            model.save(tmp, overwrite=True)
        else:
            model.save_weights(tmp, overwrite=True)
        if before_replace is not None:
            before_replace()


def remove_stale_files(folder):
    """Deletes what a killed run left in `folder`: the temporary files of the atomic writes
    (`TEMP_PREFIX` + 8 characters + a suffix this module writes) and, in a backup folder, the
    `state-<step>.weights.h5` files newer than the state `state.json` names (a backup killed
    before its `state.json`), or all of them when there is no `state.json`. Nothing else is
    touched. Returns the removed file names."""
    if not os.path.isdir(folder):
        return []
    names = sorted(os.listdir(folder))
    stale = [n for n in names if _TEMP_NAME.match(n)]
    states = {n: int(m.group(1)) for n in names if (m := BACKUP_WEIGHTS_NAME.match(n))}
    if states:
        state = read_json(os.path.join(folder, BACKUP_STATE_FILE))
        latest = state["step"] if state else -1
        stale += [n for n, step in states.items() if step > latest]
    for name in stale:
        os.remove(os.path.join(folder, name))
    return stale


class BestAndLastCheckpoint(keras.callbacks.Callback):
    """Saves the network (not the training wrapper) as `last.keras` / `last.weights.h5` at every
    epoch end, and as `best.*` when the monitored value improves; then `checkpoints.json`.
    Atomic; a network with a non-finite weight stops the run (through the guard) instead.

    Args:
        directory: folder of the checkpoints.
        network: the Keras model to save (the RIGNet).
        monitor: log key, e.g. "val_mIoU"; None saves only `last`.
        mode: "max" or "min".
        guard: the `NaNGuard`.
        best: the best value so far (restored on resume).
        save_keras: also write the `.keras` files (config + weights).
    """

    def __init__(
        self,
        directory,
        network,
        monitor="val_mIoU",
        mode="max",
        guard=None,
        best=None,
        save_keras=True,
    ):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min'; received {mode!r}")
        self.directory = directory
        self.network = network
        self.monitor = monitor
        self.mode = mode
        self.guard = guard
        self.best = best
        self.best_step = None
        self.last_step = None
        self.save_keras = save_keras

    def describe(self):
        if self.last_step is None:
            return "none yet"
        return f"{os.path.join(self.directory, 'last.keras')} at step {self.last_step}"

    def _improved(self, value):
        if value is None or not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def _save(self, stem, step):
        def hook():
            fault_point("checkpoint_write", step)

        weights = os.path.join(self.directory, f"{stem}.weights.h5")
        atomic_save(self.network, weights, hook, checked=True)
        if self.save_keras:
            atomic_save(self.network, os.path.join(self.directory, f"{stem}.keras"), checked=True)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        step = global_step(self.model)
        # One pass over the weights for the up to four files below (`_save` skips its own).
        if self.guard is not None:
            self.guard.check_variables(
                saved_variables(self.network), step, epoch, what="network weights"
            )
        else:
            refuse_nonfinite(self.network, self.directory)
        self._save("last", step)
        info = {"last": {"step": step, "epoch": epoch + 1}}
        value = logs.get(self.monitor) if self.monitor else None
        value = None if value is None else float(value)
        if self._improved(value):
            self.best = value
            self.best_step = step
            self._save("best", step)
        info["monitor"] = self.monitor
        info["best"] = {"value": self.best, "step": self.best_step}
        atomic_write_json(os.path.join(self.directory, "checkpoints.json"), info)
        self.last_step = step
