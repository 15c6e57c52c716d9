"""The interface every unroll mode implements, and the walk the stepping modes share.

An unroll mode (paper Sec. 3.3) says how a RIGNet's six blocks B1-B6 run over ui iterations:
which gates exist and what they are built from, the first iteration (`initial_state`), one
gated iteration (`step`), whether the model can run step by step (`can_step`), which state
entries a step reads (`step_reads`), which blocks repeat, and what each gate reads in a walk
(`GateInput`s). `RIGNet` holds one mode object (`RIGNet.unroll`), chosen by its `unroll_mode`
argument in the registry (`rignet_keras.models.unroll.registry`), and never branches on the
mode's name. The state a mode reads and writes is `rignet_keras.models.state.RecurrentState`.

A mode object is plain Python, not a Keras layer: its gates are the model's layers
(`RIGNet.gates`, `RIGNet.network_feedback`), tracked and saved there under the names they have
always had, and the mode keeps no state of its own beyond its arguments.
"""

import functools
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

from rignet_keras.models.state import NUM_BLOCKS, GateInput, RecurrentState


class BlockChain(NamedTuple):
    """The network an unroll runs: the six blocks, and how one that may repeat is called.

    Attributes:
        blocks: the six Keras layers B1-B6 (B6, the head, returns the logits).
        run: `run(block, x, training, repeat=False)` -> the block's output: a call that may be
            rematerialised and, for `repeat=True` (a pass after the block's first), picks the
            batch norms' statistics of a repeated pass (`RIGNet._run_block`). Blocks that run
            once are called directly, `block(x, training=training)`.
    """

    blocks: Any
    run: Callable


def _record(gate_inputs, iteration, block, gate, x, feedback, long_range=None):
    gate_inputs.append(GateInput(block, iteration, gate, x, feedback, long_range))


class UnrollMode:
    """One unroll mode of RIGNet: its gates, its iterations and what they read.

    A subclass sets `name` (the `unroll_mode` value, the serialized config key), `label` (the
    paper's name of the unroll) and `network_wide`, creates its gates in `__init__` with stable
    names, builds them in `build`, and implements `step` (or overrides `iterate`, as the
    sequential mode does, when an iteration is not a step).

    Args:
        feedback_blocks: (first, last), the gated blocks of a block-wise mode, or None for no
            gates (normalised by `rignet_keras.models.arguments.check_feedback_blocks`).
            Unused by the network-wide modes.
        pooling, combine, bottleneck: the gates' options (`FeedbackGate`).
    """

    name: ClassVar[str]
    label: ClassVar[str]
    # True when the feedback spans the whole network (the images are what it modulates).
    network_wide: ClassVar[bool] = False
    # False for a mode whose unroll makes a single prediction (no iteration before the last
    # yields whole logits): `return_all_iterations` needs True.
    predicts_every_iteration: ClassVar[bool] = True

    def __init__(self, feedback_blocks=None, pooling="avg", combine="mul_sigmoid", bottleneck=None):
        self.feedback_blocks = feedback_blocks
        self.gate_options = dict(pooling=pooling, combine=combine, bottleneck=bottleneck)
        # The gates of blocks first..last (block-wise modes), in block order.
        self.gates = []
        # The network-wide modes' feedback layer (a gate or a projection), else None.
        self.network_feedback = None

    def __repr__(self):
        return f"{type(self).__name__}(feedback_blocks={self.feedback_blocks!r})"

    # ----------------------------------------------------------------------------------------
    # What the mode is

    @property
    def gated(self):
        """Whether an unroll at ui >= 2 applies a gate (`gate_inputs` lists them)."""
        return bool(self.gates)

    @property
    def first_recurrent_block(self):
        """The first block whose output is part of the state (1-based); 7 when none is."""
        raise NotImplementedError

    @property
    def repeated_blocks(self):
        """The blocks (1-based) that run more than once when ui > 1."""
        return list(range(self.first_recurrent_block, NUM_BLOCKS + 1))

    @property
    def can_step(self):
        """Whether the model runs step by step: `initial_state`, then one `step` per iteration,
        iteration t's logits being the output at ui = t."""
        return self.first_recurrent_block <= NUM_BLOCKS

    def check_can_step(self):
        """Raises `ValueError` saying why, unless `can_step`."""
        if not self.can_step:
            raise ValueError(f"unroll_mode {self.name!r} cannot run step by step")

    @property
    def step_reads(self):
        """The entries of `RecurrentState.flatten()` that `step` reads, sorted."""
        raise NotImplementedError

    @classmethod
    def is_feed_forward(cls, feedback_blocks):
        """Whether a model of this mode with `feedback_blocks` is the feed-forward baseline."""
        return False

    @classmethod
    def paper_label(cls, network, *, feedback_blocks, num_iterations, gate_combine, gate_pooling):
        """The paper's name of a model of this mode, e.g. "ResNet50-RIGNet Pu<6..4>, ui=6".

        `network` is the backbone's printed name ("ResNet50", "ResNet50 (8s)"); the gate
        options show when they are not the paper's defaults (block-wise modes only).
        """
        raise NotImplementedError

    # ----------------------------------------------------------------------------------------
    # Building

    def build(self, shapes):
        """Builds the gates from the chain's shapes: `shapes[0]` the input's, `shapes[k]` the
        output of block k (B6's, the logits, last); every variable exists afterwards."""
        raise NotImplementedError

    # ----------------------------------------------------------------------------------------
    # Running

    def recurrent_outputs(self, chain, x, training, repeat):
        """Blocks first_recurrent_block..6 of `chain` on `x`: their outputs, a tuple (B6's
        last)."""
        outputs = []
        for block in chain.blocks[self.first_recurrent_block - 1 :]:
            x = chain.run(block, x, training, repeat)
            outputs.append(x)
        return tuple(outputs)

    def initial_state(self, chain, x, training=None):
        """Iteration 1 (no gating): the feed-forward pass of `chain` on the normalised images
        `x` (B, H, W, 3). Returns its `RecurrentState`."""
        for block in chain.blocks[: self.first_recurrent_block - 1]:
            x = block(x, training=training)
        return RecurrentState(x, self.recurrent_outputs(chain, x, training, repeat=False))

    def step(self, chain, state, training=None, record=None):
        """One gated iteration: the `RecurrentState` after `state`.

        `record`, when given, is called once per gate application as
        `record(block, gate, x, feedback, long_range=None)` (what the gate reads; `iterate`
        turns the calls into `GateInput`s).
        """
        raise NotImplementedError

    def iterate(self, chain, images, num_iterations, training=None, gate_inputs=None):
        """The unroll at ui = `num_iterations`: an iterator of the `RecurrentState` of each
        iteration (`initial_state`, then `step` ui - 1 times, in a plain Python loop).

        Args:
            chain: the `BlockChain` to run.
            images: (B, H, W, 3) normalised images in the model's compute dtype.
            num_iterations: ui, an int >= 1 (checked by the caller).
            training: the call mode.
            gate_inputs: a list to which a `GateInput` is appended per gate application, in
                order, as the walk reaches it; None to record nothing.
        """
        state = self.initial_state(chain, images, training)
        yield state
        for t in range(2, num_iterations + 1):
            record = None if gate_inputs is None else functools.partial(_record, gate_inputs, t)
            state = self.step(chain, state, training, record)
            yield state
