"""Batch-norm moving statistics per pass, for the blocks that an unrolled network runs repeatedly.

A block that runs in several iterations shares its weights between them, its batch norms' gamma
and beta included. Its activations do not share a distribution: the first pass is ungated, the
later ones see gated inputs. `PassStatistics` gives the later passes moving means and variances
of their own, so that every pass is normalised with its batch's statistics in training and with
statistics of the same pass at inference (after recurrent batch normalisation, Cooijmans et al.
2017, which keeps statistics per time step and shares the affine parameters).
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
    """Moving statistics for passes 2..`num_sets` of every batch norm of the repeated blocks.

    Set 1 is the batch norms' own `moving_mean` and `moving_variance`: the first pass uses them,
    so ImageNet weights load as usual and one iteration stays exactly the feed-forward network.
    Sets 2..`num_sets` are variables of this layer, one pair per batch norm, created by `track`
    and initialised from the norm's own statistics; pass t uses set `min(t, num_sets)`.

    Within `use(norms, pass_index)`, each norm reads (and in training updates) the statistics of
    that pass, so the same code path serves training, inference and every export: the set a pass
    uses is fixed when the graph is traced.

    Args:
        num_sets: int >= 2, the number of statistics sets, the norms' own included.

    Example:
    >>> stats = PassStatistics(num_sets=2)
    >>> norm = keras.layers.BatchNormalization(name="bn")
    >>> norm.build((None, 8, 8, 4))
    >>> stats.track([("block4_bn", norm)])
    >>> with stats.use([norm], pass_index=2):
    ...     y = norm(keras.ops.ones((2, 8, 8, 4)), training=True)
    >>> [v.name for v in stats.variables]
    ['block4_bn_pass2_moving_mean', 'block4_bn_pass2_moving_variance']
    """

    def __init__(self, num_sets, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_sets, bool) or not isinstance(num_sets, int) or num_sets < 2:
            raise ValueError(f"num_sets must be an int >= 2; received {num_sets!r}")
        self.num_sets = num_sets
        self._sets = {}  # id(norm) -> [(mean, variance) for sets 2..num_sets]

    def track(self, named_norms):
        """Creates the statistics of sets 2..num_sets for built batch norms.

        Args:
            named_norms: [(name, BatchNormalization)]: the name prefixes the variables' names
                ("block4_conv4_block1_1_bn"), which are part of the checkpoint.
        """
        for name, norm in named_norms:
            if id(norm) in self._sets:
                continue
            if norm.moving_mean is None:
                raise ValueError(f"batch norm {norm.name!r} must be built before it is tracked")
            pairs = []
            for s in range(2, self.num_sets + 1):
                pair = []
                for kind, own in (("mean", norm.moving_mean), ("variance", norm.moving_variance)):
                    variable = self.add_weight(
                        shape=own.shape,
                        name=f"{name}_pass{s}_moving_{kind}",
                        initializer="zeros",
                        trainable=False,
                        autocast=False,
                    )
                    variable.assign(own)
                    pair.append(variable)
                pairs.append(tuple(pair))
            self._sets[id(norm)] = pairs
        self.built = True

    def set_index(self, pass_index):
        """The statistics set (1-based) that pass `pass_index` (1-based) uses."""
        return min(pass_index, self.num_sets)

    @contextlib.contextmanager
    def use(self, norms, pass_index):
        """Within the block, `norms` read and update the statistics of pass `pass_index`."""
        s = self.set_index(pass_index)
        if s == 1:
            yield
            return
        untracked = [norm.name for norm in norms if id(norm) not in self._sets]
        if untracked:
            raise ValueError(f"batch norms {untracked} have no statistics here; track them first")
        own = [(norm, norm.moving_mean, norm.moving_variance) for norm in norms]
        # object.__setattr__: Keras' attribute tracking must not adopt the swapped variables,
        # or the norms would save them as their own.
        try:
            for norm in norms:
                mean, variance = self._sets[id(norm)][s - 2]
                object.__setattr__(norm, "moving_mean", mean)
                object.__setattr__(norm, "moving_variance", variance)
            yield
        finally:
            for norm, mean, variance in own:
                object.__setattr__(norm, "moving_mean", mean)
                object.__setattr__(norm, "moving_variance", variance)

    def get_config(self):
        return {**super().get_config(), "num_sets": self.num_sets}
