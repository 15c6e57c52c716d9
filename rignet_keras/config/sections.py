"""The data, eval and export sections (the train section is `config.train.TrainConfig`), and the
table of every section's class."""

import dataclasses
import inspect

from rignet_keras.config.errors import ConfigError, check_numbers
from rignet_keras.config.train import TrainConfig
from rignet_keras.export.defaults import (
    DEFAULT_GATED_BATCH_NORM,
    DEFAULT_LATENCY_RUNS,
    DEFAULT_LATENCY_WARMUP,
    DEFAULT_MAX_INPUT_CHANNELS,
    DEFAULT_NUM_CALIBRATION_IMAGES,
    DEFAULT_NUM_PARITY_IMAGES,
    DEFAULT_OPSET,
    DEFAULT_PRECISIONS,
    DEFAULT_STEM,
    DEFAULT_STEPWISE_ITERATIONS,
    DEFAULT_TFLITE_LAYOUTS,
    DEFAULT_THREADS,
)

CONFIG_NAME = "run_config.json"
SECTIONS = ("model", "data", "train", "eval", "export")


@dataclasses.dataclass
class DataConfig:
    """Where the data comes from and how it is fed (see `rignet_keras.data.build_dataset`).

    Args:
        source: training dataset ("voc_aug", "voc", "cocostuff10k", "synthetic", or "tfds:<name>").
        train_split: its split.
        eval_source: evaluation dataset; None for `source`.
        eval_split: "val" (VOC), "test" (COCO-Stuff 10k).
        data_dir: the data folder; None for the data layer's default (`$RIGNET_DATA_DIR` or
            `~/.rignet/data`); for "synthetic", None generates the data in memory.
        crop_size: training crop (square side); None for the data layer's default (321, or the
            image size for "synthetic").
        scale_range, flip: training augmentation.
        eval_mode, eval_size, eval_batch_size: evaluation batches (see `build_dataset`).
        label_convention: COCO-Stuff "171" or "182".
        num_train_samples, num_eval_samples: use only the first N samples.
        synthetic: dict of `SyntheticConfig` fields for the in-memory synthetic source.
        on_bad_sample: "raise" (stop naming the file) or "skip" (leave it out, counted).
    """

    source: str = "voc_aug"
    train_split: str = "train"
    eval_source: str | None = None
    eval_split: str = "val"
    data_dir: str | None = None
    crop_size: int | None = 321
    scale_range: tuple = (0.5, 2.0)
    flip: bool = True
    eval_mode: str = "pad"
    eval_size: tuple | None = None
    eval_batch_size: int = 1
    label_convention: str = "171"
    num_train_samples: int | None = None
    num_eval_samples: int | None = None
    synthetic: dict | None = None
    on_bad_sample: str = "raise"

    def __post_init__(self):
        check_numbers(
            "data",
            self,
            {
                "crop_size": 1,
                "eval_size": 1,
                "eval_batch_size": 1,
                "num_train_samples": 1,
                "num_eval_samples": 1,
            },
        )


@dataclasses.dataclass
class EvalConfig:
    """How to evaluate a run.

    Args:
        iterations: the ui values; None for 1..ui (the anytime curve).
        flip, scales: flip and multi-scale testing.
        num_visualize: images to draw into `eval/predictions/` (0 for none).
        checkpoint: "best" or "last": the weights evaluated.
        max_batches: evaluate only this many batches.
        validate: validate (and pick "best") during training; False trains without validation.
    """

    iterations: tuple | None = None
    flip: bool = False
    scales: tuple = (1.0,)
    num_visualize: int = 8
    checkpoint: str = "best"
    max_batches: int | None = None
    validate: bool = True

    def __post_init__(self):
        check_numbers("eval", self, {"iterations": 1, "num_visualize": 0, "max_batches": 1})
        if any(scale <= 0 for scale in self.scales):
            raise ConfigError(f"eval.scales must be positive; received {self.scales!r}")
        if self.checkpoint not in ("best", "last"):
            raise ConfigError(
                f"eval.checkpoint must be 'best' or 'last'; received {self.checkpoint!r}"
            )


