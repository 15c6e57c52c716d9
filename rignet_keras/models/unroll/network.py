"""The network-wide unroll modes (paper Table 6): the whole network recurs on the images.

The state's inputs are the images (B, H, W, 3) and its outputs are blocks 1..6; a step feeds
the previous prediction back into the images and runs every block again.
"""

from keras import layers, ops

from rignet_keras.layers.gates import FeedbackGate
from rignet_keras.models.state import NUM_BLOCKS, RecurrentState
from rignet_keras.models.unroll.base import UnrollMode
from rignet_keras.ops import resize_bilinear, spatial_size


class NetworkUnroll(UnrollMode):
    """A mode whose feedback spans the whole network: `network_feedback` turns the images and
    the previous logits into the next pass's input. `feedback_blocks` is not used.

    A step reads the images (entry 0) and the logits (the last entry).
    """

    network_wide = True

    @property
    def first_recurrent_block(self):
        return 1

    @property
    def step_reads(self):
        self.check_can_step()
        return (0, NUM_BLOCKS - self.first_recurrent_block + 1)

    @classmethod
    def paper_label(cls, network, *, feedback_blocks, num_iterations, gate_combine, gate_pooling):
        return f"{network} {cls.label}, ui={num_iterations}"

    def feed_back(self, images, logits, record=None):
        """The next pass's input (B, H, W, 3) from the images and the previous logits."""
        raise NotImplementedError

    def step(self, chain, state, training=None, record=None):
        """Pass t: every block again, on the images modulated by the previous prediction."""
        x = self.feed_back(state.inputs, state.logits, record)
        return RecurrentState(state.inputs, self.recurrent_outputs(chain, x, training, repeat=True))


class NetworkRecurrentUnroll(NetworkUnroll):
    """The "network_recurrent" unroll (Table 6 (a)): the whole network recurs.

    Pass t adds a 3x3 projection (`network_feedback`, a Conv2D to 3 channels) of the previous
    prediction's class probabilities to the image: a concatenation of the two followed by a
    linear map into the image's 3 channels. No gate. Cost: ui * sum M_k (M_k = block k's).
    """

    name = "network_recurrent"
    label = "network-wide"

    def __init__(self, feedback_blocks=None, pooling="avg", combine="mul_sigmoid", bottleneck=None):
        super().__init__(feedback_blocks, pooling, combine, bottleneck)
        self.network_feedback = layers.Conv2D(3, 3, padding="same", name="network_feedback")

    def build(self, shapes):
        self.network_feedback.build(tuple(shapes[0][:3]) + (shapes[NUM_BLOCKS][-1],))

    def feed_back(self, images, logits, record=None):
        probs = ops.softmax(resize_bilinear(logits, spatial_size(images)), axis=-1)
        return images + ops.cast(self.network_feedback(probs), images.dtype)


class NetworkGatedUnroll(NetworkUnroll):
    """The "network_gated" unroll (Table 6 (b)): the previous prediction gates the images.

    The gate is G_1 (`network_feedback`, a `FeedbackGate` named "network_gate"; its
    `GateInput`s name block 1). Cost: ui * sum M_k + (ui - 1) * G_1.
    """

    name = "network_gated"
    label = "network-wide gated"

    def __init__(self, feedback_blocks=None, pooling="avg", combine="mul_sigmoid", bottleneck=None):
        super().__init__(feedback_blocks, pooling, combine, bottleneck)
        self.network_feedback = FeedbackGate(name="network_gate", **self.gate_options)

    @property
    def gated(self):
        return True

    def build(self, shapes):
        self.network_feedback.build((shapes[0], shapes[NUM_BLOCKS]))

    def feed_back(self, images, logits, record=None):
        if record is not None:
            record(1, self.network_feedback, images, logits)
        return self.network_feedback((images, logits))
