"""Non-finite values stop training: `NonFiniteTrainingError`, the checks of variables, and the
`NaNGuard` callback.

A NaN or an infinity in the training loss, in an epoch's logs (e.g. `val_loss`), or in a weight
or optimizer variable about to be saved stops the run with `NonFiniteTrainingError`, whose
one-line message names the step, what was not finite and the last good state. No file is written
from such a state (`checkpoints.atomic_save` refuses it too).
"""

import math

import keras

from rignet_keras.labels import IGNORE_LABEL
from rignet_keras.training.model_state import python_logs
from rignet_keras.training.steps import global_step


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


def nonfinite_variables(variables):
    """The paths of the floating-point `variables` that hold a NaN or an infinity."""
    floating = [v for v in variables if "float" in str(v.dtype)]
    if not floating:
        return []
    flags = keras.ops.convert_to_numpy(
        keras.ops.stack([keras.ops.all(keras.ops.isfinite(v)) for v in floating])
    )
    return [v.path for v, finite in zip(floating, flags, strict=True) if not finite]


def describe_variables(paths, limit=3):
    """The first `limit` variable paths, comma-separated, and how many more there are."""
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


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
            f"{IGNORE_LABEL} = void) and the inputs, or turn mixed precision off."
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
        for key, value in sorted(python_logs(logs).items()):
            if isinstance(value, float) and not math.isfinite(value):
                self.stop(f"{key} became {value}", global_step(self.model), epoch)
