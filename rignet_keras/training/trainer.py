"""`Trainer`: builds a RIGNet under a `tf.distribute` strategy and trains it with `fit`.

The run's folder::

    output_dir/
      config.json             the training configuration (and what the caller adds)
      history.csv             one row per epoch: loss, val_loss, val_mIoU, lr, step
      logs/                   TensorBoard
      checkpoints/            best.keras, best.weights.h5, last.keras, last.weights.h5,
                              checkpoints.json (steps and monitored values)
      backup/                 state-<step>.weights.h5 + state.json: the exact-resume state

An "epoch" here is `steps_per_epoch` steps (the logging, validation and checkpoint period), not a
pass over the data: training is measured in steps, as the field's recipes are.

A run killed at any moment and resumed ends as the uninterrupted run: the same weights, history
rows (each written once), checkpoints and best choice. A NaN or an infinity in the loss, in an
epoch's validation logs or in a weight about to be saved stops the run with
`NonFiniteTrainingError`; no file is written from such a state. See docs/TRAINING.md.
"""

import dataclasses
import os
import shutil
import sys
import time

import keras
import tensorflow as tf

from rignet_keras.training.backup import ResumableBackup
from rignet_keras.training.checkpoints import (
    BestAndLastCheckpoint,
    atomic_write_json,
    read_json,
    remove_stale_files,
)
from rignet_keras.training.determinism import require_determinism
from rignet_keras.training.faults import FAULT_POINT_ENV, FaultPointHook
from rignet_keras.training.history import EpochHistory, read_history
from rignet_keras.training.nan_guard import NaNGuard, NonFiniteTrainingError
from rignet_keras.training.optimizer import poly_sgd
from rignet_keras.training.steps import LearningRateLogger, StopAtStep, global_step
from rignet_keras.training.strategy import (
    build_strategy,
    dtype_policy_scope,
    mixed_precision_policy,
    worker_dir,
)
from rignet_keras.training.task import (
    TrainingModel,
    set_batch_norm_momentum,
)


def tensorboard_available():
    """True if the `tensorboard` package (which `tf.summary` needs) is installed."""
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


# The former name of `NonFiniteTrainingError` (which a non-finite loss raised), kept for callers.
NaNLossError = NonFiniteTrainingError


@dataclasses.dataclass
class TrainResult:
    """What `Trainer.fit` did."""

    output_dir: str
    start_step: int
    final_step: int
    history: dict
    best_value: float | None
    best_checkpoint: str | None
    last_checkpoint: str | None
    wall_time_s: float
    network: object = None

    def summary(self):
        best = "n/a" if self.best_value is None else f"{self.best_value:.4f}"
        return (
            f"trained steps {self.start_step}..{self.final_step} in {self.wall_time_s:.0f} s; "
            f"best {best}; checkpoints in {os.path.dirname(self.last_checkpoint or '')}"
        )


