"""The recurrent state of a RIGNet: what one iteration hands to the next.

`RIGNet.iterate` yields one `RecurrentState` per iteration, `RIGNet.initial_state` makes the first
and `RIGNet.step` maps one to the next (the model's unroll mode, `rignet_keras.models.unroll`,
computes both); evaluation per ui, gate maps, the losses over iterations,
batch-norm calibration and the step-wise export all read the states the driver yields. The
step-wise export's wire layout (the tensors `state_0`, `state_1`, ...) is `RecurrentState.flatten`.
docs/DESIGN.md describes the unrolling that produces it.
"""

from typing import Any, NamedTuple

# A RIGNet is a chain of six blocks B1-B6 (B6 the head): the state's blocks run up to B6.
NUM_BLOCKS = 6


class RecurrentState(NamedTuple):
    """The tensors of one iteration that the next iteration reads, and its logits.

    A NamedTuple, so `tf.function`, `keras.remat`, `keras.tree` and `tf.nest` take it as they
    take a tuple of tensors.

    Layout, for "first" the first recurrent block (`RIGNet.first_recurrent_block`):
        inputs: the input of block `first` (B, h, w, c): the output of B_{first-1}, which the
            later iterations do not recompute. The images (B, H, W, 3) in the network-wide modes
            (first = 1; the images are what their feedback modulates).
        outputs: a tuple of the outputs of blocks first..6 (B6 last), each (B, h_k, w_k, c_k).
        logits: `outputs[-1]`, B6's logits (B, h, w, num_classes) at the output stride.

    A model without gates in a block-wise mode has no recurrent block: `first` is 7, `inputs`
    is then the input of that notional seventh block, B6's logits, `outputs` is empty, and
    `logits` is `inputs`. In the sequential mode the state is the one after every block has
    looped: `inputs` the input of the first feedback block, `outputs` blocks first..6.

    Flat layout (`flatten`): [inputs, *outputs]; entry i > 0 is block first + i - 1's output,
    the last entry is the logits.
    """

    inputs: Any
    outputs: tuple = ()

    @property
    def logits(self):
        """B6's logits (B, h, w, num_classes) at the output stride."""
        return self.outputs[-1] if self.outputs else self.inputs

    def flatten(self):
        """The state as a list of tensors: [inputs, *outputs] (the step-wise wire layout)."""
        return [self.inputs, *self.outputs]

    @classmethod
    def unflatten(cls, tensors):
        """The inverse of `flatten`; entries a step does not read may be None."""
        tensors = list(tensors)
        if not tensors:
            raise ValueError("a RecurrentState needs at least one tensor (the inputs)")
        return cls(tensors[0], tuple(tensors[1:]))


class GateInput(NamedTuple):
    """What one gate application reads: gate `gate` of `block` in iteration `iteration` (>= 2).

    Attributes:
        block: the gated block (1-based); 1 for the network-wide gate (it gates the images).
        iteration: the iteration whose pass the gate modulates, >= 2.
        gate: the `FeedbackGate` layer.
        x: the tensor it gates (B, H, W, Cx): the block's input in this pass.
        feedback: the block's output of the previous pass (B, h, w, Cy): the logits for the
            network-wide gate.
        long_range: B6's logits of the previous pass for a `MultiRangeFeedbackGate`, else None.
    """

    block: int
    iteration: int
    gate: Any
    x: Any
    feedback: Any
    long_range: Any = None
