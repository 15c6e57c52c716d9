"""What the strict JPEG check costs: `jpeg_fault` against decoding the same file.

`rignet_runtime.jpeg.jpeg_fault` walks every scan's Huffman codes in Python (NumPy for the
bit windows) so that scan data libjpeg only warns about is refused. It runs once per file in
`validate` and `prepare`, once per file and process in the direct training pipeline, and once
per image in `rignet predict` and the on-device runner. This times it on VOC-size 500x375 images
(a smooth scene plus noise, close to a photo's coefficient count) in the encodings a dataset or a
phone produces, next to TensorFlow's and Pillow's decoders on the same bytes. Medians of
`--runs`; results to bench/results/jpeg_check.json with the machine and the command.

    python -m bench.jpeg_check [--runs 9]
"""

import datetime
import io
import os

import numpy as np
from PIL import Image

from bench.common import (
    RESULTS_DIR,
    bench_parser,
    command_line,
    machine,
    measure_latency,
    write_json,
)
from rignet_runtime.jpeg import jpeg_fault

ENCODINGS = {
    "baseline q75": dict(quality=75),
    "baseline q90": dict(quality=90),
    "4:4:4 q95": dict(quality=95, subsampling=0),
    "progressive q90": dict(quality=90, progressive=True),
    "restarts q90": dict(quality=90, restart_marker_blocks=8),
}


def scene(height=375, width=500, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    smooth = [128 + 90 * np.sin(x / 23 + c) * np.cos(y / 31) for c in range(3)]
    return np.clip(np.stack(smooth, -1) + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(
        np.uint8
    )


def median_ms(fn, runs):
    return measure_latency(fn, runs=runs, warmup=1)["median_ms"]


def main(argv=None):
    parser = bench_parser(__doc__, runs=9)
    args = parser.parse_args(argv)
    import tensorflow as tf

    image = scene()
    rows = []
    for name, options in ENCODINGS.items():
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", **options)
        data = buffer.getvalue()
        assert jpeg_fault(data) is None, name
        row = {
            "encoding": name,
            "kilobytes": round(len(data) / 1024, 1),
            "jpeg_fault_ms": median_ms(lambda d=data: jpeg_fault(d), args.runs),
            "tf_decode_ms": median_ms(
                lambda d=data: tf.io.decode_image(d, channels=3).numpy(), args.runs
            ),
            "pillow_decode_ms": median_ms(
                lambda d=data: np.asarray(Image.open(io.BytesIO(d)).convert("RGB")), args.runs
            ),
        }
        rows.append(row)
        print(
            f"{name:18s} {row['kilobytes']:6.1f} KB  check {row['jpeg_fault_ms']:6.1f} ms  "
            f"TF decode {row['tf_decode_ms']:5.1f} ms  "
            f"Pillow decode {row['pillow_decode_ms']:5.1f} ms",
            flush=True,
        )
    result = {
        "rows": rows,
        "machine": machine(),
        "date": datetime.date.today().isoformat(),
        "command": command_line("jpeg_check", argv),
    }
    write_json(os.path.join(RESULTS_DIR, "jpeg_check.json"), result)


if __name__ == "__main__":
    main()
