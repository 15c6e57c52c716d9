"""The sequential unroll mode (Su): each feedback block loops on itself before the next runs."""

from rignet_keras.models.state import NUM_BLOCKS, GateInput, RecurrentState
from rignet_keras.models.unroll.blockwise import BlockwiseUnroll


class SequentialUnroll(BlockwiseUnroll):
    """The "sequential" unroll (Su, paper Sec. 3.3): one pass through the blocks.

    Block k in F (the feedback blocks) loops on itself before the next block starts:
    y = B_k(x), then ui - 1 times y = B_k(G_k(x, y)). Cost (M_k = block k's, G_k its gate's):
    sum M_k + (ui - 1) * sum_{k in F} (M_k + G_k). One prediction: no iteration before the last
    yields whole logits, so the mode cannot step and `iterate` yields the final state only.
    """

    name = "sequential"
    label = "Su"
    predicts_every_iteration = False

    @property
    def repeated_blocks(self):
        """The feedback blocks (B6 runs once after them unless it is one)."""
        if self.feedback_blocks is None:
            return []
        first, last = self.feedback_blocks
        return list(range(first, last + 1))

    @property
    def can_step(self):
        return False

    def check_can_step(self):
        raise ValueError(
            "stepping needs a parallel, multi_range or network-wide unroll_mode; received "
            "'sequential' (its blocks loop on themselves one after another, so no iteration "
            "yields a whole prediction)"
        )

    @property
    def step_reads(self):
        self.check_can_step()

    def step(self, chain, state, training=None, record=None):
        self.check_can_step()

    def final_state(self, chain, images, num_iterations, training, gate_inputs=None):
        """The one pass: every feedback block loops on itself ui - 1 times.

        Returns the `RecurrentState` after every block has looped (the logits alone without
        gates); appends a `GateInput` per gate application to `gate_inputs` when given.
        """
        first, last = self.feedback_blocks or (NUM_BLOCKS + 1, NUM_BLOCKS + 1)
        x, inputs, outputs = images, None, []
        for k, block in enumerate(chain.blocks, start=1):
            if k == self.first_recurrent_block:
                inputs = x
            if first <= k <= last:
                y = chain.run(block, x, training)
                gate = self.gates[k - first]
                for t in range(2, num_iterations + 1):
                    if gate_inputs is not None:
                        gate_inputs.append(GateInput(k, t, gate, x, y))
                    y = chain.run(block, gate((x, y)), training, repeat=True)
            else:
                y = block(x, training=training)
            if inputs is not None:
                outputs.append(y)
            x = y
        if inputs is None:  # no gates: the state is the logits
            return RecurrentState(x)
        return RecurrentState(inputs, tuple(outputs))

    def iterate(self, chain, images, num_iterations, training=None, gate_inputs=None):
        """The final state only (computed at once), in an iterator."""
        return iter([self.final_state(chain, images, num_iterations, training, gate_inputs)])
