"""What the rignet-keras TFDS builders share: the features (uint8 RGB image, uint8 mask with 255
void, the image id), the label metadata stored in the builder's info, and the example generator
that checks every sample the way the training pipeline does."""

import inspect

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from rignet_keras.data.errors import DatasetError, bad_sample_log
from rignet_keras.data.masks import check_labels, check_size, decode_image_bytes, decode_mask

IMAGE_KEY, MASK_KEY, ID_KEY = "image", "mask", "image/id"


class RignetBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """The base of the rignet builders (not registered itself).

    `code_path` is the class's file: TFDS 4.9.10's own lookup reaches for `importlib_resources`,
    which it declares only for Python < 3.9, and fails without it for a builder in a package.
    `on_bad_sample` ("raise", "skip" or a `BadSampleLog`) is what a bad sample in the inputs does.
    """

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        return epath.Path(inspect.getfile(cls))

    def __init__(self, *, on_bad_sample="raise", **kwargs):
        self.on_bad_sample = on_bad_sample
        super().__init__(**kwargs)


def segmentation_features(image_format=None):
    """The features of every builder: `image` uint8 (H, W, 3), `mask` uint8 (H, W, 1) (class ids,
    255 = void) and `image/id` (the dataset's own id, e.g. `2007_000032`)."""
    return tfds.features.FeaturesDict(
        {
            IMAGE_KEY: tfds.features.Image(shape=(None, None, 3), encoding_format=image_format),
            MASK_KEY: tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
            ID_KEY: tfds.features.Text(),
        }
    )


def label_metadata(info, **extra):
    """The `DatasetInfo` of `rignet_keras.data.info` as TFDS metadata (`info.metadata`):
    class_names, num_classes, ignore_label, label_convention, name; and the JSON-ready `extra`
    entries (the synthetic set's "synthetic": its `SyntheticConfig` as a dict)."""
    return tfds.core.MetadataDict({**info.to_dict(), **extra})


def builder_info(builder, info, description, homepage, citation="", **extra_metadata):
    """The `tfds.core.DatasetInfo` of a builder over `info` (a rignet `DatasetInfo`), with
    `extra_metadata` beside the labels in its metadata."""
    return tfds.core.DatasetInfo(
        builder=builder,
        description=description,
        features=segmentation_features(getattr(builder, "IMAGE_FORMAT", None)),
        supervised_keys=(IMAGE_KEY, MASK_KEY),
        homepage=homepage,
        citation=citation,
        metadata=label_metadata(info, **extra_metadata),
    )


def check_record(record, info):
    """(image bytes, mask uint8 (H, W)) of a `Record` after the checks of the training pipeline:
    the image decodes (TensorFlow's decoder, JPEG scans checked), the mask reads, fits the image
    and holds only known labels. Raises `DatasetError` naming the file."""
    try:
        with open(record.image_path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DatasetError(f"cannot read image {record.image_path}: {e}") from e
    image_hw = decode_image_bytes(data, record.image_path).shape[:2]
    mask = decode_mask(record.mask_path, record.mask_format)
    check_size(image_hw, mask, record.image_path, record.mask_path)
    check_labels(mask, info.num_classes, record.mask_path, info.ignore_label)
    return data, mask


def record_examples(records, info, on_bad_sample):
    """Yields (id, example) for each valid record; a bad one raises (`on_bad_sample="raise"`,
    naming its file) or is skipped and counted in the `BadSampleLog` (`"skip"` or a log)."""
    log = bad_sample_log(on_bad_sample)
    for record in records:
        try:
            data, mask = check_record(record, info)
        except DatasetError as e:
            log.add(record.id, e)
            continue
        yield record.id, {IMAGE_KEY: data, MASK_KEY: mask[..., None], ID_KEY: record.id}


def array_example(sample_id, image, mask):
    """An example from arrays (the synthetic set): image uint8 (H, W, 3), mask uint8 (H, W)."""
    return {
        IMAGE_KEY: np.asarray(image, np.uint8),
        MASK_KEY: np.asarray(mask, np.uint8)[..., None],
        ID_KEY: sample_id,
    }
