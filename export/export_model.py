"""Export a RIGNet `.keras` file to TFLite (and on request Keras, SavedModel, ONNX), checked.

    python export/export_model.py model.keras exports/rignet --input-size 321 321 \
        --uis 1 2 3 4 --precisions float32 float16 dynamic_int8 int8 int8_float_gates

By default it writes what a device needs: one TFLite file holding every ui, the step-wise file
and the manifest (`--formats keras saved_model tflite onnx --layouts multi per_ui` for
everything). Every file is run on sample images and compared with the Keras model before the
export folder is moved into place; see docs/EXPORT.md. Every flag is checked before the model
is loaded. This script only parses flags and calls `rignet_keras.export.export_model`.

The export's options are the export section of the run configuration (`ExportConfig`): each
option flag is an alias of `--set export.<field>=<value>` (`--layouts` of
`export.tflite_layouts`, `--no-strict` of `export.strict=false`, ...), over this script's base
(`SCRIPT_BASE`: the default formats, each conversion in a fresh process); `--print-config`
prints the resolved section and exits. The other arguments name files: the model, the folder,
weights, image folders, a validation source.
"""

import argparse
import dataclasses
import json
import logging
import os
import sys

from rignet_cli.tensorflow_logs import quiet_tensorflow

quiet_tensorflow()  # this command's choice: TensorFlow's C++ log lines off

from rignet_keras.export.defaults import (  # noqa: E402
    DEFAULT_FORMATS,
    DEFAULT_LATENCY_RUNS,
    DEFAULT_LATENCY_WARMUP,
    DEFAULT_NUM_CALIBRATION_IMAGES,
    DEFAULT_NUM_PARITY_IMAGES,
    DEFAULT_OPSET,
    DEFAULT_STEM,
    DEFAULT_STEPWISE_ITERATIONS,
    DEFAULT_THREADS,
    DEFAULT_VALIDATION_IMAGES,
)

# What this script changes in the export section's defaults: it exports (the section's own
# default is a run that exports nothing), and it converts in fresh processes, so that a large
# model's conversion memory goes back to the system.
SCRIPT_BASE = {"formats": DEFAULT_FORMATS, "isolate": True}
# The option flags and the export section's fields they set (argparse dest -> field).
FLAG_FIELDS = {
    "uis": "uis",
    "serving_ui": "serving_ui",
    "formats": "formats",
    "precisions": "precisions",
    "layouts": "tflite_layouts",
    "stepwise": "stepwise",
    "stepwise_iterations": "stepwise_iterations",
    "num_calibration_images": "num_calibration_images",
    "num_parity_images": "num_parity_images",
    "latency_runs": "latency_runs",
    "latency_warmup": "latency_warmup",
    "threads": "threads",
    "opset": "opset",
    "tflite_max_conv_input_channels": "tflite_max_conv_input_channels",
    "no_isolate": "isolate",
    "no_strict": "strict",
    "stem": "stem",
}


