"""`ResumableBackup`: the whole training state every `save_freq` steps, for an exact resume.

Files: `backup_dir/state-<step>.weights.h5` (the training model's weights with the optimizer's)
and `backup_dir/state.json` naming the latest (with the seed generators' and metrics' states,
the step's logs and the number of epochs whose end is done); both written atomically
(`checkpoints`), the JSON last, and older states deleted afterwards.
"""

import os

import keras

from rignet_keras.training.checkpoints import (
    BACKUP_STATE_FILE,
    BACKUP_WEIGHTS_NAME,
    atomic_save,
    atomic_write_json,
    read_json,
)
from rignet_keras.training.faults import fault_point
from rignet_keras.training.model_state import (
    metric_states,
    python_logs,
    restore_metric_states,
    restore_seed_states,
    saved_variables,
    seed_states,
)
from rignet_keras.training.steps import global_step


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

    STATE_FILE = BACKUP_STATE_FILE

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
            checked=self.guard is not None,
        )
        state = {
            "step": step,
            "weights": name,
            "seed_states": seed_states(self.model),
            "metric_states": metric_states(self.model),
            "train_logs": python_logs(logs),
            **self._bookkeeping(),
        }
        atomic_write_json(os.path.join(self.backup_dir, self.STATE_FILE), state)
        self.last_saved_step = step
        states = sorted(f for f in os.listdir(self.backup_dir) if BACKUP_WEIGHTS_NAME.match(f))
        for old in states[: -self.keep]:
            if old != name:
                os.remove(os.path.join(self.backup_dir, old))
