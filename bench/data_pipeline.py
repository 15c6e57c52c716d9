"""Throughput of the training input pipeline (images/second), TFRecord path and direct path.

Writes ~200 synthetic 500x375 JPEG images with palette-PNG masks in the VOC layout to a temporary
folder, converts them to TFRecord shards, then times `build_dataset(..., training=True)` at crop
321x321 (random scale 0.5-2.0, pad, crop, flip, "caffe" normalisation): one warm-up epoch, then
`--runs` timed epochs; the median is reported. Results go to bench/results/data_pipeline.json with
the machine, the versions, the date and the command.

    python -m bench.data_pipeline [--num-images 200] [--runs 5] [--batch-size 4]
"""

import datetime
import os
import sys
import tempfile
import time

from bench.common import bench_parser, command_line, machine, median, write_json
from rignet_keras.data import (
    SyntheticConfig,
    build_dataset,
    convert_to_tfrecord,
    get_records,
    write_synthetic_voc,
)

# The reference rate of CPU training: a ResNet-50 FCN step, batch 4, crop 321, fit + SGD, fp32,
# on a 2-core machine (docs/DATA.md compares the pipeline with it).
TRAIN_STEP_IMAGES_PER_S = 2.35


def time_epochs(make_dataset, runs):
    """(images/second, CPU ms/image) of each of `runs` timed epochs, after one warm-up epoch.

    The CPU time (all threads of this process) per image does not depend on what else runs on
    the machine, unlike the wall-clock rate.
    """
    ds = make_dataset()
    for _ in ds:  # warm-up: tracing, autotuning, file cache
        pass
    rates, cpu_ms = [], []
    for _ in range(runs):
        count = 0
        start, start_cpu = time.perf_counter(), time.process_time()
        for images, _ in ds:
            count += int(images.shape[0])
        rates.append(count / (time.perf_counter() - start))
        cpu_ms.append(1000 * (time.process_time() - start_cpu) / count)
    return rates, cpu_ms


def main(argv=None):
    parser = bench_parser(
        __doc__,
        runs=5,
        output=os.path.join("bench", "results", "data_pipeline.json"),
        helps={"runs": "timed epochs, after one warm-up epoch (default: %(default)s)"},
    )
    parser.add_argument("--num-images", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--crop", type=int, default=321)
    args = parser.parse_args(argv)

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        config = SyntheticConfig(image_size=(375, 500))
        write_synthetic_voc(tmp, num_train=args.num_images, num_val=0, seed=0, config=config)
        records, info = get_records("voc", "train", tmp)
        shards = os.path.join(tmp, "shards")
        convert_to_tfrecord(records, shards, info, split="train", num_shards=4, progress=False)
        prep_s = time.perf_counter() - t0
        common = dict(batch_size=args.batch_size, training=True, crop_size=(args.crop, args.crop))
        variants = {
            "tfrecord": lambda: build_dataset(shards, "train", **common),
            "tfrecord_seeded": lambda: build_dataset(shards, "train", seed=0, **common),
            "direct": lambda: build_dataset("voc", "train", data_dir=tmp, **common),
        }
        load_before = os.getloadavg()
        for name, make in variants.items():
            rates, cpu_ms = time_epochs(make, args.runs)
            rate, cpu = median(rates), median(cpu_ms)
            results[name] = {
                "images_per_s_median": round(rate, 1),
                "images_per_s_runs": [round(r, 1) for r in rates],
                "cpu_ms_per_image_median": round(cpu, 1),
                "ratio_to_training_step": round(rate / TRAIN_STEP_IMAGES_PER_S, 1),
            }
            runs_text = ", ".join(f"{r:.1f}" for r in rates)
            print(
                f"{name:16s} {rate:7.1f} images/s (runs: {runs_text}), "
                f"{cpu:.1f} CPU ms/image; "
                f"{rate / TRAIN_STEP_IMAGES_PER_S:.0f}x the training step"
            )

    out = {
        "benchmark": "training input pipeline, images/second (median of timed epochs)",
        "setup": {
            "images": args.num_images,
            "image_size_hw": [375, 500],
            "format": "JPEG (quality 95) + palette PNG masks, VOC layout; 4 TFRecord shards",
            "crop": [args.crop, args.crop],
            "batch_size": args.batch_size,
            "augmentation": "scale 0.5-2.0, pad (mean/255), random crop, flip; caffe normalise",
            "warmup_epochs": 1,
            "timed_epochs": args.runs,
            "prepare_seconds": round(prep_s, 1),
        },
        "results": results,
        "reference": {
            "training_step_images_per_s": TRAIN_STEP_IMAGES_PER_S,
            "what": "ResNet-50 FCN, batch 4, crop 321, CPU fit + SGD, fp32, 2 cores",
        },
        "machine": dict(
            machine(),
            nproc=len(os.sched_getaffinity(0)),
            load_average_1min_before_after=[round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        ),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command_line("data_pipeline", argv),
    }
    write_json(args.output, out)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    sys.exit(main())
