"""The MACs and parameter counts of every signature an export writes, for the manifest.

Each signature's function (`signatures.serving_function`, `signatures.stepwise_functions`) is
traced at batch 1, so that no dimension is unknown, and counted from its graph
(`rignet_keras.profile`); a dynamic-size export is counted at the sample size.
"""

import tensorflow as tf

from rignet_keras.export.signatures import (
    SERVING_DEFAULT,
    image_spec,
    serving_function,
    stepwise_functions,
)
from rignet_keras.profile import count_graph_macs, count_graph_parameters
from rignet_runtime import INIT_SIGNATURE, STEP_SIGNATURE, ui_signature


def count_graphs(model, ui_names, options, sample_size):
    """{signature name: {"macs", "graph_parameter_count"[, "macs_input_size"]}}.

    Args:
        model: the `RIGNet` being exported.
        ui_names: {signature name: ui} of the exported ui signatures.
        options: the export's options (`input_size`, `uis`, `serving_ui`, `stepwise`).
        sample_size: (H, W) a dynamic-size export is counted at (recorded as
            "macs_input_size").
    """
    size = options["input_size"] or sample_size
    serving_ui = options["serving_ui"]
    serving = {**ui_names, SERVING_DEFAULT: serving_ui}
    functions = {
        name: (serving_function(model, ui), [image_spec(size, 1)])
        for name, ui in serving.items()
        if name in ui_names or serving_ui not in options["uis"]
    }
    if options["stepwise"]:
        pair = stepwise_functions(model, size, batch_size=1)
        functions.update({k: pair[k] for k in (INIT_SIGNATURE, STEP_SIGNATURE)})
    info = {}
    for name, (function, signature) in functions.items():
        concrete = tf.function(function, input_signature=signature).get_concrete_function()
        info[name] = {
            "macs": count_graph_macs(concrete),
            "graph_parameter_count": count_graph_parameters(concrete),
        }
    if SERVING_DEFAULT not in functions:  # an alias of the serving ui's signature
        info[SERVING_DEFAULT] = info[ui_signature(serving_ui)]
    if options["input_size"] is None:
        for name in serving:
            info[name]["macs_input_size"] = list(sample_size)
    return info
