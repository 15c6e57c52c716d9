"""Command line of the data layer: `rignet data <command> ...` (or `python -m rignet_keras.data`).

Commands:
    download   download and extract voc, sbd, voc_aug (VOC + SBD) or cocostuff10k
    prepare    prepare a TFDS builder's dataset (rignet_voc_aug, rignet_cocostuff10k/171, ...)
               from the folders `download` writes (its manual_dir), downloading what they lack
    validate   check every sample of a split, and report the bad ones
    synthetic  write the synthetic dataset to disk in the VOC layout
    grid       render a grid of synthetic samples (image | mask) to a PNG

`main(argv)` parses the flags and calls one library function; errors about data are printed as one
line (`error: ...`, naming the file or flag) with exit status 2; numeric flags are checked before
any work is done.
"""

import argparse
import logging
import sys

from rignet_keras.data.errors import DatasetError

VALIDATE_SOURCES = ("voc", "voc_aug", "sbd", "cocostuff10k", "synthetic")


def _size(text):
    parts = [int(p) for p in text.lower().replace("x", ",").split(",")]
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected H,W or HxW or N; received {text!r}")
    return tuple(parts)


# (flag, attribute, smallest value) of the numeric flags, checked before any work is done.
_NUMERIC_FLAGS = (
    ("--retries", "retries", 0),
    ("--num-train", "num_train", 0),
    ("--num-val", "num_val", 0),
    ("--num-classes", "num_classes", 2),
    ("--num-samples", "num_samples", 1),
)


def check_numeric_flags(args):
    """Raises `ValueError` naming the first numeric flag of `args` below its smallest value."""
    for flag, attr, low in _NUMERIC_FLAGS:
        value = getattr(args, attr, None)
        if value is not None and value < low:
            raise ValueError(f"{flag} must be at least {low}; received {value}")
    size = getattr(args, "image_size", None)
    if size is not None and min(size) < 1:
        raise ValueError(f"--image-size must be positive; received {size[0]}x{size[1]}")


def build_parser():
    """The argparse parser of `main` (exposed for the project's `rignet` console script)."""
    parser = argparse.ArgumentParser(
        prog="rignet data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("download", help="download and extract a dataset")
    p.add_argument("dataset", choices=("voc", "sbd", "voc_aug", "cocostuff10k"))
    p.add_argument("--data-dir", help="data folder (default $RIGNET_DATA_DIR or ~/.rignet/data)")
    p.add_argument("--url", help="a mirror URL (single-archive datasets only)")
    p.add_argument("--keep-archive", action="store_true", help="keep the downloaded archive")
    p.add_argument("--retries", type=int, default=5, help="resumptions after interruptions")

    p = sub.add_parser("prepare", help="prepare a TFDS dataset from the downloaded folders")
    p.add_argument("name", help="rignet_voc_aug, rignet_cocostuff10k/171, rignet_synthetic, ...")
    p.add_argument(
        "--manual-dir",
        help="the folders `download` wrote (its --data-dir); what it lacks is downloaded",
    )
    p.add_argument("--data-dir", help="TFDS data folder (default ~/tensorflow_datasets)")
    p.add_argument("--on-bad-sample", default="raise", choices=("raise", "skip"))

    p = sub.add_parser("validate", help="check every sample of a split")
    p.add_argument("dataset", choices=VALIDATE_SOURCES)
    p.add_argument("--data-dir", help="data folder (default $RIGNET_DATA_DIR or ~/.rignet/data)")
    p.add_argument("--split", default="train", help="train, val, trainval or test")
    p.add_argument(
        "--label-convention",
        default="171",
        choices=("171", "182"),
        help="COCO-Stuff labels (default 171)",
    )
    p.add_argument("--on-bad-sample", default="raise", choices=("raise", "skip"))

    p = sub.add_parser("synthetic", help="write the synthetic dataset in the VOC layout")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--num-train", type=int, default=1000)
    p.add_argument("--num-val", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", type=_size, default=(96, 96), help="H,W (default 96,96)")
    p.add_argument("--num-classes", type=int, default=5)

    p = sub.add_parser("grid", help="render synthetic samples (image | mask) to a PNG")
    p.add_argument("--output", default="docs/synthetic_samples.png")
    p.add_argument("--num-samples", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    return parser


def _run(args):
    progress = not args.quiet
    if args.command == "download":
        from rignet_keras.data.download import download_dataset
        from rignet_keras.data.sources import default_data_dir

        data_dir = args.data_dir or default_data_dir()
        for path in download_dataset(
            args.dataset,
            data_dir,
            keep_archive=args.keep_archive,
            url=args.url,
            retries=args.retries,
            progress=progress,
        ):
            print(f"ready: {path}")
        return 0

    if args.command == "prepare":
        from rignet_keras.data.builders import prepare_dataset
        from rignet_keras.data.errors import BadSampleLog

        log = BadSampleLog(args.on_bad_sample)
        builder = prepare_dataset(
            args.name, args.data_dir, args.manual_dir, on_bad_sample=log, progress=progress
        )
        splits = ", ".join(f"{k} {v.num_examples}" for k, v in builder.info.splits.items())
        print(f"prepared {args.name} {builder.version} in {builder.data_dir}: {splits}")
        if log.num_skipped:
            print(log.summary())
        return 0

    if args.command == "validate":
        from rignet_keras.data.errors import BadSampleLog
        from rignet_keras.data.sources import get_records
        from rignet_keras.data.validate import validate_dataset

        log = BadSampleLog(args.on_bad_sample)  # counts missing files and bad samples alike
        # The summary is this command's output, printed once below; the library's log line of
        # it is for callers of the Python API (warnings about skipped samples still show).
        logging.getLogger("rignet_keras.data").setLevel(logging.WARNING)
        records, info = get_records(
            args.dataset,
            args.split,
            args.data_dir,
            label_convention=args.label_convention,
            on_bad_sample=log,
        )
        report = validate_dataset(records, info, on_bad_sample=log, progress=progress)
        print(report.summary)
        return 0

    from rignet_keras.data import synthetic

    if args.command == "synthetic":
        config = synthetic.SyntheticConfig(image_size=args.image_size, num_classes=args.num_classes)
        root = synthetic.write_synthetic_voc(
            args.output_dir, args.num_train, args.num_val, args.seed, config
        )
        print(f"wrote {args.num_train} train and {args.num_val} val samples to {root}")
        return 0
    path = synthetic.save_sample_grid(args.output, args.num_samples, args.seed)
    print(f"wrote {path}")
    return 0


def main(argv=None):
    """Runs a data command; returns the exit status (0 ok, 2 bad data, arguments or files)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        check_numeric_flags(args)
        return _run(args)
    except (DatasetError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
