"""Training input pipeline, images/second: the TFDS builder's dataset against the direct path
(the downloaded folders, decoded in Python), the same images and the same augmentation, one
machine, one run.

Writes `--num-images` synthetic 500x375 JPEG images (quality 95) with palette-PNG masks in the VOC
layout (and empty SBD lists, so that voc_aug train is the VOC train list), then prepares the
`rignet_voc_aug` TFDS builder from them (`manual_dir` = that folder; it keeps the original JPEG
bytes); the direct path reads the folder itself ("voc_aug"). Each epoch is
`build_dataset(..., training=True)` at crop 321 (scale 0.5-2.0, pad, crop, flip, "caffe"
normalisation), seeded; after one warm-up epoch of each, `--rounds` rounds time one epoch of
each path, the order alternating, so that load on the shared machine falls on both alike.

    python -m bench.input_pipeline [--num-images 200] [--rounds 5] [--batch-size 4]

Results: bench/results/input_pipeline.json (machine, date, command, per-round rates, median and
spread of each path). The comparison with the TFRecord shards that the TFDS path replaced is
bench/results/input_pipeline_tfrecord_vs_tfds*.json (two runs of this bench before that format was
removed).
"""

import datetime
import os
import sys
import tempfile
import time

from bench.common import bench_parser, command_line, machine, median, spread, write_json


def epoch_rate(ds):
    """Images/second of one pass over `ds`."""
    count, start = 0, time.perf_counter()
    for images, _ in ds:
        count += int(images.shape[0])
    return count / (time.perf_counter() - start)


def prepare(folder, num_images):
    """Writes the images and prepares the TFDS dataset; returns ({path: (source, data_dir)},
    seconds of preparation each)."""
    import tensorflow_datasets as tfds

    import rignet_keras.data.builders  # noqa: F401 (registers rignet_voc_aug)
    from rignet_keras.data import SyntheticConfig, write_synthetic_voc
    from rignet_keras.data.voc_layout import VOCLayoutWriter

    config = SyntheticConfig(image_size=(375, 500))
    write_synthetic_voc(folder, num_train=num_images, num_val=2, seed=0, config=config)
    VOCLayoutWriter(folder).sbd_lists({"train": [], "val": []})
    seconds = {"direct": 0.0}
    t = time.perf_counter()
    tfds.disable_progress_bar()
    data_dir = os.path.join(folder, "tfds")
    builder = tfds.builder("rignet_voc_aug", data_dir=data_dir)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=folder))
    seconds["tfds"] = time.perf_counter() - t
    return {"tfds": ("tfds:rignet_voc_aug", data_dir), "direct": ("voc_aug", folder)}, seconds


def main(argv=None):
    parser = bench_parser(
        __doc__,
        rounds=5,
        output=os.path.join("bench", "results", "input_pipeline.json"),
        helps={"rounds": "timed rounds of one epoch per path (default: %(default)s)"},
    )
    parser.add_argument("--num-images", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--crop", type=int, default=321)
    args = parser.parse_args(argv)

    from rignet_keras.data import build_dataset

    with tempfile.TemporaryDirectory() as tmp:
        paths, prepare_s = prepare(tmp, args.num_images)
        common = dict(
            batch_size=args.batch_size, training=True, crop_size=(args.crop, args.crop), seed=0
        )
        datasets = {
            name: build_dataset(source, "train", data_dir=data_dir, **common)
            for name, (source, data_dir) in paths.items()
        }
        for ds in datasets.values():  # warm-up: tracing, autotuning, file cache
            epoch_rate(ds)
        load_before = os.getloadavg()
        rates = {name: [] for name in datasets}
        for r in range(args.rounds):
            order = list(datasets) if r % 2 == 0 else list(reversed(datasets))
            for name in order:
                rates[name].append(epoch_rate(datasets[name]))
        load_after = os.getloadavg()

    results = {}
    for name, values in rates.items():
        results[name] = {
            "images_per_s_median": round(median(values), 1),
            "images_per_s_spread": spread(values),
            "images_per_s_runs": [round(v, 1) for v in values],
            "prepare_seconds": round(prepare_s[name], 1),
        }
        runs_text = ", ".join(f"{v:.1f}" for v in values)
        print(f"{name:9s} {median(values):7.1f} images/s (runs: {runs_text})")
    out = {
        "benchmark": "training input pipeline images/s: the TFDS builder vs the direct path",
        "setup": {
            "images": args.num_images,
            "image_size_hw": [375, 500],
            "format": "the same JPEG (quality 95) bytes and palette-PNG masks in both",
            "crop": [args.crop, args.crop],
            "batch_size": args.batch_size,
            "augmentation": "scale 0.5-2.0, pad (mean/255), random crop, flip; caffe normalise",
            "warmup_epochs": 1,
            "rounds": args.rounds,
        },
        "results": results,
        "machine": dict(
            machine(),
            nproc=len(os.sched_getaffinity(0)),
            load_average_1min_before_after=[round(load_before[0], 2), round(load_after[0], 2)],
        ),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command_line("input_pipeline", argv),
    }
    write_json(args.output, out)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    sys.exit(main())
