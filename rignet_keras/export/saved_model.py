"""SavedModel export: one signature per ui, `serving_default`, and optionally `init`/`step`.

Written with `keras.export.ExportArchive` (which saves the weights correctly; a Keras 3 model
wrapped in a plain `tf.Module` once converted to TFLite without
them: compare every export with the Keras model, as `rignet_keras.export.parity` does).
"""

import os

import keras

from rignet_keras.export.files import atomic_directory, previous_saved_model_reason
from rignet_keras.export.layout import plain_depthwise_convolutions
from rignet_keras.export.signatures import (
    SERVING_DEFAULT,
    check_input_size,
    check_rignet,
    image_spec,
    serving_function,
    stepwise_functions,
)
from rignet_keras.models.arguments import check_num_iterations
from rignet_runtime import INIT_SIGNATURE, STEP_SIGNATURE, ui_signature


def check_uis(uis, model=None):
    """Normalises a ui list: sorted unique ints >= 1; None -> 1..model.num_iterations."""
    if uis is None:
        if model is None:
            raise ValueError("uis must be given")
        return list(range(1, model.num_iterations + 1))
    if isinstance(uis, int) and not isinstance(uis, bool):
        uis = [uis]
    uis = list(uis)
    if not uis:
        raise ValueError("uis must name at least one number of iterations")
    for ui in uis:
        check_num_iterations(ui, "every ui")
    return sorted(set(uis))


def build_archive(model, uis, input_size=None, serving_ui=None, stepwise=False, batch_size=None):
    """Builds the `ExportArchive` of a RIGNet's serving signatures (not yet written).

    Args:
        model: a built `RIGNet`.
        uis: the ui values to export, one signature `ui_<k>` each.
        input_size: (H, W) for a fixed size, None for dynamic height and width.
        serving_ui: the ui of `serving_default`; None: the largest of `uis`.
        stepwise: add the `init` and `step` signatures (needs a fixed `input_size`).
        batch_size: the batch dimension; None (default) is dynamic.

    Returns:
        (archive, endpoints): the archive and {signature name: tf.function}. Depthwise
        convolutions written as grouped ones are traced as depthwise ones
        (`layout.plain_depthwise_convolutions`).
    """
    check_rignet(model)
    uis = check_uis(uis, model)
    input_size = check_input_size(input_size)
    serving_ui = max(uis) if serving_ui is None else check_num_iterations(serving_ui, "serving_ui")
    if not model.built:
        model.build((None,) + (input_size or (None, None)) + (3,))
    with plain_depthwise_convolutions(model):
        return _trace_archive(model, uis, input_size, serving_ui, stepwise, batch_size)


def _trace_archive(model, uis, input_size, serving_ui, stepwise, batch_size):
    archive = keras.export.ExportArchive()
    archive.track(model)
    endpoints = {}
    spec = [image_spec(input_size, batch_size)]
    # The first endpoint registered also becomes `serving_default` (ExportArchive's rule), so
    # registering the serving ui first gives it that alias without tracing it twice.
    for ui in sorted(uis, key=lambda u: u != serving_ui):
        name = ui_signature(ui)
        endpoints[name] = archive.add_endpoint(name, serving_function(model, ui), spec)
    if serving_ui not in uis:
        endpoints[SERVING_DEFAULT] = archive.add_endpoint(
            SERVING_DEFAULT, serving_function(model, serving_ui), spec
        )
    else:
        endpoints[SERVING_DEFAULT] = endpoints[ui_signature(serving_ui)]
    if stepwise:
        functions = stepwise_functions(model, input_size, batch_size)
        for name in (INIT_SIGNATURE, STEP_SIGNATURE):
            fn, signature = functions[name]
            endpoints[name] = archive.add_endpoint(name, fn, signature)
    return archive, endpoints


def export_saved_model(
    model,
    path,
    uis=None,
    input_size=None,
    serving_ui=None,
    stepwise=False,
    batch_size=None,
    overwrite=False,
):
    """Writes a RIGNet as a SavedModel with one signature per ui (see `build_archive`).

    The SavedModel is written to a temporary sibling folder and moved into place.

    Returns:
        {signature name: tf.function} of the endpoints (traced; usable for MAC counts).
    """
    archive, endpoints = build_archive(model, uis, input_size, serving_ui, stepwise, batch_size)
    with atomic_directory(path, overwrite, previous_saved_model_reason) as tmp:
        archive.write_out(os.path.join(tmp, ""), verbose=False)
    return endpoints