class Trainer:
    """Trains a segmentation network (a RIGNet) with Keras `fit` under `tf.distribute`.

    Args:
        config: `TrainConfig`.
        output_dir: the run's folder (see the module docstring).
        strategy: a `tf.distribute.Strategy`; None builds one from `config.strategy`.

    Example:
    >>> trainer = Trainer(TrainConfig(steps=100, steps_per_epoch=50, batch_size=4), "runs/a")
    >>> trainer.build(lambda: RIGNet(21, backbone="resnet18"), input_shape=(None, 96, 96, 3))
    >>> result = trainer.fit(lambda skip: make_train_dataset(skip), val_data=val_dataset)
    """

    def __init__(self, config, output_dir, strategy=None):
        self.config = config
        self.output_dir = os.fspath(output_dir)
        if config.deterministic:  # before the strategy starts TensorFlow's runtime
            require_determinism()
        self.strategy = strategy if strategy is not None else build_strategy(config.strategy)
        self.write_dir = worker_dir(self.output_dir, self.strategy)
        self.policy = mixed_precision_policy(config.mixed_precision)
        self.task = None
        self.network = None

    @property
    def checkpoint_dir(self):
        return os.path.join(self.write_dir, "checkpoints")

    @property
    def backup_dir(self):
        return os.path.join(self.write_dir, "backup")

    def make_optimizer(self):
        """The recipes' optimizer for this configuration (`optimizer.poly_sgd`)."""
        return poly_sgd(self.config)

    def build(self, model_fn, input_shape):
        """Builds the network (`model_fn()`, under the strategy's scope and dtype policy), wraps
        it in a `TrainingModel`, compiles it and builds the optimizer's state.

        Args:
            model_fn: callable returning the network (e.g. `lambda: RIGNet(...)`).
            input_shape: (None, h, w, 3) to build the variables with.

        Returns:
            the `TrainingModel`.
        """
        c = self.config
        keras.utils.set_random_seed(c.seed)
        with dtype_policy_scope(self.policy), self.strategy.scope():
            network = model_fn()
            if c.batch_norm_momentum is not None:
                set_batch_norm_momentum(network, c.batch_norm_momentum)
            if not network.built:
                network.build(tuple(input_shape))
            task = TrainingModel(
                network,
                train_iterations=c.train_iterations,
                iteration_loss_weights=c.iteration_loss_weights,
                backbone_lr_multiplier=c.backbone_lr_multiplier,
                weight_decay=c.weight_decay,
                loss_normalization=c.loss_normalization,
                ignore_label=c.ignore_label,
                seed=c.seed,
                recompute=c.recompute,
                random_ui_method=c.random_ui_method,
            )
            task.build(tuple(input_shape))
            task.compile(
                optimizer=self.make_optimizer(),
                jit_compile=c.jit_compile,
                steps_per_execution=c.steps_per_execution,
            )
            task.optimizer.build(task.trainable_variables)
        self.task, self.network = task, network
        return task

    # ----------------------------------------------------------------------------------------

    def _stream(self, train_data, skip_batches):
        if callable(train_data) and not isinstance(train_data, tf.data.Dataset):
            return train_data(skip_batches)
        ds = train_data.repeat()
        return ds.skip(skip_batches) if skip_batches else ds

    @property
    def history_path(self):
        return os.path.join(self.write_dir, "history.csv")

    def epoch_end_step(self, epoch):
        """The global step at which `epoch` (0-based) ends: a multiple of `steps_per_epoch`, or
        `steps` for a last, shorter epoch."""
        return min((epoch + 1) * self.config.steps_per_epoch, self.config.steps)

    def _callbacks(self, epoch_end, stop, extra):
        c = self.config
        guard, lr_logger, *rest = epoch_end
        callbacks = [guard, lr_logger, stop, *rest]
        if c.tensorboard and tensorboard_available():
            callbacks.append(
                keras.callbacks.TensorBoard(
                    os.path.join(self.write_dir, "logs"), update_freq="epoch", write_graph=False
                )
            )
        if os.environ.get(FAULT_POINT_ENV):
            callbacks.append(FaultPointHook())
        return callbacks + list(extra or [])

    def _redo_epoch_end(self, epoch, train_logs, val_data, epoch_end):
        """Runs the end of `epoch` as `fit` runs it, for a backup taken at the epoch's last step
        before its end was done: the validation (if `validation_freq` asks for one at this
        epoch), then the epoch-end callbacks in their order. TensorBoard and the caller's
        callbacks do not see this epoch."""
        logs = dict(train_logs)
        if val_data is not None and (epoch + 1) % self.config.validation_freq == 0:
            hooks = [FaultPointHook()] if os.environ.get(FAULT_POINT_ENV) else []
            val_logs = self.task.evaluate(val_data, verbose=0, return_dict=True, callbacks=hooks)
            logs.update({f"val_{name}": value for name, value in val_logs.items()})
        for callback in epoch_end:
            callback.set_model(self.task)
            callback.on_epoch_end(epoch, logs)

    def fit(self, train_data, val_data=None, resume=None, callbacks=None, run_info=None):
        """Trains for `config.steps` steps (or what remains of them after a resume).

        Files a killed run left half-written (temporary files, a backup without its
        `state.json`) are deleted first. A resume restores the backup and redoes, in order, what
        the uninterrupted run did after it: the end of the backup's epoch if the backup was taken
        at its last step and that end was not done (validation, checkpoints, history row), the
        rest of an interrupted epoch (its mean loss continues from the backup), then the
        remaining epochs.

        Args:
            train_data: a `tf.data.Dataset` of (images, masks) batches with the GLOBAL batch size
                (repeated and skipped here), or a callable `skip_batches -> Dataset` yielding an
                endless stream that starts after `skip_batches` batches (e.g.
                `rignet_keras.data.build_dataset(..., repeat=True, skip_batches=n)`). For an
                exact resume its order must be deterministic (a seed).
            val_data: a finite `tf.data.Dataset` for validation, or None.
            resume: None (default) continues from `output_dir/backup` if a backup is there;
                True asks for that backup, and says so on stderr when there is none (training
                then starts at step 0); False starts afresh (and removes an old backup and
                history).
            callbacks: more Keras callbacks.
            run_info: a JSON-able dict saved into config.json (model, data, ...).

        Returns:
            `TrainResult`.

        Raises:
            NonFiniteTrainingError: the loss, an epoch's validation logs or a weight about to be
                saved held a NaN or an infinity (the one-line message names the step and the last
                good checkpoint and backup; nothing was saved from that state).
        """
        if self.task is None:
            raise ValueError("call Trainer.build(model_fn, input_shape) before fit()")
        c = self.config
        task = self.task
        os.makedirs(self.write_dir, exist_ok=True)
        t0 = time.time()
        for folder in (self.write_dir, self.checkpoint_dir, self.backup_dir):
            removed = remove_stale_files(folder)
            if removed:
                print(f"Removed what an interrupted run left in {folder}: {removed}", flush=True)
        history = EpochHistory(self.history_path)
        state = None
        if resume is not False:
            state = ResumableBackup.restore(task, self.backup_dir)
            if state is None and resume:  # asked for, and nothing to resume: say so
                print(
                    f"note: no backup to resume in {self.backup_dir}; training starts at step 0",
                    file=sys.stderr,
                    flush=True,
                )
        elif os.path.isdir(self.backup_dir):  # a fresh run: forget an old run's backup
            shutil.rmtree(self.backup_dir)
        if state is not None and state.get("steps_per_epoch") not in (None, c.steps_per_epoch):
            raise ValueError(
                f"the backup in {self.backup_dir} was made with steps_per_epoch="
                f"{state['steps_per_epoch']}; resume with the same value (received "
                f"{c.steps_per_epoch})"
            )
        spe = c.steps_per_epoch
        start_step = global_step(task)
        # Backups made before `epochs_done` was recorded were taken after their epoch's end.
        epochs_done = 0 if state is None else state.get("epochs_done", start_step // spe)
        history.truncate(epochs_done)  # the rows of the epochs this run (re)does go
        pending_end = state is not None and (
            epochs_done < c.num_epochs and start_step == self.epoch_end_step(epochs_done)
        )
        if state is not None:
            print(f"Resuming from step {start_step} ({self.backup_dir})", flush=True)
        config_record = {"train": c.to_dict(), **(run_info or {})}
        atomic_write_json(os.path.join(self.write_dir, "config.json"), config_record)

        previous = read_json(os.path.join(self.checkpoint_dir, "checkpoints.json"), {})
        monitor = c.monitor if val_data is not None else None
        guard = NaNGuard()
        checkpoint = BestAndLastCheckpoint(
            self.checkpoint_dir,
            self.network,
            monitor=monitor,
            mode="min" if monitor and monitor.endswith("loss") else "max",
            guard=guard,
        )
        if state is not None:  # the best so far as of the backup's step
            best = previous.get("best") or {}
            checkpoint.best = state.get("best", best.get("value"))
            checkpoint.best_step = state.get("best_step", best.get("step"))
            last_step = (previous.get("last") or {}).get("step")
            checkpoint.last_step = last_step if last_step and last_step <= start_step else None

        def extra_state():
            return {
                "steps_per_epoch": spe,
                "best": checkpoint.best,
                "best_step": checkpoint.best_step,
            }

        backup = ResumableBackup(
            self.backup_dir,
            c.save_freq or spe,
            guard=guard,
            extra_state=extra_state,
            total_steps=c.steps,
        )
        backup.epochs_done = epochs_done
        backup.last_saved_step = start_step if state is not None else None
        if state is not None and not pending_end and start_step % spe:
            backup.resume_metric_states = state.get("metric_states")
        guard.describe_last_good = lambda: (
            f"last good checkpoint: {checkpoint.describe()}; latest backup: {backup.describe()}"
        )
        epoch_end = [guard, LearningRateLogger(), checkpoint, history, backup]
        all_callbacks = self._callbacks(epoch_end, StopAtStep(c.steps), callbacks)

        fit_kwargs = dict(
            validation_data=val_data,
            validation_freq=c.validation_freq,
            callbacks=all_callbacks,
            verbose=c.verbose,
            shuffle=False,
        )
        step = start_step
        if pending_end:
            print(f"Redoing the end of epoch {epochs_done + 1} (step {step})", flush=True)
            self._redo_epoch_end(epochs_done, state.get("train_logs") or {}, val_data, epoch_end)
        elif step < c.steps and step % spe:
            # Finish the interrupted epoch first, from the exact step of the backup.
            epoch = step // spe
            task.fit(
                self._stream(train_data, step),
                initial_epoch=epoch,
                epochs=epoch + 1,
                steps_per_epoch=min(spe - step % spe, c.steps - step),
                **fit_kwargs,
            )
            step = global_step(task)
        if step < c.steps:
            task.fit(
                self._stream(train_data, step),
                initial_epoch=step // spe,
                epochs=c.num_epochs,
                steps_per_epoch=spe,
                **fit_kwargs,
            )
        final_step = global_step(task)
        best = os.path.join(self.checkpoint_dir, "best.keras")
        last = os.path.join(self.checkpoint_dir, "last.keras")
        return TrainResult(
            output_dir=self.write_dir,
            start_step=start_step,
            final_step=final_step,
            history=read_history(self.history_path),
            best_value=checkpoint.best,
            best_checkpoint=best if os.path.isfile(best) else None,
            last_checkpoint=last if os.path.isfile(last) else None,
            wall_time_s=time.time() - t0,
            network=self.network,
        )


def train(
    model_fn,
    train_data,
    config,
    output_dir,
    *,
    input_shape,
    val_data=None,
    resume=None,
    strategy=None,
    callbacks=None,
    run_info=None,
):
    """Builds and trains in one call: `Trainer(config, output_dir).build(...)` then `.fit(...)`.

    Returns:
        `TrainResult` (its `network` is the trained model).
    """
    trainer = Trainer(config, output_dir, strategy=strategy)
    trainer.build(model_fn, input_shape)
    return trainer.fit(train_data, val_data, resume=resume, callbacks=callbacks, run_info=run_info)
