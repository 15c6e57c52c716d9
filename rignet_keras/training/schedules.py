"""Learning-rate schedules: poly decay with linear warm-up (the field's VOC recipe)."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="rignet_keras")
class PolyWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Poly decay `lr = (base - end) * (1 - t / T) ** power + end`, with a linear warm-up.

    During the first `warmup_steps` steps the poly rate is multiplied by a factor that rises
    linearly from `warmup_start_factor` to 1 (as mmsegmentation does), so the rate is continuous
    at the end of the warm-up. The rate reaches `end_learning_rate` at `decay_steps` and stays.
    The step is the optimizer's `iterations`, so the schedule resumes exactly with the optimizer
    state.

    Args:
        base_learning_rate: float, e.g. 0.01 (or 0.007).
        decay_steps: int T, the total number of training steps.
        power: float, default 0.9.
        warmup_steps: int, default 0 (no warm-up).
        warmup_start_factor: float in [0, 1], default 0.1.
        end_learning_rate: float, default 0.

    Example:
    >>> schedule = PolyWarmup(0.01, decay_steps=100, warmup_steps=10)
    >>> round(float(schedule(0)), 6), round(float(schedule(50)), 6), float(schedule(100))
    (0.001, 0.005359, 0.0)
    """

    def __init__(
        self,
        base_learning_rate,
        decay_steps,
        power=0.9,
        warmup_steps=0,
        warmup_start_factor=0.1,
        end_learning_rate=0.0,
    ):
        if decay_steps < 1:
            raise ValueError(f"decay_steps must be >= 1; received {decay_steps!r}")
        if not 0 <= warmup_steps < decay_steps:
            raise ValueError(
                f"warmup_steps must be in [0, decay_steps={decay_steps}); received {warmup_steps!r}"
            )
        self.base_learning_rate = float(base_learning_rate)
        self.decay_steps = int(decay_steps)
        self.power = float(power)
        self.warmup_steps = int(warmup_steps)
        self.warmup_start_factor = float(warmup_start_factor)
        self.end_learning_rate = float(end_learning_rate)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        base = self.base_learning_rate
        end = self.end_learning_rate
        progress = tf.minimum(step, float(self.decay_steps)) / float(self.decay_steps)
        poly = (base - end) * tf.pow(1.0 - progress, self.power) + end
        if self.warmup_steps == 0:
            return poly
        ramp = step / float(self.warmup_steps)
        factor = self.warmup_start_factor + (1.0 - self.warmup_start_factor) * ramp
        return tf.where(step < self.warmup_steps, poly * factor, poly)

    def get_config(self):
        return {
            "base_learning_rate": self.base_learning_rate,
            "decay_steps": self.decay_steps,
            "power": self.power,
            "warmup_steps": self.warmup_steps,
            "warmup_start_factor": self.warmup_start_factor,
            "end_learning_rate": self.end_learning_rate,
        }
