"""Callbacks of `Trainer`: a non-finite guard, atomic best/last checkpoints, an exact-resume
backup, and the per-epoch history.

Every file is written to a temporary name in its folder (`TEMP_PREFIX`) and moved into place with
`os.replace`, so a run killed while writing leaves the previous file intact and a temporary file
that `remove_stale_files` deletes at the next start. No file is written from weights that hold a
NaN or an infinity: the write refuses and `NonFiniteTrainingError` stops the run.

The epoch-end sequence, in callback order: `NaNGuard` checks the epoch's logs, `LearningRateLogger`
adds `lr` and `step`, `BestAndLastCheckpoint` writes `last.*` and `best.*`, `EpochHistory` writes
the epoch's row, and `ResumableBackup` marks the epoch as ended in the backup. A backup taken at
an epoch's last step (before its validation) whose epoch is not marked ended makes the resumed
run redo that epoch's validation and end (`Trainer.fit`).
"""

import csv
import io
import json
import math
import os
import re
import signal
import tempfile

import keras
import numpy as np

from rignet_keras.runtime.file_modes import apply_umask

TEMP_PREFIX = ".tmp-rignet-"
_TEMP_NAME = re.compile(
    re.escape(TEMP_PREFIX) + r"[a-z0-9_]{8}(\.json|\.csv|\.keras|\.weights\.h5)\Z"
)
_STATE_NAME = re.compile(r"state-(\d{9})\.weights\.h5\Z")

FAULT_POINT_ENV = "RIGNET_FAULT_POINT"


class NonFiniteTrainingError(FloatingPointError):
    """Training stopped on a NaN or an infinity: in the training loss, in an epoch's validation
    logs, or in a weight or optimizer variable about to be saved.

    The message (one line) names the step, what was not finite and the last good state. Attributes:
    `step` (the global step), `epoch` (0-based, or None), `what` and `last_good`.
    """

    def __init__(self, message, step=None, epoch=None, what=None, last_good=None):
        super().__init__(message)
        self.step = step
        self.epoch = epoch
        self.what = what
        self.last_good = last_good


def fault_point(name, step):
    """Test hook of the kill tests (tests/training/test_faults.py): kills this process with SIGKILL
    when the environment variable `RIGNET_FAULT_POINT` is `f"{name}:{step}"`. Unset, as it is
    outside those tests, it does nothing."""
    if os.environ.get(FAULT_POINT_ENV) == f"{name}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)


# --------------------------------------------------------------------------------------------
# Files


def _atomic_write_text(path, text, suffix):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        apply_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_json(path, obj):
    """Writes `obj` as JSON to `path` atomically (temporary file, then `os.replace`)."""
    _atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True), ".json")


def nonfinite_variables(variables):
    """The paths of the floating-point `variables` that hold a NaN or an infinity."""
    floating = [v for v in variables if "float" in str(v.dtype)]
    if not floating:
        return []
    flags = keras.ops.convert_to_numpy(
        keras.ops.stack([keras.ops.all(keras.ops.isfinite(v)) for v in floating])
    )
    return [v.path for v, finite in zip(floating, flags, strict=True) if not finite]


def saved_variables(model):
    """The variables `atomic_save` writes: the model's weights, with its optimizer's when it has
    a built one (`save_weights` of a compiled model includes them)."""
    variables = list(model.weights)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and getattr(optimizer, "built", False):
        variables += list(optimizer.variables)
    return variables


