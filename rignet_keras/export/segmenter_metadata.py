"""TFLite segmenter metadata with the class names, as MediaPipe Tasks' `ImageSegmenter` reads it.

MediaPipe reads a model's class names from its TFLite metadata: a `ModelMetadata` flatbuffer
(file identifier "M001") in a model buffer named by the model's "TFLITE_METADATA" metadata entry,
whose output tensor names an associated file of type TENSOR_AXIS_LABELS, and that file in a zip
archive appended to the model (as tflite-support's `MetadataPopulator` writes it).

Written here from the metadata schema (tensorflow/lite/schema/metadata_schema.fbs, the table
fields by slot) with `flatbuffers`: the maintained writers do not work beside TensorFlow as
installed (tflite-support pins protobuf 3.20; MediaPipe 1.2.3's own writer needs its
`mediapipe.tasks.cc` extension, which the wheel lacks). tests/export/test_mediapipe.py reads the
result back with MediaPipe.
"""

import io
import zipfile

import flatbuffers

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
LABELS_FILE = "labels.txt"
MIN_PARSER_VERSION = "1.0.0"
# Enum values of metadata_schema.fbs.
_TENSOR_AXIS_LABELS = 2  # AssociatedFileType
_IMAGE_PROPERTIES = 2  # ContentProperties
_RGB = 1  # ColorSpaceType


def _table(builder, fields):
    """A table of `fields` [(slot, kind, value)] (kind "offset", "uint8" or "int8")."""
    builder.StartObject(max(slot for slot, _, _ in fields) + 1)
    for slot, kind, value in fields:
        if kind == "offset":
            builder.PrependUOffsetTRelativeSlot(slot, value, 0)
        elif kind == "uint8":
            builder.PrependUint8Slot(slot, value, 0)
        else:
            builder.PrependInt8Slot(slot, value, 0)
    return builder.EndObject()


def _vector(builder, offsets):
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _image_content(builder):
    properties = _table(builder, [(0, "int8", _RGB)])
    return _table(builder, [(0, "uint8", _IMAGE_PROPERTIES), (1, "offset", properties)])


def metadata_buffer(name, description, input_name, output_name):
    """The `ModelMetadata` flatbuffer of a segmenter: RGB image in, per-class scores out with
    the class names in `LABELS_FILE`."""
    builder = flatbuffers.Builder(1024)
    labels_name = builder.CreateString(LABELS_FILE)
    labels_description = builder.CreateString("The class names, one a line, by class index.")
    labels = _table(
        builder,
        [
            (0, "offset", labels_name),
            (1, "offset", labels_description),
            (2, "int8", _TENSOR_AXIS_LABELS),
        ],
    )
    input_tensor = _table(
        builder,
        [
            (0, "offset", builder.CreateString(input_name)),
            (1, "offset", builder.CreateString("uint8 RGB image, normalised inside the graph")),
            (3, "offset", _image_content(builder)),
        ],
    )
    output_tensor = _table(
        builder,
        [
            (0, "offset", builder.CreateString(output_name)),
            (1, "offset", builder.CreateString("float32 per-class scores (softmax)")),
            (3, "offset", _image_content(builder)),
            (6, "offset", _vector(builder, [labels])),
        ],
    )
    subgraph = _table(
        builder,
        [
            (2, "offset", _vector(builder, [input_tensor])),
            (3, "offset", _vector(builder, [output_tensor])),
        ],
    )
    model = _table(
        builder,
        [
            (0, "offset", builder.CreateString(name)),
            (1, "offset", builder.CreateString(description)),
            (3, "offset", _vector(builder, [subgraph])),
            (7, "offset", builder.CreateString(MIN_PARSER_VERSION)),
        ],
    )
    builder.Finish(model, file_identifier=METADATA_IDENTIFIER)
    return bytes(builder.Output())


def with_metadata(model_content, metadata, class_names):
    """`model_content` (a TFLite flatbuffer) with `metadata` in a buffer named by a
    "TFLITE_METADATA" entry, and the labels file appended as a zip archive."""
    import numpy as np
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_content, 0))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata, np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != METADATA_NAME] + [entry]
    builder = flatbuffers.Builder(len(model_content) + len(metadata) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        z.writestr(LABELS_FILE, "".join(f"{name}\n" for name in class_names))
    return bytes(builder.Output()) + archive.getvalue()
