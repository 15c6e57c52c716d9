"""RIGNet: a segmentation network unrolled with top-down feedback gates (paper Sec. 3).

docs/DESIGN.md describes the model as the project defines it; the unroll modes are objects of
rignet_keras/models/unroll/."""

import functools

import keras
import numpy as np
from keras import ops

from rignet_keras.backbones import build_blocks, get_backbone_spec, load_imagenet_weights
from rignet_keras.layers.pass_statistics import PassStatistics, batch_norms
from rignet_keras.models.arguments import (
    check_custom_blocks,
    check_num_iterations,
    check_rignet_arguments,
)
from rignet_keras.models.passes import call_in_pass, recomputable
from rignet_keras.models.pixels import check_finite, check_image_shape, normalize_pixels
from rignet_keras.models.state import RecurrentState
from rignet_keras.models.unroll import BlockChain, unroll_mode_class
from rignet_keras.ops import resize_bilinear, spatial_size
from rignet_keras.preprocessing import check_mode
from rignet_keras.presets import preset_kwargs


@keras.saving.register_keras_serializable(package="rignet_keras")
class RIGNet(keras.Model):
    """Recurrent Iterative Gating Network for semantic segmentation.

    A segmentation network is a chain of six blocks B1-B6 (B6 the head). Feedback blocks get a
    gate `G_k(x, y)` through which their own output `y` of the previous iteration modulates their
    input `x`. The network is unrolled `num_iterations` (the paper's ui) times with every weight
    shared; iteration 1 never gates, so `num_iterations=1` is exactly the feed-forward network.

    The recurrence has one driver, `iterate(images, num_iterations, training)`, which yields each
    iteration's `RecurrentState` (the input of the first recurrent block, the recurrent blocks'
    outputs, the logits); `call`, evaluation per ui, gate maps, the losses over iterations,
    batch-norm calibration and the step-wise export all run on it. `can_step` says whether a
    model runs step by step (`initial_state`, then `step`).

    Unroll modes (paper Sec. 3.3), each an `UnrollMode` object (`model.unroll`) of
    rignet_keras/models/unroll/ that owns the mode's gates, its step and what it reads, and
    whose docstring gives its cost:
        "sequential" (Su, `SequentialUnroll`): block k in F (the feedback blocks) loops on
            itself before the next block starts. One prediction.
        "parallel" (Pu, `ParallelUnroll`): a whole pass, then ui - 1 more, block k in F gated
            by its own output of the previous pass. A prediction per pass.
        "multi_range" (Pf_u, `MultiRangeUnroll`): parallel, with `MultiRangeFeedbackGate`s that
            also see the last block's output (long-range feedback).
        "network_recurrent" (Table 6 (a), `NetworkRecurrentUnroll`): the whole network recurs;
            pass t adds a 3x3 projection of the previous class probabilities to the image.
        "network_gated" (Table 6 (b), `NetworkGatedUnroll`): the previous prediction gates the
            image through G_1.
    The per-mode costs at a given input size are counted by `rignet_keras.profile`.

    Args:
        num_classes: int, the number of classes (B6's output channels).
        backbone: a registered backbone name (`rignet_keras.backbones.BACKBONES`: "resnet18",
            "resnet34", "resnet50", "resnet101", "resnet152", "mobilenetv2", "deeplabv2"), or a
            list of six Keras layers B1-B6 (B6 returning `num_classes` channels), or a callable
            returning that list. Default "resnet50".
        output_stride: 32, 16 or 8 for a named backbone; None for its default (8 for
            "deeplabv2", else 32). Ignored for a custom backbone.
        head: "fcn" or "aspp" for a named backbone; None for its default.
        head_filters: width of the FCN head's 3x3 convolution. Default 512.
        width_multiplier: scales the channels of B1-B5 of a named ResNet backbone (1.0, the
            default, is the published network; ImageNet weights need 1.0). For narrow
            networks in small experiments.
        unroll_mode: one of `UNROLL_MODES`. Default "parallel".
        feedback_blocks: (first, last), gates on blocks first..last: (4, 6) is the paper's
            <6..4>; an int k means (k, 6); None: no gates (the feed-forward baseline). Unused by
            the network-wide modes. Default (4, 6).
        num_iterations: the default ui, >= 1. Default 2.
        gate_pooling: "avg" (default), "max" or None.
        gate_combine: "mul_sigmoid" (default), "mul_tanh" or "add_relu".
        gate_bottleneck: None (the paper's gate) or the width of a 1x1 reduction in each gate.
        return_all_iterations: return the list of every iteration's logits (coarse to fine)
            instead of the last only. Not available in "sequential" mode, which makes one.
        sync_batch_norm: synchronised batch norm across replicas (named backbones only).
        preprocessing: the `rignet_keras.preprocessing` mode the inputs are normalised with;
            None for the backbone's (its ImageNet weights'), "torch" for custom backbones.
        backbone_weights: None, "imagenet" or a path: ImageNet weights for B1-B5 of a named
            backbone, loaded once at construction (not kept in the config).
        recompute_blocks: in training, keep only the inputs of the blocks that run in every
            iteration and recompute their activations in the backward pass (`keras.remat`), so
            peak memory grows with ui by block outputs only, for about one more forward pass of
            those blocks. Blocks holding dropout (the FCN head), whose mask a recomputation
            would redraw, are not recomputed. Batch-norm moving statistics are updated in the
            recomputation too (each batch counts twice in the moving averages). TensorFlow
            backend only. Default False.
        recurrent_batch_norm: how the batch norms of blocks that run several times normalise
            their passes; gamma and beta are shared by every pass whatever the option.
            "gated_passes" (default): every pass with its batch's statistics in training; the
            first (ungated) pass keeps the norms' own moving statistics and the gated passes
            (2 and later) a second set (`PassStatistics`), and each uses its own at inference.
            ui = 1 is unchanged, a `step` needs no pass index, and an export of ui >= 2 holds
            the repeated blocks' folded weights twice. "first_pass": the batch's statistics in
            a block's first pass, which alone updates the one set of moving averages, and the
            moving statistics in every later pass, in training as at inference, so the gated
            passes train un-normalised. "every_pass": each pass's batch statistics in training
            and one set of moving averages, which then mixes the ungated and gated passes'
            statistics and fits neither at inference. BENCHMARKS.md compares the three on the
            synthetic task.

    Call arguments:
        images: (B, H, W, 3), any H and W: uint8 (or int32 / int64) RGB pixels 0-255, which
            the model normalises with its `preprocessing` (`normalize_pixels`), or floats
            already normalised with it (what the data pipeline delivers). A float image on the
            0-255 scale is not recognised as pixels: cast it to uint8 or call
            `rignet_keras.normalize(images, model.preprocessing)` first. Other dtypes (bool,
            int8, uint16, ...) are refused, and so are non-finite floats where the call runs
            eagerly (a NaN pixel would turn every output NaN).
        training: bool, training mode of batch norm and dropout.
        num_iterations: int >= 1 overriding ui for this call, with the same weights.

    Returns:
        float32 logits (B, H, W, num_classes), resized bilinearly to the input; or a list of
        them, one per iteration, when `return_all_iterations`.

    Example:
    >>> model = RIGNet(num_classes=21, backbone="resnet18", num_iterations=3)
    >>> logits = model(keras.ops.zeros((1, 65, 65, 3)))
    >>> tuple(logits.shape)
    (1, 65, 65, 21)
    """

    def __init__(
        self,
        num_classes,
        backbone="resnet50",
        output_stride=None,
        head=None,
        head_filters=512,
        width_multiplier=1.0,
        unroll_mode="parallel",
        feedback_blocks=(4, 6),
        num_iterations=2,
        gate_pooling="avg",
        gate_combine="mul_sigmoid",
        gate_bottleneck=None,
        return_all_iterations=False,
        sync_batch_norm=False,
        preprocessing=None,
        backbone_weights=None,
        recompute_blocks=False,
        recurrent_batch_norm="gated_passes",
        **kwargs,
    ):
        super().__init__(**kwargs)
        feedback_blocks, width_multiplier = check_rignet_arguments(
            num_classes=num_classes,
            unroll_mode=unroll_mode,
            num_iterations=num_iterations,
            gate_pooling=gate_pooling,
            gate_combine=gate_combine,
            gate_bottleneck=gate_bottleneck,
            feedback_blocks=feedback_blocks,
            return_all_iterations=return_all_iterations,
            width_multiplier=width_multiplier,
            recurrent_batch_norm=recurrent_batch_norm,
            recompute_blocks=recompute_blocks,
        )
        self.num_classes = num_classes
        self.output_stride = output_stride
        self.head = head
        self.head_filters = head_filters
        self.width_multiplier = width_multiplier
        self.unroll_mode = unroll_mode
        self.feedback_blocks = feedback_blocks
        self.num_iterations = num_iterations
        self.gate_pooling = gate_pooling
        self.gate_combine = gate_combine
        self.gate_bottleneck = gate_bottleneck
        self.return_all_iterations = return_all_iterations
        self.sync_batch_norm = sync_batch_norm
        self.recompute_blocks = bool(recompute_blocks)
        self.recurrent_batch_norm = recurrent_batch_norm

        if isinstance(backbone, str):
            spec = get_backbone_spec(backbone)
            self.backbone = backbone
            self.blocks, _ = build_blocks(
                backbone,
                num_classes,
                output_stride,
                head,
                head_filters,
                sync_batch_norm,
                width_multiplier=self.width_multiplier,
            )
            default_preprocessing = spec.preprocessing
        else:
            if self.width_multiplier != 1.0:
                raise ValueError(
                    f"width_multiplier={width_multiplier!r} needs a named backbone; a custom "
                    "backbone's blocks set their own widths"
                )
            self.backbone = None
            self.blocks = check_custom_blocks(backbone)
            default_preprocessing = "torch"
        self.preprocessing = check_mode(preprocessing or default_preprocessing)

        # The mode object creates the gates; they are the model's layers (tracked and saved
        # under these attributes) and are built in build() from the shapes that flow in.
        self.unroll = unroll_mode_class(unroll_mode)(
            feedback_blocks, pooling=gate_pooling, combine=gate_combine, bottleneck=gate_bottleneck
        )
        self.gates = list(self.unroll.gates)
        self.network_feedback = self.unroll.network_feedback

        # Created here, filled in build() once the repeated blocks' batch norms exist.
        self.pass_statistics = None
        if recurrent_batch_norm == "gated_passes" and self.repeated_blocks:
            self.pass_statistics = PassStatistics(name="pass_statistics")

        if backbone_weights is not None:
            if self.backbone is None:
                raise ValueError("backbone_weights needs a named backbone; load custom weights")
            if self.width_multiplier != 1.0:
                raise ValueError(
                    f"backbone_weights={backbone_weights!r} needs width_multiplier=1.0 (the "
                    f"published network); received {self.width_multiplier!r}"
                )
            load_imagenet_weights(self.backbone, self.blocks, backbone_weights)

    @classmethod
    def from_preset(cls, preset, num_classes, **overrides):
        """Builds one of the paper's models by name (`rignet_keras.presets.PRESETS`).

        Example: `RIGNet.from_preset("resnet50_rignet", num_classes=21,
        backbone_weights="imagenet")` is ResNet50-RIGNet Pu<6..4>, ui=6 of Table 7.
        """
        return cls(num_classes=num_classes, **preset_kwargs(preset, **overrides))

    # ----------------------------------------------------------------------------------------
    # Building: every variable exists after build(), whatever the default ui, so a model whose
    # default call never reaches a gate still saves and reloads every weight.

    check_image_shape = staticmethod(check_image_shape)

    def build(self, input_shape):
        self.check_image_shape(input_shape)
        shapes = [tuple(input_shape)]
        for k, block in enumerate(self.blocks, start=1):
            try:
                out = block.compute_output_spec(keras.KerasTensor(shapes[-1]))
            except Exception as error:  # a user's block that cannot take what flows in
                raise ValueError(
                    f"block {k} ({block.name!r}) cannot take an input of shape {shapes[-1]}: "
                    f"{error}"
                ) from error
            if not block.built:
                block.build(shapes[-1])
            if len(out.shape) != 4:
                raise ValueError(
                    f"block {k} ({block.name!r}) must return (batch, height, width, channels); "
                    f"returned shape {tuple(out.shape)}"
                )
            shapes.append(tuple(out.shape))
        if shapes[-1][-1] != self.num_classes:
            raise ValueError(
                f"block 6 must return num_classes={self.num_classes} channels; "
                f"returns {shapes[-1][-1]}"
            )
        self.unroll.build(shapes)
        if self.pass_statistics is not None:
            self.pass_statistics.track(
                (f"block{k}_{norm.name}", norm)
                for k in self.repeated_blocks
                for norm in batch_norms(self.blocks[k - 1])
            )
        self.built = True

    # ----------------------------------------------------------------------------------------
    # One iteration (`step`) and the driver (`iterate`): the mode object (`self.unroll`) runs
    # them on the blocks. The recurrent state is a `RecurrentState`
    # (rignet_keras/models/state.py documents its layout).

    recomputable = staticmethod(recomputable)

    def _run_block(self, block, x, training, repeat=False):
        """Calls a block that may run in several passes, rematerialised when asked to.

        `repeat` marks a pass after the block's first (a gated one): it picks how the batch
        norms normalise (`recurrent_batch_norm`; rignet_keras/models/passes.py).
        """
        call = functools.partial(
            call_in_pass,
            block,
            training=training,
            repeat=repeat,
            pass_statistics=self.pass_statistics,
            recurrent_batch_norm=self.recurrent_batch_norm,
        )
        if self.recompute_blocks and training and self.recomputable(block):
            # The recomputation re-enters call_in_pass, so it normalises as the forward did.
            return keras.remat(call)(x)
        return call(x)

    def _block_chain(self):
        """The blocks and how a repeated one runs, as the mode object takes them."""
        return BlockChain(self.blocks, self._run_block)

    @property
    def first_recurrent_block(self):
        """The first block whose output is part of the state (1-based): 1 in the network-wide
        modes, the first feedback block in the block-wise ones, 7 for a model without gates."""
        return self.unroll.first_recurrent_block

    @property
    def repeated_blocks(self):
        """The blocks (1-based) that run more than once when ui > 1."""
        return self.unroll.repeated_blocks

    @property
    def can_step(self):
        """Whether the model runs step by step: `initial_state`, then one `step` per iteration,
        iteration t's logits being the output at ui = t (the step-wise export needs it). False
        in the sequential mode and for a model without gates (`check_can_step` says why)."""
        return self.unroll.can_step

    def check_can_step(self):
        """Raises `ValueError` saying why, unless `can_step`."""
        self.unroll.check_can_step()

    @property
    def step_reads(self):
        """The entries of `RecurrentState.flatten()` that `step` reads, sorted.

        Entry 0 (the inputs) always; the block-wise modes read the gated blocks' previous
        outputs (their gates' feedback), and with multi-range gates B6's logits too; the
        network-wide modes read the images and the logits. Entries not read may be None.
        """
        return self.unroll.step_reads

    def _build_for(self, images):
        """Checks the images' shape, builds the model for it if needed (the driver's entry
        points call the blocks directly, not through `__call__`, which would build it), and
        returns the network's input: `normalize_pixels(images)`."""
        self.check_image_shape(images.shape)
        if not self.built:
            self.build(tuple(images.shape))
        return self.normalize_pixels(images)

    def normalize_pixels(self, images):
        """Integer images are pixels: normalised here with the model's `preprocessing`.

        Args:
            images: (B, H, W, 3), either of an integer dtype (uint8 RGB pixels, 0-255), or
                floating and already normalised with `preprocessing` (as the data pipeline
                delivers them), which pass through unchanged.

        Returns:
            Float images (B, H, W, 3) normalised with `preprocessing`.
        """
        return normalize_pixels(images, self.preprocessing, self.compute_dtype)

    def initial_state(self, images, training=None):
        """Iteration 1 (no gating): the feed-forward pass.

        Args:
            images: (B, H, W, 3) normalised images.
            training: the call mode.

        Returns:
            The `RecurrentState` after one pass; its `logits` are B6's (B, h, w, num_classes).
        """
        x = self._build_for(images)
        return self.unroll.initial_state(self._block_chain(), x, training)

    def step(self, state, training=None):
        """One gated iteration of the parallel, multi_range or network-wide modes.

        Blocks before the first recurrent block are not recomputed: their output is
        `state.inputs`. Only the entries of `step_reads` are read.

        Args:
            state: the previous iteration's `RecurrentState`.
            training: the call mode.

        Returns:
            The next `RecurrentState`; its `inputs` are `state.inputs`.
        """
        if not isinstance(state, RecurrentState):
            raise TypeError(
                f"step takes a RecurrentState (from initial_state or step); received "
                f"{type(state).__name__}"
            )
        return self.unroll.step(self._block_chain(), state, training)

    def iterate(self, images, num_iterations=None, training=None):
        """The one driver of the recurrence: yields the `RecurrentState` of each iteration.

        In the parallel, multi_range and network-wide modes it yields ui states, iteration t's
        `logits` being the output at ui = t: `initial_state`, then `step` ui - 1 times, in a
        plain Python loop (a static graph per ui when traced). The sequential mode is the one
        exception: its blocks loop on themselves one after another, so no iteration before the
        last makes a whole prediction, and it yields the final state only.

        Args:
            images: (B, H, W, 3) normalised images, in the model's compute dtype.
            num_iterations: ui, >= 1; None for the model's `num_iterations`.
            training: the call mode.

        Returns:
            An iterator of `RecurrentState`s.
        """
        images = self._build_for(images)
        num_iterations = check_num_iterations(
            self.num_iterations if num_iterations is None else num_iterations
        )
        return self.unroll.iterate(self._block_chain(), images, num_iterations, training)

    def gate_inputs(self, images, num_iterations=None, training=False):
        """Every gate application of an unroll at ui = `num_iterations`, in order, recorded by
        the unroll itself (`iterate`'s walk) as it reaches each gate.

        Returns:
            A list of `GateInput` (block, iteration >= 2, gate, x, feedback, long_range); empty
            for a model without gates and in the "network_recurrent" mode (nothing is run).
        """
        num_iterations = check_num_iterations(
            self.num_iterations if num_iterations is None else num_iterations
        )
        found = []
        if not self.unroll.gated or num_iterations == 1:
            return found
        images = self._build_for(images)
        walk = self.unroll.iterate(self._block_chain(), images, num_iterations, training, found)
        for _ in walk:
            pass
        return found

    def upsample(self, logits, size):
        """B6 logits (B, h, w, C) -> float32 logits at the input size (B, H, W, C)."""
        return ops.cast(resize_bilinear(logits, size), "float32")

    def predict(self, x, *args, **kwargs):
        """`keras.Model.predict`, refusing NumPy float images that hold a NaN or an infinity."""
        if isinstance(x, np.ndarray) and x.dtype.kind == "f":
            check_finite(x)
        return super().predict(x, *args, **kwargs)

    def call(self, images, training=None, num_iterations=None):
        size = spatial_size(images)
        logits = [state.logits for state in self.iterate(images, num_iterations, training)]
        if self.return_all_iterations:
            return [self.upsample(y, size) for y in logits]
        return self.upsample(logits[-1], size)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape[:3]) + (self.num_classes,)
        if self.return_all_iterations:
            return [shape] * self.num_iterations
        return shape

    # ----------------------------------------------------------------------------------------

    def get_config(self):
        config = {
            "name": self.name,
            "trainable": self.trainable,
            "num_classes": self.num_classes,
            "backbone": self.backbone,
            "output_stride": self.output_stride,
            "head": self.head,
            "head_filters": self.head_filters,
            "width_multiplier": self.width_multiplier,
            "unroll_mode": self.unroll_mode,
            "feedback_blocks": self.feedback_blocks,
            "num_iterations": self.num_iterations,
            "gate_pooling": self.gate_pooling,
            "gate_combine": self.gate_combine,
            "gate_bottleneck": self.gate_bottleneck,
            "return_all_iterations": self.return_all_iterations,
            "sync_batch_norm": self.sync_batch_norm,
            "preprocessing": self.preprocessing,
            "recompute_blocks": self.recompute_blocks,
            "recurrent_batch_norm": self.recurrent_batch_norm,
        }
        if self.backbone is None:  # a custom backbone: its blocks are the config
            config["backbone"] = [keras.saving.serialize_keras_object(b) for b in self.blocks]
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("backbone"), list):
            config["backbone"] = [
                keras.saving.deserialize_keras_object(b) for b in config["backbone"]
            ]
        if isinstance(config.get("feedback_blocks"), list):
            config["feedback_blocks"] = tuple(config["feedback_blocks"])
        return cls(**config)
