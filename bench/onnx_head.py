"""onnxruntime latency of a RIGNet's ONNX graph with and without the channels-last output head.

`rignet_keras.export.onnx.channels_last_head` moves the graph's final NCHW -> NHWC transpose from
the full-resolution probabilities to the logits, so that the upsampling, softmax and argmax run
channels-last. This converts one model twice, with the rewrite and with tf2onnx's own head, and
times both in interleaved rounds (batch 1, onnxruntime CPU, `--threads` intra-op threads).

Usage:
    python -m bench.onnx_head --backbone resnet50 --size 512 --out bench/results/onnx_head.json
"""

import os
import sys

import numpy as np

from bench.common import (
    RESULTS_DIR,
    bench_parser,
    command_line,
    interleaved_latency,
    machine,
    write_json,
)


def main(argv=None):
    p = bench_parser(
        __doc__,
        full_doc=True,
        threads=2,
        rounds=7,
        out=os.path.join(RESULTS_DIR, "onnx_head.json"),
        helps={"threads": "onnxruntime's intra-op threads (default: %(default)s)"},
    )
    p.add_argument("--backbone", default="resnet50")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--num-classes", type=int, default=21)
    args = p.parse_args(argv)
    import onnxruntime as ort

    from rignet_keras import RIGNet
    from rignet_keras.export import onnx as onnx_export

    model = RIGNet(args.num_classes, backbone=args.backbone, feedback_blocks=None, num_iterations=1)
    size = (args.size, args.size)
    model.build((None, *size, 3))
    rewrite = onnx_export.channels_last_head
    protos = {"channels_last_head": onnx_export.convert_onnx(model, 1, size)}
    onnx_export.channels_last_head = lambda proto: proto  # tf2onnx's head, as it writes it
    try:
        protos["tf2onnx_head"] = onnx_export.convert_onnx(model, 1, size)
    finally:
        onnx_export.channels_last_head = rewrite
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    sessions = {
        k: ort.InferenceSession(v.SerializeToString(), options, providers=["CPUExecutionProvider"])
        for k, v in protos.items()
    }
    image = np.random.default_rng(0).integers(0, 255, (1, *size, 3)).astype(np.uint8)
    outputs = {k: s.run(None, {"images": image}) for k, s in sessions.items()}
    same = np.array_equal(outputs["channels_last_head"][0], outputs["tf2onnx_head"][0])
    calls = {k: (lambda s=s: s.run(None, {"images": image})) for k, s in sessions.items()}
    results = interleaved_latency(
        calls, args.rounds, per_round=2, warmup=0, round_warmup=1, order="alternate"
    )
    for k, v in results.items():
        print(f"{k:20s} {v['median_ms']:8.1f} ms (min {v['min_ms']:.1f}, p90 {v['p90_ms']:.1f})")
    print("same class map:", same)
    write_json(
        args.out,
        dict(
            backbone=args.backbone,
            size=size,
            threads=args.threads,
            same_class_map=bool(same),
            results=results,
            machine=machine(),
            command=command_line("onnx_head", argv),
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