def describe_variables(paths, limit=3):
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def atomic_save(model, path, before_replace=None):
    """Saves `model` to `path` (`.keras`: whole model; `.weights.h5`: weights) atomically.

    Refuses (raises `NonFiniteTrainingError`, `path` untouched) when a weight or optimizer
    variable holds a NaN or an infinity. `before_replace`, if given, is called once the
    temporary file is complete, just before it replaces `path` (the kill tests' hook).
    """
    path = os.fspath(path)
    if path.endswith(".weights.h5"):
        suffix = ".weights.h5"
    elif path.endswith(".keras"):
        suffix = ".keras"
    else:
        raise ValueError(f"path must end with .keras or .weights.h5; received {path!r}")
    bad = nonfinite_variables(saved_variables(model))
    if bad:
        raise NonFiniteTrainingError(
            f"refusing to write {path}: non-finite values in {describe_variables(bad)}",
            what=f"non-finite values in {describe_variables(bad)}",
        )
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=suffix)
    os.close(fd)
    try:
        if suffix == ".keras":
            model.save(tmp, overwrite=True)
        else:
            model.save_weights(tmp, overwrite=True)
        apply_umask(tmp)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


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
    states = {n: int(m.group(1)) for n in names if (m := _STATE_NAME.match(n))}
    if states:
        state = read_json(os.path.join(folder, ResumableBackup.STATE_FILE))
        latest = state["step"] if state else -1
        stale += [n for n, step in states.items() if step > latest]
    for name in stale:
        os.remove(os.path.join(folder, name))
    return stale


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


def weights_are_finite(model):
    """True if every weight of `model` is finite (a NaN step leaves NaN weights behind)."""
    return not nonfinite_variables(model.weights)


# --------------------------------------------------------------------------------------------
# Training state that `save_weights` does not keep


def global_step(model):
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def _seed_variables(model):
    return [v for v in model.variables if "seed_generator_state" in v.path]


def seed_states(model):
    """The states of the model's seed generators (dropout's random state), in variable order:
    `save_weights` does not keep them. (Matched by position, as their names get a suffix that
    depends on how many were created before in the process.)"""
    return [keras.ops.convert_to_numpy(v).tolist() for v in _seed_variables(model)]


def restore_seed_states(model, states):
    variables = _seed_variables(model)
    if not states:
        return
    if len(states) != len(variables):
        raise ValueError(
            f"the backup holds {len(states)} random-generator states; the model has "
            f"{len(variables)}: it is not the model that was backed up"
        )
    for v, value in zip(variables, states, strict=True):
        v.assign(np.asarray(value, dtype=v.dtype))


def metric_states(model):
    """The variables of `model.metrics` (the epoch's running mean loss, ...) as nested lists, per
    metric: an epoch resumed mid-way reports the mean over all its steps."""
    return [[keras.ops.convert_to_numpy(v).tolist() for v in m.variables] for m in model.metrics]


def restore_metric_states(model, states):
    metrics = model.metrics
    if len(states) != len(metrics) or any(
        len(s) != len(m.variables) for s, m in zip(states, metrics, strict=False)
    ):
        raise ValueError(
            "the backup's metric states do not match the model's metrics "
            f"({[m.name for m in metrics]}): it is not the model that was backed up"
        )
    for metric, values in zip(metrics, states, strict=True):
        for v, value in zip(metric.variables, values, strict=True):
            v.assign(np.asarray(value, dtype=v.dtype))


def _python_logs(logs):
    out = {}
    for key, value in (logs or {}).items():
        if not isinstance(value, int | float | str):
            value = keras.ops.convert_to_numpy(value)
        out[key] = value.item() if isinstance(value, np.ndarray | np.generic) else value
    return out


