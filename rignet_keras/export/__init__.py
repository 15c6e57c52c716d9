"""Deployment of RIGNets: SavedModel, TFLite and ONNX exports, checked, with a manifest.

    from rignet_keras.export import export_model, select_graph
    manifest = export_model(model, "exports/rignet", input_size=(321, 321), uis=(1, 2, 3, 4),
                            precisions=("float32", "float16", "dynamic_int8", "int8"))
    # writes rignet_<precision>.tflite (every ui), the step-wise files and manifest.json;
    # formats=("keras", "saved_model", "tflite", "onnx") for everything
    choice = select_graph(manifest, budget_ms=50)

Names are imported lazily (module `__getattr__`), so importing this package does not import
TensorFlow by itself. The device side (manifest reading, graph choice, segmenters, the wire
format) lives in `rignet_runtime`, which never imports TensorFlow; its names are
re-exported here. See docs/EXPORT.md.
"""

from rignet_keras.lazy import lazy_attributes

_EXPORTS = {
    "export_model": "rignet_keras.export.exporter",
    "load_rignet": "rignet_keras.export.loading",
    "FORMATS": "rignet_keras.export.options",
    "DEFAULT_FORMATS": "rignet_keras.export.defaults",
    "check_export_options": "rignet_keras.export.options",
    "export_saved_model": "rignet_keras.export.saved_model",
    "build_archive": "rignet_keras.export.saved_model",
    "convert_tflite": "rignet_keras.export.tflite",
    "PRECISIONS": "rignet_keras.export.tflite",
    "convert_onnx": "rignet_keras.export.onnx",
    "serving_function": "rignet_keras.export.signatures",
    "stepwise_functions": "rignet_keras.export.signatures",
    "ParityError": "rignet_keras.export.parity",
    "DEFAULT_TOLERANCES": "rignet_keras.export.parity",
    "count_graph_macs": "rignet_keras.profile",
    "synthetic_images": "rignet_keras.export.samples",
    "build_manifest": "rignet_keras.export.manifest",
    "write_manifest": "rignet_keras.export.manifest",
    "add_quality": "rignet_keras.export.quality",
    "collect_validation": "rignet_keras.export.quality",
    "StoppingRule": "rignet_runtime",
    "load_manifest": "rignet_runtime",
    "select_graph": "rignet_runtime",
    "Segmenter": "rignet_runtime",
    "AnytimeSegmenter": "rignet_runtime",
    "RunnerError": "rignet_runtime",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, globals())
