"""LiteRT Interpreter options against each other on one `.tflite` signature: is any faster?

Options compared, each a fresh Interpreter over the same file, timed in interleaved rounds:
    default          what the runner uses (XNNPACK, `--threads` threads)
    latest_features  `experimental_default_delegate_latest_features=True` (XNNPACK's
                     flag-protected features)
    one_thread       the default with 1 thread (the second core's worth)

Usage:
    python -m bench.xnnpack_options model.tflite --signature ui_1 --rounds 7 \\
        --out bench/results/xnnpack_options.json
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

OPTIONS = {
    "default": dict(),
    "latest_features": dict(experimental_default_delegate_latest_features=True),
    "one_thread": dict(threads=1),
}


def runner_for(path, signature, threads, options):
    from ai_edge_litert.interpreter import Interpreter

    options = dict(options)
    threads = options.pop("threads", threads)
    interpreter = Interpreter(model_path=path, num_threads=threads, **options)
    signature = signature or next(iter(interpreter.get_signature_list()))
    return interpreter.get_signature_runner(signature)


def main(argv=None):
    p = bench_parser(
        __doc__,
        full_doc=True,
        threads=2,
        rounds=7,
        out=os.path.join(RESULTS_DIR, "xnnpack_options.json"),
        helps={"threads": "LiteRT's threads, but for one_thread (default: %(default)s)"},
    )
    p.add_argument("model")
    p.add_argument("--signature")
    p.add_argument("--per-round", type=int, default=2)
    args = p.parse_args(argv)
    runners = {
        k: runner_for(args.model, args.signature, args.threads, v) for k, v in OPTIONS.items()
    }
    name, detail = next(iter(runners["default"].get_input_details().items()))
    image = np.random.default_rng(0).integers(0, 255, size=detail["shape"]).astype(detail["dtype"])
    reference = runners["default"](**{name: image})
    same = {}
    for k, run in runners.items():
        out = run(**{name: image})
        same[k] = all(np.array_equal(out[o], reference[o]) for o in reference if "class" in o)
        run(**{name: image})  # warm-up
    calls = {k: (lambda run=run: run(**{name: image})) for k, run in runners.items()}
    latency = interleaved_latency(calls, args.rounds, args.per_round, warmup=0, order="alternate")
    results = {k: {**v, "same_class_map": same[k]} for k, v in latency.items()}
    for k, v in results.items():
        print(
            f"{k:16s} {v['median_ms']:8.1f} ms (min {v['min_ms']:.1f}, p90 {v['p90_ms']:.1f})"
            f"  class map as default: {v['same_class_map']}"
        )
    write_json(
        args.out,
        dict(
            model=os.path.basename(args.model),
            signature=args.signature,
            threads=args.threads,
            machine=machine(),
            results=results,
            command=command_line("xnnpack_options", argv),
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