# --------------------------------------------------------------------------------------------
# Callbacks


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite training loss or epoch log (e.g. `val_loss`), and
    is where the other callbacks stop when the weights they are asked to save are not finite.

    Every stop raises `NonFiniteTrainingError` (so no callback after it saves anything) with a
    one-line message naming the step and, through `describe_last_good` (a callable set by the
    trainer), the last good checkpoint and the latest backup.
    """

    def __init__(self, describe_last_good=None):
        super().__init__()
        self.describe_last_good = describe_last_good

    def stop(self, what, step, epoch=None):
        """Raises `NonFiniteTrainingError` for `what` (e.g. "the loss became nan") at `step`."""
        last_good = self.describe_last_good() if self.describe_last_good else "unknown"
        where = f"step {step}" if epoch is None else f"step {step} (epoch {epoch + 1})"
        message = (
            f"training stopped at {where}: {what}. No file holds a non-finite value; {last_good}. "
            "Lower the learning rate (or add warm-up), check the labels (0..num_classes-1, "
            "255 = void) and the inputs, or turn mixed precision off."
        )
        raise NonFiniteTrainingError(
            message, step=step, epoch=epoch, what=what, last_good=last_good
        )

    def check_variables(self, variables, step, epoch=None, what="weights"):
        """Stops (see `stop`) if one of `variables` holds a NaN or an infinity."""
        bad = nonfinite_variables(variables)
        if bad:
            self.stop(f"non-finite {what} in {describe_variables(bad)}", step, epoch)

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(loss)
        if not math.isfinite(loss):
            self.stop(
                f"the loss became {loss} (batch {batch} of the epoch)", global_step(self.model)
            )

    def on_epoch_end(self, epoch, logs=None):
        for key, value in sorted(_python_logs(logs).items()):
            if isinstance(value, float) and not math.isfinite(value):
                self.stop(f"{key} became {value}", global_step(self.model), epoch)


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the current learning rate (`lr`) and global step (`step`) to the epoch logs."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        optimizer = self.model.optimizer
        step = optimizer.iterations
        lr = optimizer.learning_rate
        logs["lr"] = float(keras.ops.convert_to_numpy(lr))
        logs["step"] = int(keras.ops.convert_to_numpy(step))


class StopAtStep(keras.callbacks.Callback):
    """Stops training once the optimizer has taken `total_steps` steps."""

    def __init__(self, total_steps):
        super().__init__()
        self.total_steps = int(total_steps)

    def on_train_batch_end(self, batch, logs=None):
        if global_step(self.model) >= self.total_steps:
            self.model.stop_training = True


class FaultPointHook(keras.callbacks.Callback):
    """Test hook of the kill tests: `fault_point("validation", step)` at every validation batch
    (the trainer adds it only when `RIGNET_FAULT_POINT` is set)."""

    def on_test_batch_end(self, batch, logs=None):
        fault_point("validation", global_step(self.model))


class ResumableBackup(keras.callbacks.Callback):
    """Backs up the whole training state every `save_freq` steps (and at `total_steps`), for an
    exact resume.

    The state is the training model's weights with the optimizer's (momentum buffers and step
    counter: the learning-rate schedule and random-ui draws are functions of the step), the seed
    generators' states (dropout), the metrics' states and the step's logs (the epoch's running
    mean loss), the number of epochs whose end (checkpoints, history row) is done, and what
    `extra_state` adds (the best monitored value). The data position is the step: the trainer
    rebuilds the input stream with the steps already taken skipped. Unlike
    `keras.callbacks.BackupAndRestore` (which restarts an interrupted epoch from its first
    batch), a resume here continues at the very step where the backup was taken.

    A backup at an epoch's last step is taken before that epoch's validation; once the epoch's
    end is done, `on_epoch_end` rewrites `state.json` with `epochs_done` counting it.

    Files: `backup_dir/state-<step>.weights.h5` and `backup_dir/state.json` naming the latest;
    both written atomically, the JSON last, and older states deleted afterwards.

    Args:
        backup_dir: folder of the backups.
        save_freq: int, steps between backups.
        guard: the `NaNGuard` that stops the run when the state is not finite.
        extra_state: callable returning a JSON-able dict saved alongside (e.g. the best value).
        keep: how many states to keep. Default 1.
        total_steps: also back up at this step (the last one), before its validation.
    """

    STATE_FILE = "state.json"

    def __init__(
        self, backup_dir, save_freq, guard=None, extra_state=None, keep=1, total_steps=None
    ):
        super().__init__()
        if not isinstance(save_freq, int) or save_freq < 1:
            raise ValueError(f"save_freq must be a positive int (steps); received {save_freq!r}")
        self.backup_dir = backup_dir
        self.save_freq = save_freq
        self.guard = guard
        self.extra_state = extra_state
        self.keep = keep
        self.total_steps = total_steps
        self.last_saved_step = None
        self.epochs_done = 0
        self.resume_metric_states = None

    @classmethod
    def read_state(cls, backup_dir):
        """The latest backup's metadata, or None."""
        state = read_json(os.path.join(backup_dir, cls.STATE_FILE))
        if state is None or not os.path.isfile(os.path.join(backup_dir, state["weights"])):
            return None
        return state

    @classmethod
    def restore(cls, model, backup_dir):
        """Loads the latest backup into `model` (built, optimizer built); returns its metadata
        or None if there is none."""
        state = cls.read_state(backup_dir)
        if state is None:
            return None
        weights = os.path.join(backup_dir, state["weights"])
        try:
            model.load_weights(weights)
        except Exception as error:  # noqa: BLE001  (h5py and Keras raise many kinds)
            reason = " ".join(str(error).split())[:200]
            raise ValueError(
                f"backup {weights} cannot be loaded ({reason}); restore it, or start the run "
                "afresh in another folder"
            ) from None
        restore_seed_states(model, state.get("seed_states"))
        step = global_step(model)
        if step != state["step"]:
            raise RuntimeError(
                f"backup {backup_dir} is inconsistent: state.json says step {state['step']}, "
                f"the weights file holds step {step}"
            )
        return state

    def describe(self):
        if self.last_saved_step is None:
            state = self.read_state(self.backup_dir)
            if state is None:
                return "none yet"
            self.last_saved_step = state["step"]
        return f"{self.backup_dir} at step {self.last_saved_step}"

    def on_epoch_begin(self, epoch, logs=None):
        # After Keras' reset of the metrics: a resumed epoch continues its running means.
        if self.resume_metric_states is not None:
            restore_metric_states(self.model, self.resume_metric_states)
            self.resume_metric_states = None

    def on_train_batch_end(self, batch, logs=None):
        step = global_step(self.model)
        if step % self.save_freq == 0 or step == self.total_steps:
            self.save(step, logs)
            fault_point("after_backup", step)
        fault_point("after_step", step)

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_done = epoch + 1
        step = global_step(self.model)
        if step != self.last_saved_step:
            return
        state = self.read_state(self.backup_dir)
        state.update(self._bookkeeping())
        atomic_write_json(os.path.join(self.backup_dir, self.STATE_FILE), state)

    def on_train_end(self, logs=None):
        step = global_step(self.model)
        if step != self.last_saved_step:
            self.save(step)

    def _bookkeeping(self):
        state = {"epochs_done": self.epochs_done}
        if self.extra_state is not None:
            state.update(self.extra_state())
        return state

    def save(self, step, logs=None):
        """Writes the state at `step` (refusing, through the guard, a non-finite one)."""
        if self.guard is not None:
            self.guard.check_variables(
                saved_variables(self.model), step, what="weights or optimizer state"
            )
        name = f"state-{step:09d}.weights.h5"
        atomic_save(
            self.model,
            os.path.join(self.backup_dir, name),
            before_replace=lambda: fault_point("backup_write", step),
        )
        state = {
            "step": step,
            "weights": name,
            "seed_states": seed_states(self.model),
            "metric_states": metric_states(self.model),
            "train_logs": _python_logs(logs),
            **self._bookkeeping(),
        }
        atomic_write_json(os.path.join(self.backup_dir, self.STATE_FILE), state)
        self.last_saved_step = step
        states = sorted(f for f in os.listdir(self.backup_dir) if _STATE_NAME.match(f))
        for old in states[: -self.keep]:
            if old != name:
                os.remove(os.path.join(self.backup_dir, old))


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

        atomic_save(self.network, os.path.join(self.directory, f"{stem}.weights.h5"), hook)
        if self.save_keras:
            atomic_save(self.network, os.path.join(self.directory, f"{stem}.keras"))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        step = global_step(self.model)
        if self.guard is not None:
            self.guard.check_variables(self.network.weights, step, epoch, what="network weights")
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
        _atomic_write_text(self.path, out.getvalue(), ".csv")

    @staticmethod
    def _format(value):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return str(value)
        return str(value) if isinstance(value, int) else repr(float(value))

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": str(epoch)}
        row.update({k: self._format(v) for k, v in _python_logs(logs).items()})
        rows = [r for r in self.rows() if int(r["epoch"]) < epoch]
        self._write([*rows, row])
        fault_point("after_history", row.get("step"))