@dataclasses.dataclass
class ExportConfig:
    """What to export after evaluation, and how: every option of
    `rignet_keras.export.export_model` that a file can hold, under the same name and with the
    same default (`tests/training/test_config.py` compares the two), except:

    - `formats` is empty by default: a run exports nothing unless asked (the export script's
      base sets `DEFAULT_FORMATS`);
    - `input_size` is a square side, None for the run's evaluation size, else its crop size;
    - `output_dir` is the export folder, None for `<run>/export`;
    - `quality_images` is `export_model`'s `validation` and `num_validation_images` together:
      score every exported file on the first N images of the run's evaluation source (its val
      split): "synthetic" (the run's own synthetic set), "voc" or "voc_aug" (VOC val under
      `data.data_dir`); 0 (default) for none.

    The options that take data rather than values (`representative_data`, `parity_data`) are
    the export's synthetic images in a run, and folders on the export script's command line.
    """

    formats: tuple = ()
    precisions: tuple = DEFAULT_PRECISIONS
    tflite_layouts: tuple = DEFAULT_TFLITE_LAYOUTS
    uis: tuple | None = None
    serving_ui: int | None = None
    stepwise: bool | None = None
    stepwise_iterations: int = DEFAULT_STEPWISE_ITERATIONS
    stepwise_precisions: tuple | None = None
    tflite_max_conv_input_channels: int | None = DEFAULT_MAX_INPUT_CHANNELS
    tflite_gated_batch_norm: str = DEFAULT_GATED_BATCH_NORM
    class_names: tuple | None = None
    num_calibration_images: int = DEFAULT_NUM_CALIBRATION_IMAGES
    num_parity_images: int = DEFAULT_NUM_PARITY_IMAGES
    tolerances: dict | None = None
    strict: bool = True
    latency_runs: int = DEFAULT_LATENCY_RUNS
    latency_warmup: int = DEFAULT_LATENCY_WARMUP
    threads: int = DEFAULT_THREADS
    opset: int = DEFAULT_OPSET
    isolate: bool = False
    stem: str = DEFAULT_STEM
    input_size: int | None = None
    output_dir: str | None = None
    quality_images: int = 0

    def __post_init__(self):
        check_numbers(
            "export", self, {"input_size": 1, "quality_images": 0, "uis": 1, "serving_ui": 1}
        )
        if self.formats:  # the export's own check, before any training
            from rignet_keras.export.options import check_export_options

            checked = inspect.signature(check_export_options).parameters
            options = {k: v for k, v in self.export_options().items() if k in checked}
            try:
                check_export_options(**options)
            except ValueError as error:
                raise ConfigError(f"export.{error}") from None

    def export_options(self):
        """The fields that are `export_model` keyword arguments as they are: all but
        `input_size`, `output_dir` and `quality_images` (sequences as tuples)."""
        options = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("input_size", "output_dir", "quality_images")
        }
        for name in ("formats", "precisions", "tflite_layouts", "stepwise_precisions", "uis"):
            if options[name] is not None:
                options[name] = tuple(options[name])
        return options


# The evaluation sources whose val split the export's quality scores can read.
QUALITY_SOURCES = ("synthetic", "voc", "voc_aug")


def check_export_quality(data, export):
    """Refuses `export.quality_images` where the export cannot score: no export, an evaluation
    source other than `QUALITY_SOURCES`, or an evaluation split other than val."""
    if not export.quality_images:
        return
    source = data.eval_source or data.source
    if not export.formats:
        raise ConfigError(
            f"export.quality_images={export.quality_images} needs an export: export.formats is "
            "empty"
        )
    if source not in QUALITY_SOURCES:
        raise ConfigError(
            f"export.quality_images needs an evaluation source in {QUALITY_SOURCES}; the run's "
            f"is {source!r} (score its export with rignet_keras.export.add_quality instead)"
        )
    if data.eval_split != "val":
        raise ConfigError(
            f"export.quality_images scores the val split; data.eval_split is {data.eval_split!r}"
        )


SECTION_CLASSES = {
    "data": DataConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "export": ExportConfig,
}


def section_class(section):
    """The dataclass of a section other than `model` (which is a dict)."""
    return SECTION_CLASSES[section]
