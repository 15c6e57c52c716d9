"""Callbacks of `Trainer`: atomic best/last checkpoints, an exact-resume backup, a NaN guard.

Every file is written to a temporary name in its folder and moved into place with `os.replace`,
so a run killed while writing leaves the previous file intact.
"""

import json
import math
import os
import tempfile

import keras
import numpy as np


def atomic_write_json(path, obj):
    """Writes `obj` as JSON to `path` atomically (temporary file, then `os.replace`)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_save(model, path):
    """Saves `model` to `path` (`.keras`: whole model; `.weights.h5`: weights) atomically."""
    path = os.fspath(path)
    if path.endswith(".weights.h5"):
        suffix = ".weights.h5"
    elif path.endswith(".keras"):
        suffix = ".keras"
    else:
        raise ValueError(f"path must end with .keras or .weights.h5; received {path!r}")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        if suffix == ".keras":
            model.save(tmp, overwrite=True)
        else:
            model.save_weights(tmp, overwrite=True)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_json(path, default=None):
    if not os.path.isfile(path):
        return default
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def weights_are_finite(model):
    """True if every weight of `model` is finite (a NaN step leaves NaN weights behind)."""
    return all(
        np.isfinite(w).all() for w in model.get_weights() if np.issubdtype(w.dtype, np.floating)
    )


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


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss, and says where the last good state is.

    Other callbacks consult `nan_detected` and do not save the spoiled weights. The trainer raises
    `NaNLossError` with `message` after `fit` returns.
    """

    def __init__(self, describe_last_good=None):
        super().__init__()
        self.nan_detected = False
        self.message = None
        self.describe_last_good = describe_last_good

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or self.nan_detected:
            return
        loss = float(loss)
        if math.isfinite(loss):
            return
        self.nan_detected = True
        self.model.stop_training = True
        step = global_step(self.model)
        last_good = self.describe_last_good() if self.describe_last_good else "none"
        self.message = (
            f"training stopped: the loss became {loss} at step {step} (batch {batch} of the "
            f"epoch). No checkpoint was written after it; the last good state is {last_good}. "
            "Lower the learning rate (or add warm-up), check the labels (0..num_classes-1, 255 = "
            "void), or turn mixed precision off, then resume from the backup."
        )
        print(f"\n{self.message}", flush=True)


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


class ResumableBackup(keras.callbacks.Callback):
    """Backs up the whole training state every `save_freq` steps, for an exact resume.

    The state is the training model's weights with the optimizer's (momentum buffers and step
    counter: the learning-rate schedule and random-ui draws are functions of the step), the seed
    generators' states (dropout), and the best monitored value. The data position is the step:
    the trainer rebuilds the input stream with the steps already taken skipped. Unlike
    `keras.callbacks.BackupAndRestore` (which restarts an interrupted epoch from its first
    batch), a resume here continues at the very step where the backup was taken.

    Files: `backup_dir/state-<step>.weights.h5` and `backup_dir/state.json` naming the latest;
    both written atomically, the JSON last, and older states deleted afterwards.

    Args:
        backup_dir: folder of the backups.
        save_freq: int, steps between backups.
        guard: the `NaNGuard`, so that no spoiled state is saved.
        extra_state: callable returning a JSON-able dict saved alongside (e.g. the best value).
        keep: how many states to keep. Default 1.
    """

    STATE_FILE = "state.json"

    def __init__(self, backup_dir, save_freq, guard=None, extra_state=None, keep=1):
        super().__init__()
        if not isinstance(save_freq, int) or save_freq < 1:
            raise ValueError(f"save_freq must be a positive int (steps); received {save_freq!r}")
        self.backup_dir = backup_dir
        self.save_freq = save_freq
        self.guard = guard
        self.extra_state = extra_state
        self.keep = keep
        self.last_saved_step = None

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
        model.load_weights(os.path.join(backup_dir, state["weights"]))
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
                return "none (no backup yet)"
            self.last_saved_step = state["step"]
        return f"{self.backup_dir} at step {self.last_saved_step} (resume to continue from it)"

    def on_train_batch_end(self, batch, logs=None):
        step = global_step(self.model)
        if step % self.save_freq == 0:
            self.save(step)

    def on_train_end(self, logs=None):
        step = global_step(self.model)
        if step != self.last_saved_step:
            self.save(step)

    def save(self, step):
        if self.guard is not None and self.guard.nan_detected:
            return
        if not weights_are_finite(self.model):
            return
        name = f"state-{step:09d}.weights.h5"
        atomic_save(self.model, os.path.join(self.backup_dir, name))
        state = {
            "step": step,
            "weights": name,
            "seed_states": seed_states(self.model),
        }
        if self.extra_state is not None:
            state.update(self.extra_state())
        atomic_write_json(os.path.join(self.backup_dir, self.STATE_FILE), state)
        self.last_saved_step = step
        states = sorted(
            f for f in os.listdir(self.backup_dir)
            if f.startswith("state-") and f.endswith(".weights.h5")
        )  # fmt: skip
        for old in states[: -self.keep]:
            if old != name:
                os.remove(os.path.join(self.backup_dir, old))


class BestAndLastCheckpoint(keras.callbacks.Callback):
    """Saves the network (not the training wrapper) as `last.keras` / `last.weights.h5` at every
    epoch end, and as `best.*` when the monitored value improves. Atomic; skipped after a NaN.

    Args:
        directory: folder of the checkpoints.
        network: the Keras model to save (the RIGNet).
        monitor: log key, e.g. "val_mIoU"; None saves only `last`.
        mode: "max" or "min".
        guard: the `NaNGuard`.
        best: the best value so far (restored on resume).
        save_keras: also write the `.keras` files (config + weights).
    """

    def __init__(self, directory, network, monitor="val_mIoU", mode="max", guard=None,
                 best=None, save_keras=True):  # fmt: skip
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
        self.save_keras = save_keras

    def _improved(self, value):
        if value is None or not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def _save(self, stem):
        atomic_save(self.network, os.path.join(self.directory, f"{stem}.weights.h5"))
        if self.save_keras:
            atomic_save(self.network, os.path.join(self.directory, f"{stem}.keras"))

    def on_epoch_end(self, epoch, logs=None):
        if self.guard is not None and self.guard.nan_detected:
            return
        logs = logs or {}
        step = global_step(self.model)
        self._save("last")
        info = {"last": {"step": step, "epoch": epoch + 1}}
        value = logs.get(self.monitor) if self.monitor else None
        value = None if value is None else float(value)
        if self._improved(value):
            self.best = value
            self.best_step = step
            self._save("best")
        info["monitor"] = self.monitor
        info["best"] = {"value": self.best, "step": self.best_step}
        atomic_write_json(os.path.join(self.directory, "checkpoints.json"), info)
