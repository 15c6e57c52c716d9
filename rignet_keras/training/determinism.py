"""Bit-equal training runs (`TrainConfig(deterministic=True)`, `rignet train --deterministic`).

Two runs of the same configuration end with bit-equal weights when TensorFlow runs under three
settings (docs/TRAINING.md, "Reproducibility", has the measurements behind each):

- oneDNN off (`TF_ENABLE_ONEDNN_OPTS=0`): with oneDNN's kernels, some gradients differ in the
  last bit from one process to the next. TensorFlow reads the variable once, when it is
  imported, so only the environment of the process can set it;
- one inter-op thread: with two, the backward pass of a parallel unroll differs from call to
  call when two of its ops run at the same time, even on the same inputs and weights. It can
  be set until TensorFlow's runtime starts (the first op or device query);
- TensorFlow's op determinism (`tf.config.experimental.enable_op_determinism()`): it changes
  nothing on CPU here, and on GPU it selects deterministic kernels and refuses the others.

A library leaves its host alone: `require_determinism` (called by `Trainer` when the option is
on) sets what can still be set in this process and refuses, in one line, what cannot. The
commands may start themselves again with the environment it needs (`restart_for_determinism`).
"""

import os
import sys

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
# Set in the environment of a command that started itself again, so that it does so only once.
RESTARTED_VARIABLE = "RIGNET_DETERMINISTIC_RESTART"


class DeterminismError(ValueError):
    """This process cannot give bit-equal runs; the message says why and what to do."""


def _onednn_enabled():
    """Whether TensorFlow, as imported into this process, uses oneDNN's kernels."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def determinism_problems():
    """What this process lacks for bit-equal runs and can no longer change, one line each
    (empty when it lacks nothing that cannot be set now). Imports TensorFlow."""
    import tensorflow as tf

    problems = []
    if _onednn_enabled():
        problems.append(
            f"oneDNN is on in this process ({ONEDNN_VARIABLE} was not 0 when TensorFlow was "
            "imported); set it to 0 before TensorFlow is imported"
        )
    threads = tf.config.threading.get_inter_op_parallelism_threads()
    count = threads or "the default number of"
    if threads != 1:
        try:
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            problems.append(
                f"TensorFlow's runtime already started with {count} inter-op threads; "
                "call tf.config.threading.set_inter_op_parallelism_threads(1) before "
                "anything runs"
            )
    return problems


def require_determinism():
    """Sets one inter-op thread and op determinism; raises `DeterminismError` (one line) when
    the process cannot give bit-equal runs any more (oneDNN on, runtime started)."""
    problems = determinism_problems()
    if problems:
        raise DeterminismError("train.deterministic: " + "; ".join(problems))
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


def restart_for_determinism(deterministic):
    """For the commands, before they build anything: when `deterministic` is asked for, turns
    oneDNN off (in this process's environment while TensorFlow is not imported yet; otherwise
    by starting the command again, same interpreter and arguments, once) and asks for one
    inter-op thread. What still cannot be had is `require_determinism`'s one-line refusal."""
    if not deterministic:
        return
    if "tensorflow" not in sys.modules:
        os.environ[ONEDNN_VARIABLE] = "0"
    elif _onednn_enabled() and not os.environ.get(RESTARTED_VARIABLE):
        sys.stdout.flush()
        sys.stderr.flush()
        env = dict(os.environ, **{ONEDNN_VARIABLE: "0", RESTARTED_VARIABLE: "1"})
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
    import tensorflow as tf

    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # refused, naming the cause, by require_determinism
