"""The optimizer's step count during `fit`: read (`global_step`), logged (`LearningRateLogger`)
and where training stops (`StopAtStep`).

Training is measured in optimizer steps: the learning-rate schedule, the random-ui draws, the
backups and the data position are all functions of `model.optimizer.iterations`.
"""

import keras


def global_step(model):
    """The number of optimizer steps `model` (compiled, optimizer built) has taken, as an int."""
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


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
