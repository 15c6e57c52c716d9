"""Batch-norm moving statistics of the gated passes, for the blocks that RIGNet runs repeatedly.

A block that runs in several iterations shares its weights between them, its batch norms' gamma
and beta included. Its activations do not share one distribution: the first pass is ungated, the
later ones see gated inputs. `PassStatistics` gives the gated passes moving means and variances
of their own, so that every pass is normalised with its batch's statistics in training and with
statistics gathered on passes of its kind at inference (after recurrent batch normalisation,
Cooijmans et al. 2017, which keeps statistics per time step and shares the affine parameters).

Inference graphs for a converter (`PassStatistics.one_kernel_copy`): a converter folds every
inference batch norm into the convolution before it, so a gated pass normalised with statistics
of its own would store each of its block's kernels a second time (folded with the other
statistics). Within `one_kernel_copy`, a gated pass's batch norm computes as the first pass's
(folded into the one kernel copy) followed by a per-channel correction to the gated passes'
statistics, written as a 1x1 depthwise convolution, which the converters keep as an operator of
its own (a per-channel multiply would be folded back into a kernel copy):

    y_gated = s * y_first + t,  s = sqrt((v_first + eps) / (v_gated + eps)),
    t = (beta - m_gated * a_gated) - s * (beta - m_first * a_first),  a = gamma / sqrt(v + eps)
"""

import contextlib
import threading

import keras
from keras import layers, ops


def batch_norms(layer):
    """The `BatchNormalization` layers in `layer`, each once, in a stable order.

    The one batch-norm walker of the project: `layer` is a layer, a block, a model (its blocks,
    gates and nested layers are walked) or a list of them; a batch norm itself counts.
    """
    roots = layer if isinstance(layer, (list, tuple)) else [layer]
    found, seen = [], set()
    for root in roots:
        for sublayer in root._flatten_layers(include_self=True):
            if isinstance(sublayer, layers.BatchNormalization) and id(sublayer) not in seen:
                seen.add(id(sublayer))
                found.append(sublayer)
    return found


class _Tracked:
    """One batch norm: its own statistics, the gated passes', and how many calls swapped them."""

    def __init__(self, norm, gated_mean, gated_variance):
        self.norm = norm
        self.own = (norm.moving_mean, norm.moving_variance)
        self.gated = (gated_mean, gated_variance)
        self.depth = 0


def _correctable(norm):
    """Whether `norm` normalises the channels of NHWC feature maps: those whose gated
    statistics `one_kernel_copy` applies as a correction."""
    return norm.axis in (-1, 3)


def gated_correction(norm, own, gated):
    """(scale, shift), float32 (C,): the gated passes' batch norm as `scale * y + shift` of the
    first pass's output `y` (see the module docstring)."""
    eps = norm.epsilon
    (mean_1, variance_1), (mean_2, variance_2) = [
        (ops.cast(m, "float32"), ops.cast(v, "float32")) for m, v in (own, gated)
    ]
    gamma = ops.cast(norm.gamma, "float32") if norm.scale else 1.0
    beta = ops.cast(norm.beta, "float32") if norm.center else 0.0
    scale = ops.sqrt((variance_1 + eps) / (variance_2 + eps))
    a_1, a_2 = gamma / ops.sqrt(variance_1 + eps), gamma / ops.sqrt(variance_2 + eps)
    shift = (beta - mean_2 * a_2) - scale * (beta - mean_1 * a_1)
    return scale, shift


def _corrected_call(entry):
    """A `call` for `entry.norm` in a gated pass of an inference graph: the first pass's batch
    norm, then the per-channel correction as a 1x1 depthwise convolution."""
    norm = entry.norm

    def call(inputs, training=None, mask=None):
        if training:
            raise ValueError(
                f"batch norm {norm.name!r}: one_kernel_copy is for inference graphs only"
            )
        outputs = type(norm).call(norm, inputs, training=False, mask=mask)
        scale, shift = gated_correction(norm, entry.own, entry.gated)
        dtype = outputs.dtype
        if len(outputs.shape) == 4:
            kernel = ops.cast(ops.reshape(scale, (1, 1, -1, 1)), dtype)
            outputs = ops.depthwise_conv(outputs, kernel, strides=1, padding="valid")
        else:
            outputs = outputs * ops.cast(scale, dtype)
        return outputs + ops.cast(shift, dtype)

    return call


def _copy_of(variable):
    """An initializer that returns a copy of `variable`'s value when the new variable is created
    (which can be deferred, e.g. when the model is built inside a stateless scope). A copy, not
    the value itself: JAX would otherwise hold both variables in one buffer, which its training
    step refuses to donate twice."""
    return lambda shape, dtype=None: ops.copy(ops.cast(ops.convert_to_tensor(variable), dtype))


