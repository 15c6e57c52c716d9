"""The recipes' optimizer: SGD with momentum on a poly schedule with warm-up."""

import keras

from rignet_keras.training.schedules import PolyWarmup


def poly_sgd(config):
    """SGD (momentum, Nesterov, clipnorm) on `PolyWarmup`, as a `TrainConfig` sets them."""
    schedule = PolyWarmup(
        config.learning_rate,
        config.steps,
        power=config.poly_power,
        warmup_steps=config.warmup_steps,
        warmup_start_factor=config.warmup_start_factor,
    )
    return keras.optimizers.SGD(
        learning_rate=schedule,
        momentum=config.momentum,
        nesterov=config.nesterov,
        clipnorm=config.clipnorm,
    )
