"""`model.export(path, format=...)` of the tasks: Keras' format names mapped onto the project's
exporter (`rignet_keras.export.export_model`), so that a keras-hub user's call writes every ui,
the step-wise graphs, the parity checks and the manifest."""

from rignet_keras.export import export_model

# `model.export(format=...)` names (Keras') -> the project exporter's formats.
EXPORT_FORMATS = {"litert": "tflite", "onnx": "onnx", "tf_saved_model": "saved_model"}


def export_in_format(network, filepath, format, input_size, **options):
    """`export_model(network, filepath, formats=(format's,), input_size=...)`.

    Args:
        network: the `RIGNet` (a `RIGNetBackbone`) to export.
        filepath: the new output folder.
        format: "litert", "onnx" or "tf_saved_model" (refused in one line otherwise).
        input_size: (H, W) of the exported graphs (refused in one line when None).
        **options: any other `export_model` argument.
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(
            f"format must be one of {tuple(EXPORT_FORMATS)}; received {format!r} "
            "(rignet_keras.export.export_model takes every other option)"
        )
    if input_size is None:
        raise ValueError(
            f"export(format={format!r}) needs input_size=(H, W): nothing sets the graphs' size"
        )
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    return export_model(
        network,
        filepath,
        input_size=tuple(input_size),
        formats=(EXPORT_FORMATS[format],),
        **options,
    )
