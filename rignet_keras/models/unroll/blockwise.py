"""The block-wise unroll modes that step: parallel (Pu) and multi-range (Pf_u).

Their gates sit on the feedback blocks first..last (`feedback_blocks`); `BlockwiseUnroll` holds
what every block-wise mode shares (the sequential one included: rignet_keras/models/unroll/
sequential.py): the gates' names and creation, their building, and the paper's block-wise label.
"""

from rignet_keras.layers.gates import FeedbackGate, MultiRangeFeedbackGate
from rignet_keras.models.state import NUM_BLOCKS, RecurrentState
from rignet_keras.models.unroll.base import UnrollMode


def blocks_label(feedback_blocks):
    """The paper's name of the gated blocks: (4, 6) -> "<6..4>", (6, 6) -> "<6>"; an int k
    reads as (k, 6); any other value is shown as it is (the model refuses it)."""
    if isinstance(feedback_blocks, int):
        feedback_blocks = (feedback_blocks, NUM_BLOCKS)
    if isinstance(feedback_blocks, (tuple, list)) and len(feedback_blocks) == 2:
        first, last = feedback_blocks
        return f"<{last}>" if first == last else f"<{last}..{first}>"
    return f"<{feedback_blocks!r}>"


def blockwise_label(
    mode_label, network, feedback_blocks, num_iterations, gate_combine, gate_pooling
):
    """A block-wise model's paper name, e.g. "ResNet50-RIGNet Pu<6..4>, ui=6 [mul_tanh]"."""
    extra = []
    if gate_combine != "mul_sigmoid":
        extra.append(gate_combine)
    if gate_pooling != "avg":
        extra.append(f"pool={gate_pooling}")
    tail = f" [{', '.join(extra)}]" if extra else ""
    blocks = blocks_label(feedback_blocks)
    return f"{network}-RIGNet {mode_label}{blocks}, ui={num_iterations}{tail}"


class BlockwiseUnroll(UnrollMode):
    """A mode whose gates sit on the feedback blocks first..last: gate `block<k>_gate` of block
    k reads block k's own previous output. Without feedback blocks it is the feed-forward
    network (no gates; every iteration repeats the first)."""

    network_wide = False

    def __init__(self, feedback_blocks=None, pooling="avg", combine="mul_sigmoid", bottleneck=None):
        super().__init__(feedback_blocks, pooling, combine, bottleneck)
        if feedback_blocks is not None:
            first, last = feedback_blocks
            self.gates = [
                self.gate_class(k)(name=f"block{k}_gate", **self.gate_options)
                for k in range(first, last + 1)
            ]

    def gate_class(self, block):
        """The gate layer class of block `block`."""
        return FeedbackGate

    @property
    def first_recurrent_block(self):
        """The first feedback block; 7 without gates."""
        return NUM_BLOCKS + 1 if self.feedback_blocks is None else self.feedback_blocks[0]

    def check_can_step(self):
        if not self.can_step:
            raise ValueError(
                "stepping needs feedback gates; this model has feedback_blocks=None, so every "
                "iteration would repeat the first"
            )

    @classmethod
    def is_feed_forward(cls, feedback_blocks):
        return feedback_blocks is None

    @classmethod
    def paper_label(cls, network, *, feedback_blocks, num_iterations, gate_combine, gate_pooling):
        return blockwise_label(
            cls.label, network, feedback_blocks, num_iterations, gate_combine, gate_pooling
        )

    def gated_blocks(self):
        """(k, gate) for each gated block k, in order; [] without gates."""
        if self.feedback_blocks is None:
            return []
        return list(enumerate(self.gates, start=self.feedback_blocks[0]))

    def build(self, shapes):
        for k, gate in self.gated_blocks():
            gate.build((shapes[k - 1], shapes[k]))


class ParallelUnroll(BlockwiseUnroll):
    """The "parallel" unroll (Pu, paper Sec. 3.3): a whole pass, then ui - 1 more.

    In pass t, block k in F (the feedback blocks) computes B_k(G_k(x_k(t), y_k(t - 1))), with
    x_k(t) the previous block's output in pass t and y_k(t - 1) its own output of the previous
    pass. Blocks before the first feedback block run once. A prediction per pass.
    Cost (M_k = block k's, G_k its gate's): sum_{k<first} M_k + ui * sum_{k>=first} M_k +
    (ui - 1) * sum_{k in F} G_k.

    A step reads the state's inputs (entry 0) and the gated blocks' previous outputs.
    """

    name = "parallel"
    label = "Pu"

    @property
    def step_reads(self):
        self.check_can_step()
        first, last = self.feedback_blocks
        return tuple(sorted({0} | set(range(1, last - first + 2))))

    def apply_gate(self, gate, x, feedback, logits):
        """Gate `gate` on `x` with its block's previous output `feedback` (`logits`, B6's
        previous output, unused here). Returns (gated x, the long-range input or None)."""
        return gate((x, feedback)), None

    def step(self, chain, state, training=None, record=None):
        """Pass t: the gated blocks first..last and the blocks after them, from `state.inputs`
        (B_{first-1}'s output, not recomputed). Without gates the state is returned as it is."""
        if self.feedback_blocks is None:
            return state
        first, last = self.feedback_blocks
        x, previous = state.inputs, state.outputs
        outputs = []
        for i, block in enumerate(chain.blocks[first - 1 :]):
            k = first + i
            if k <= last:
                gate = self.gates[k - first]
                gated, long_range = self.apply_gate(gate, x, previous[i], previous[-1])
                if record is not None:
                    record(k, gate, x, previous[i], long_range)
                x = gated
            x = chain.run(block, x, training, repeat=True)
            outputs.append(x)
        return RecurrentState(state.inputs, tuple(outputs))


class MultiRangeUnroll(ParallelUnroll):
    """The "multi_range" unroll (Pf_u, paper Sec. 3.4.2): parallel, with long-range feedback.

    The gates of blocks before B6 are `MultiRangeFeedbackGate`s that also read B6's previous
    logits; B6's own gate is the basic one. A step reads what a parallel step reads, and the
    logits (the last state entry).
    """

    name = "multi_range"
    label = "Pf_u"

    def gate_class(self, block):
        return MultiRangeFeedbackGate if block < NUM_BLOCKS else FeedbackGate

    @property
    def step_reads(self):
        reads = super().step_reads
        last_index = NUM_BLOCKS - self.first_recurrent_block + 1  # the logits
        return tuple(sorted(set(reads) | {last_index}))

    def apply_gate(self, gate, x, feedback, logits):
        if isinstance(gate, MultiRangeFeedbackGate):
            return gate((x, feedback, logits)), logits
        return gate((x, feedback)), None

    def build(self, shapes):
        for k, gate in self.gated_blocks():
            if isinstance(gate, MultiRangeFeedbackGate):
                gate.build((shapes[k - 1], shapes[k], shapes[NUM_BLOCKS]))
            else:
                gate.build((shapes[k - 1], shapes[k]))