def _count(minimum):
    """An argparse type: an int >= `minimum` (argparse names the flag in its error)."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an int >= {minimum}; got {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an int >= {minimum}; got {value}")
        return value

    parse.__name__ = f"int >= {minimum}"
    return parse


def build_parser():
    from rignet_keras.config.flags import add_set_argument

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a .keras file holding a rignet_keras.RIGNet")
    parser.add_argument("output_dir", help="the export folder (created; see --overwrite)")
    parser.add_argument("--weights", help="a .weights.h5 file to load into the model first")
    parser.add_argument(
        "--input-size",
        type=_count(1),
        nargs=2,
        metavar=("HEIGHT", "WIDTH"),
        help="fixed input size; omit for a dynamic size (SavedModel/ONNX only)",
    )
    parser.add_argument(
        "--uis",
        type=_count(1),
        nargs="+",
        help="iterations to export (default 1..the model's num_iterations)",
    )
    parser.add_argument("--serving-ui", type=_count(1), help="the ui of serving_default")
    parser.add_argument(
        "--formats",
        nargs="+",
        help="keras saved_model tflite onnx (default: tflite)",
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        help="TFLite: float32 float16 dynamic_int8 int8 int8_float_gates (default: float32)",
    )
    parser.add_argument(
        "--layouts",
        nargs="+",
        help="TFLite files: multi (every ui in one file; default), per_ui and/or mediapipe "
        "(one MediaPipe-ready file per ui, with the class names)",
    )
    stepwise = parser.add_mutually_exclusive_group()
    stepwise.add_argument(
        "--stepwise",
        dest="stepwise",
        action="store_true",
        default=None,
        help="write the step-wise init/step graphs (default: when supported)",
    )
    stepwise.add_argument("--no-stepwise", dest="stepwise", action="store_false")
    parser.add_argument(
        "--stepwise-iterations",
        type=_count(1),
        help=f"check the step-wise graphs for 1..N iterations (default "
        f"{DEFAULT_STEPWISE_ITERATIONS})",
    )
    parser.add_argument(
        "--representative-data",
        metavar="FOLDER",
        help="images to calibrate int8 with (default: synthetic images)",
    )
    parser.add_argument(
        "--num-calibration-images",
        type=_count(1),
        help=f"default {DEFAULT_NUM_CALIBRATION_IMAGES}",
    )
    parser.add_argument(
        "--parity-data",
        metavar="FOLDER",
        help="images to check parity on (default: synthetic images)",
    )
    parser.add_argument(
        "--num-parity-images", type=_count(1), help=f"default {DEFAULT_NUM_PARITY_IMAGES}"
    )
    parser.add_argument(
        "--validation",
        metavar="DIR",
        help="score every exported file on this validation set and record its mIoU in the "
        "manifest: a VOC-layout folder (its val split) or 'synthetic' (the synthetic task the "
        "model's run trained on, read from RUN/run_config.json beside RUN/checkpoints/)",
    )
    parser.add_argument(
        "--validation-images",
        type=_count(1),
        help=f"with --validation: how many images to score on (default "
        f"{DEFAULT_VALIDATION_IMAGES})",
    )
    parser.add_argument(
        "--latency-runs",
        type=_count(0),
        help=f"timed runs per signature for the manifest (default {DEFAULT_LATENCY_RUNS}; 0: none)",
    )
    parser.add_argument(
        "--latency-warmup",
        type=_count(0),
        help=f"untimed runs first (default {DEFAULT_LATENCY_WARMUP})",
    )
    parser.add_argument("--threads", type=_count(1), help=f"default {DEFAULT_THREADS}")
    parser.add_argument("--opset", type=int, help=f"ONNX opset (13 to 18; default {DEFAULT_OPSET})")
    parser.add_argument(
        "--tflite-max-conv-input-channels",
        type=_count(0),
        help="TFLite graphs split wider k x k convolutions into sums over this many input "
        "channels (faster on XNNPACK); 0: no split",
    )
    parser.add_argument(
        "--no-isolate",
        action="store_true",
        default=None,
        help="convert in this process (default: a fresh process per conversion)",
    )
    parser.add_argument(
        "--no-strict",
        action="store_true",
        default=None,
        help="record parity failures in the manifest instead of failing",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace output_dir")
    parser.add_argument("--stem", help=f"file name prefix (default {DEFAULT_STEM})")
    add_set_argument(
        parser,
        "set a field of the export section (the flags above are aliases of it)",
        metavar="export.KEY=VALUE",
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved export section and exit"
    )
    return parser


def _flag_value(dest, value):
    """A flag's value as its field holds it."""
    if dest in ("no_isolate", "no_strict"):
        return not value
    if dest == "tflite_max_conv_input_channels":
        return value or None  # 0: no split
    return tuple(value) if isinstance(value, list) else value


def export_section(args):
    """The export section (`ExportConfig`) of the parsed flags: `SCRIPT_BASE`, then the option
    flags given, then `--set`. Raises `ConfigError` naming a field it cannot honour."""
    from rignet_keras.config import ConfigError, ExportConfig
    from rignet_keras.config.overrides import check_value, parse_assignment, split_key

    pairs = [
        (f"export.{field}", _flag_value(dest, getattr(args, dest)))
        for dest, field in FLAG_FIELDS.items()
        if getattr(args, dest) is not None
    ]
    pairs += [parse_assignment(text) for group in args.overrides for text in group]
    fields = dict(SCRIPT_BASE)
    for key, value in pairs:
        section, field = split_key(key)
        if section != "export":
            raise ConfigError(f"--set {key}: this script sets the export section only")
        fields[field] = check_value(section, field, value)
    try:
        return ExportConfig(**fields)
    except (TypeError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"export: {error}") from None


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.validation_images is not None and args.validation is None:
        parser.error("--validation-images needs --validation")
    if args.validation is not None and args.input_size is None:
        parser.error("--validation needs --input-size (quality is measured on fixed-size graphs)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("tensorflow", "tf2onnx", "absl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    try:
        # The section's own check is `check_export_options`: every option is checked here,
        # before the model is loaded, and these are the options the export then takes.
        section = export_section(args)
        if args.print_config:
            print(json.dumps({"export": dataclasses.asdict(section)}, indent=2))
            return 0
        from rignet_keras.export import export_model, load_rignet
        from rignet_keras.export.samples import images_from_folder

        options = section.export_options()
        if args.validation not in (None, "synthetic") and not os.path.isdir(args.validation):
            raise ValueError(f"--validation folder {args.validation!r} does not exist")
        validation = args.validation
        if validation == "synthetic":  # the run's own synthetic task, or a refusal
            from rignet_keras.training.experiment import synthetic_quality_source

            validation = synthetic_quality_source(args.model)
        model = load_rignet(args.model, args.weights)
        size = tuple(args.input_size) if args.input_size else None
        data_size = size or (97, 89)
        representative = parity_data = None
        if args.representative_data:
            representative = images_from_folder(
                args.representative_data, data_size, options["num_calibration_images"]
            )
        if args.parity_data:
            parity_data = images_from_folder(
                args.parity_data, data_size, options["num_parity_images"]
            )
        manifest = export_model(
            model,
            args.output_dir,
            input_size=size,
            representative_data=representative,
            parity_data=parity_data,
            overwrite=args.overwrite,
            source=os.path.abspath(args.model),
            validation=validation,
            num_validation_images=args.validation_images or DEFAULT_VALIDATION_IMAGES,
            **options,
        )
    except (ValueError, TypeError, FileExistsError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(manifest['artifacts'])} artefacts and manifest.json to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
