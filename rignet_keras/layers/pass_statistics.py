"""Batch-norm moving statistics of the gated passes, for the blocks that RIGNet runs repeatedly.

A block that runs in several iterations shares its weights between them, its batch norms' gamma
and beta included. Its activations do not share one distribution: the first pass is ungated, the
later ones see gated inputs. `PassStatistics` gives the gated passes moving means and variances
of their own, so that every pass is normalised with its batch's statistics in training and with
statistics gathered on passes of its kind at inference (after recurrent batch normalisation,
Cooijmans et al. 2017, which keeps statistics per time step and shares the affine parameters).
"""

import contextlib

import keras
from keras import layers


def batch_norms(block):
    """The `BatchNormalization` layers inside `block` (nested ones included), in a stable order."""
    return [
        layer
        for layer in block._flatten_layers(include_self=False)
        if isinstance(layer, layers.BatchNormalization)
    ]


@keras.saving.register_keras_serializable(package="rignet_keras")
class PassStatistics(layers.Layer):
    """A second set of moving statistics, for the gated passes, for every tracked batch norm.

    The first (ungated) pass uses the batch norms' own `moving_mean` and `moving_variance`, so
    ImageNet weights load as usual and one iteration stays exactly the feed-forward network. The
    gated passes use this layer's variables, one pair per norm, created by `track` and
    initialised from the norm's own statistics.

    Within `use(norms)`, each norm reads (and in training updates) the gated passes' statistics.
    The swap happens while a graph is traced, so training, inference and every export take the
    same code path, and each pass's graph holds the statistics of its kind.

    Example:
    >>> stats = PassStatistics()
    >>> norm = keras.layers.BatchNormalization(name="bn")
    >>> norm.build((None, 8, 8, 4))
    >>> stats.track([("block4_bn", norm)])
    >>> with stats.use([norm]):
    ...     y = norm(keras.ops.ones((2, 8, 8, 4)), training=True)
    >>> [v.name for v in stats.variables]
    ['block4_bn_gated_moving_mean', 'block4_bn_gated_moving_variance']
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # id(norm) -> (mean, variance) of the gated passes. Set past attribute tracking: the
        # variables are tracked by add_weight already, and TensorFlow's tracking refuses int keys.
        object.__setattr__(self, "_gated", {})

    def track(self, named_norms):
        """Creates the gated passes' statistics of built batch norms.

        Args:
            named_norms: [(name, BatchNormalization)]: the name prefixes the variables' names
                ("block4_conv4_block1_1_bn_gated_moving_mean"), which are part of the checkpoint.
        """
        for name, norm in named_norms:
            if id(norm) in self._gated:
                continue
            if norm.moving_mean is None:
                raise ValueError(f"batch norm {norm.name!r} must be built before it is tracked")
            pair = []
            for kind, own in (("mean", norm.moving_mean), ("variance", norm.moving_variance)):
                variable = self.add_weight(
                    shape=own.shape,
                    name=f"{name}_gated_moving_{kind}",
                    initializer="zeros",
                    trainable=False,
                    autocast=False,
                )
                variable.assign(own)
                pair.append(variable)
            self._gated[id(norm)] = tuple(pair)
        self.built = True

    def statistics(self, norm):
        """The (moving_mean, moving_variance) variables of `norm`'s gated passes."""
        if id(norm) not in self._gated:
            raise ValueError(f"batch norm {norm.name!r} has no statistics here; track it first")
        return self._gated[id(norm)]

    @contextlib.contextmanager
    def use(self, norms):
        """Within the block, `norms` read and update the gated passes' statistics."""
        swapped = [(norm, self.statistics(norm)) for norm in norms]
        own = [(norm, (norm.moving_mean, norm.moving_variance)) for norm in norms]
        # object.__setattr__: Keras' attribute tracking must not adopt the swapped variables,
        # or the norms would save them as their own.
        try:
            for norm, (mean, variance) in swapped:
                object.__setattr__(norm, "moving_mean", mean)
                object.__setattr__(norm, "moving_variance", variance)
            yield
        finally:
            for norm, (mean, variance) in own:
                object.__setattr__(norm, "moving_mean", mean)
                object.__setattr__(norm, "moving_variance", variance)
