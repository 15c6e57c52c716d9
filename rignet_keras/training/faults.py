"""The kill tests' hook (tests/training/test_faults.py): a process that dies at a named moment.

`fault_point(name, step)` is called at the moments a run may be killed (after a step, after a
backup, while a checkpoint or backup is written, after a history row, in a validation batch);
it kills the process with SIGKILL when the environment variable `RIGNET_FAULT_POINT` is
`f"{name}:{step}"`. Unset, as it is outside those tests, it does nothing.
"""

import os
import signal

import keras

from rignet_keras.training.steps import global_step

FAULT_POINT_ENV = "RIGNET_FAULT_POINT"


def fault_point(name, step):
    """Kills this process with SIGKILL when `RIGNET_FAULT_POINT` is `f"{name}:{step}"`; else
    does nothing."""
    if os.environ.get(FAULT_POINT_ENV) == f"{name}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)


class FaultPointHook(keras.callbacks.Callback):
    """`fault_point("validation", step)` at every validation batch (the trainer adds it only
    when `RIGNET_FAULT_POINT` is set)."""

    def on_test_batch_end(self, batch, logs=None):
        fault_point("validation", global_step(self.model))