def _outside_traced_functions():
    """`tf.init_scope()` under the TensorFlow backend, else a no-op context.

    A model first built inside a `tf.function` (as `count_macs` builds one) creates its
    variables while the function is traced, and TensorFlow lifts an initial value out of the
    function only if it reads no captured tensor; a copy of another variable does read one.
    Created outside the function, the copy is an ordinary eager value."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.init_scope()
    return contextlib.nullcontext()


@keras.saving.register_keras_serializable(package="rignet_keras")
class PassStatistics(layers.Layer):
    """A second set of moving statistics, for the gated passes, for every tracked batch norm.

    The first (ungated) pass uses the batch norms' own `moving_mean` and `moving_variance`, so
    ImageNet weights load as usual and one iteration stays exactly the feed-forward network. The
    gated passes use this layer's variables, one pair per norm, created by `track` and
    initialised from the norm's own statistics.

    Within `use(norms)`, each norm reads (and in training updates) the gated passes' statistics.
    The swap happens while a graph is traced, so training, inference and every export take the
    same code path, and each pass's graph holds the statistics of its kind. Replicas of
    `tf.distribute.MirroredStrategy` trace in threads that take turns inside a block (at the
    all-reduce of a synchronised batch norm); they run the same block at the same time, so
    nested entries are counted and the norms' own statistics come back when the last one leaves.

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
        # id(norm) -> _Tracked, and a lock over the swaps. Set past attribute tracking: the
        # variables are tracked by add_weight already, and TensorFlow's tracking refuses int
        # keys and locks.
        object.__setattr__(self, "_tracked", {})
        object.__setattr__(self, "_swap_lock", threading.Lock())
        object.__setattr__(self, "_one_kernel_copy", False)

    def track(self, named_norms):
        """Creates the gated passes' statistics of built batch norms.

        Args:
            named_norms: [(name, BatchNormalization)]: the name prefixes the variables' names
                ("block4_conv4_block1_1_bn_gated_moving_mean"), which are part of the checkpoint.

        Raises:
            ValueError: a norm is not built, or uses batch renormalisation (whose extra
                statistics this layer does not keep).
        """
        for name, norm in named_norms:
            if id(norm) in self._tracked:
                continue
            if norm.moving_mean is None:
                raise ValueError(f"batch norm {norm.name!r} must be built before it is tracked")
            if norm.renorm:
                raise ValueError(
                    f"batch norm {norm.name!r} uses renorm=True; the gated passes' statistics "
                    "support plain batch normalisation only"
                )
            statistics = (("mean", norm.moving_mean), ("variance", norm.moving_variance))
            with _outside_traced_functions():
                pair = [
                    self.add_weight(
                        shape=own.shape,
                        name=f"{name}_gated_moving_{kind}",
                        initializer=_copy_of(own),
                        dtype=own.dtype,
                        trainable=False,
                        autocast=False,
                    )
                    for kind, own in statistics
                ]
            self._tracked[id(norm)] = _Tracked(norm, *pair)
        self.built = True

    def _entry(self, norm):
        if id(norm) not in self._tracked:
            raise ValueError(f"batch norm {norm.name!r} has no statistics here; track it first")
        return self._tracked[id(norm)]

    def statistics(self, norm):
        """The (moving_mean, moving_variance) variables of `norm`'s gated passes."""
        return self._entry(norm).gated

    def _point(self, entry, pair):
        # object.__setattr__: Keras' attribute tracking must not adopt the swapped variables,
        # or the norms would save them as their own.
        if self._one_kernel_copy and _correctable(entry.norm):
            if pair is entry.gated:
                object.__setattr__(entry.norm, "call", _corrected_call(entry))
            elif "call" in vars(entry.norm):
                object.__delattr__(entry.norm, "call")
            return
        object.__setattr__(entry.norm, "moving_mean", pair[0])
        object.__setattr__(entry.norm, "moving_variance", pair[1])

    @contextlib.contextmanager
    def one_kernel_copy(self):
        """Within the context, the gated passes' batch norms trace as the first pass's plus a
        per-channel correction (see the module docstring): an inference graph then folds into
        one copy of each kernel. For tracing an export; a training call inside raises."""
        if any(entry.depth for entry in self._tracked.values()):
            raise RuntimeError("one_kernel_copy cannot open while a gated pass is running")
        object.__setattr__(self, "_one_kernel_copy", True)
        try:
            yield self
        finally:
            object.__setattr__(self, "_one_kernel_copy", False)

    @contextlib.contextmanager
    def use(self, norms):
        """Within the block, `norms` read and update the gated passes' statistics."""
        entries = [self._entry(norm) for norm in norms]
        with self._swap_lock:
            for entry in entries:
                if entry.depth == 0:
                    self._point(entry, entry.gated)
                entry.depth += 1
        try:
            yield
        finally:
            with self._swap_lock:
                for entry in entries:
                    entry.depth -= 1
                    if entry.depth == 0:
                        self._point(entry, entry.own)
