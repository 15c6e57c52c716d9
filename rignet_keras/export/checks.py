"""The checks of a file the export has just written: parity with the Keras model, and latency.

Every written graph (TFLite, SavedModel, ONNX) is run through its format's runner
(`runners`) on the export's parity images; its outputs are compared with the Keras model's
(`parity.compare`, against the export's tolerance for the file's precision: `_Export.check`
fails the export or records the failure) and it is timed (`_Export.latency`). The results are
the manifest's signature entries:

    ui signatures   {name, ui, macs, graph_parameter_count, parity, latency_ms}
    step-wise pair  init: {name, ui: 1, ..., parity (1 iteration)[, latency_ms]};
                    step: {name, ui: None, ..., parity_by_iterations (1..stepwise_iterations,
                    each with num_iterations)[, latency_ms]}

The step-wise graphs run through the runtime's one stepping loop
(`rignet_runtime.stepping`). `build` below is the export being built
(`exporter._Export`): its parity images, Keras references, options and bookkeeping.
"""

from rignet_keras.export import parity
from rignet_keras.export.runners import run_signature
from rignet_runtime import CLASS_MAP, INIT_SIGNATURE, PROBABILITIES, STEP_SIGNATURE
from rignet_runtime.stepping import outputs_by_iteration, stepwise_calls


def check_signatures(build, graphs, signatures, precision, what):
    """Checks ui signatures of a written file on the parity images (all in one call of each;
    a TFLite graph one image per call) and times each on the first image.

    Args:
        build: the export being built.
        graphs: the file's runner (`runners.open_graphs`).
        signatures: (signature name, ui) pairs.
        precision: the file's precision (its tolerance).
        what: `what(name)` -> how a parity failure names the signature.

    Returns:
        The signature entries, in the order of `signatures`.
    """
    entries = []
    for name, ui in signatures:
        outputs = run_signature(graphs, name, build.parity_images)
        figures = parity.compare(build.reference(ui), outputs[PROBABILITIES], outputs[CLASS_MAP])
        entry = build.signature_info(name, ui)
        entry["parity"] = build.check(figures, precision, what(name))
        entry["latency_ms"] = build.latency(graphs.timed_call(name, build.parity_images))
        entries.append(entry)
    return entries


def check_stepwise(build, graph, precision, what, timed):
    """Checks a written step-wise pair after every iteration, 1..`stepwise_iterations`, on the
    parity images (all at once, or one by one where the graph takes one).

    Args:
        build: the export being built.
        graph: the pair as a `stepping.StepwiseGraph` (a runner's `stepwise()`).
        precision: the file's precision.
        what: `what(k)` -> how a parity failure names the pair after k iterations.
        timed: also time `init` and one `step` on the first parity image
            (`stepping.stepwise_calls`).

    Returns:
        [the `init` entry, the `step` entry].
    """
    iterations = build.o["stepwise_iterations"]
    per_iteration = outputs_by_iteration(graph, build.parity_images, iterations)
    by_iterations = []
    for k, outputs in enumerate(per_iteration, 1):
        figures = parity.compare(build.reference(k), outputs[PROBABILITIES], outputs[CLASS_MAP])
        figures = build.check(figures, precision, what(k))
        by_iterations.append(dict(num_iterations=k, **figures))
    init = dict(build.signature_info(INIT_SIGNATURE, 1), parity=by_iterations[0])
    step = dict(build.signature_info(STEP_SIGNATURE, None), parity_by_iterations=by_iterations)
    if timed:
        init_call, step_call = stepwise_calls(graph, build.parity_images[:1])
        init["latency_ms"] = build.latency(init_call)
        step["latency_ms"] = build.latency(step_call)
    return [init, step]
