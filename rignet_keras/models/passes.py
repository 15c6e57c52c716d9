"""How a block that runs in several passes of an unroll is called (`RIGNet.recurrent_batch_norm`).

A block's first pass normalises as a feed-forward network does; a later (gated) pass uses the
gated passes' statistics ("gated_passes"), the moving statistics in training ("first_pass"), or
its batch's statistics ("every_pass"). `RIGNet._run_block` calls `call_in_pass`, rematerialised
when the model recomputes its blocks.
"""

from rignet_keras.layers.pass_statistics import batch_norms


def recomputable(block):
    """False for blocks that draw random numbers (dropout): a recomputation would redraw."""
    return not any("seed_generator" in v.path for v in block.variables)


def call_in_pass(block, x, training, repeat, pass_statistics, recurrent_batch_norm):
    """`block(x, training=training)` as pass `repeat` (a pass after the block's first) needs.

    Args:
        block: a Keras layer; x: its input.
        training: the call mode.
        repeat: True for a pass after the block's first.
        pass_statistics: the model's `PassStatistics` ("gated_passes"), or None.
        recurrent_batch_norm: the model's option ("gated_passes", "first_pass", "every_pass").
    """
    if not repeat:
        return block(x, training=training)
    if pass_statistics is not None:
        with pass_statistics.use(batch_norms(block)):
            return block(x, training=training)
    if not (training and recurrent_batch_norm == "first_pass"):
        return block(x, training=training)
    norms = [layer for layer in batch_norms(block) if layer._trainable]
    # A BatchNormalization whose `trainable` is False normalises with its moving statistics
    # and leaves them alone; the private flag is set only for this call (not `trainable`,
    # whose setter would also drop gamma and beta from the trained variables).
    try:
        for layer in norms:
            layer._trainable = False
        return block(x, training=training)
    finally:
        for layer in norms:
            layer._trainable = True
