"""Inference speed of the shipped paths, per model, size, ui, precision and runtime, against peak.

Runs `bench.export_latency` over the benchmark issue's matrix: ResNet50-FCN, ResNet50-RIGNet
Su / Pu / Pf_u on <6..4> at ui = 1, 2, 4, 6, MobileNetV2 FCN and RIGNet Pu<6..4>, and Pu<6..4> at
ui = 1, 2, 4 on each backbone cut from a keras.applications or keras-hub model and on MiT-B0/B1
(TFLite float32 and int8, onnxruntime; docs/BACKBONES.md), at 512x512
and 321x321, batch 1, 2 threads: the Keras model in graph mode, TFLite (float32 / float16 /
dynamic-range int8 / full int8, as each entry of `CONFIGS` lists; fewer at 512x512), the
step-wise `init`/`step` graphs and onnxruntime.
Each configuration is exported and measured in its own process.

Exporting is slow (a ResNet-50 int8 conversion takes minutes) and needs no quiet machine;
timing does. So the two are separate phases over one work folder:

    python -m bench.inference --phase export            # any time, e.g. beside other jobs
    python -m bench.inference --phase measure           # on a quiet machine
    python -m bench.inference --report                  # tables: ms, GFLOP/s, share of peak
    python -m bench.inference --summary                 # one row per backbone and size
    python -m bench.inference --plot latency.png        # latency against GMACs, per backbone

`--report` divides the counted multiply-adds (2 FLOP each) by each median latency and by the
peak of `bench/results/peak.json` (`python -m bench.peak` first), and compares
latency(ui=k) / latency(ui=1) with MACs(ui=k) / MACs(ui=1).
"""

import dataclasses
import json
import os
import subprocess
import sys

from bench.common import REPOSITORY_ROOT, RESULTS_DIR, bench_command, bench_parser

ALL_FOUR = ["float32", "float16", "dynamic_int8", "int8"]


@dataclasses.dataclass(frozen=True)
class Config:
    """One exported model of the matrix."""

    name: str
    args: tuple
    sizes: tuple = (512, 321)
    precisions: tuple = tuple(ALL_FOUR)
    onnx: bool = True
    stepwise: bool = True
    large_precisions: tuple | None = None  # at 512x512, when fewer than `precisions`

    def argv(self, size, workdir):
        precisions = self.precisions
        if size >= 512 and self.large_precisions:
            precisions = self.large_precisions
        stepwise = [p for p in ("float32", "int8") if p in precisions] if self.stepwise else []
        argv = list(self.args) + ["--size", str(size), str(size), "--layouts", "multi"]
        argv += ["--precisions", *precisions, "--workdir", workdir]
        argv += ["--stepwise-precisions", *(stepwise or ["none"])]
        argv += ["--calibration-images", "4", "--parity-images", "2"]
        return argv + ([] if self.onnx else ["--no-onnx"])


UIS = ("--uis", "1", "2", "4", "6")
CONFIGS = [
    Config("resnet50-fcn", ("--backbone", "resnet50", "--fcn")),
    Config(
        "resnet50-pu64",
        ("--backbone", "resnet50", "--unroll-mode", "parallel", *UIS),
        precisions=("float32", "dynamic_int8", "int8"),
        # Calibrating and converting six ResNet-50 signatures at 512x512 per precision takes
        # too long on 2 cores; float32 (and ONNX) there, the int8 variants at 321x321.
        large_precisions=("float32",),
    ),
    Config(
        "resnet50-su64",
        ("--backbone", "resnet50", "--unroll-mode", "sequential", *UIS),
        sizes=(321,),
        precisions=("float32",),
        onnx=False,
        stepwise=False,
    ),
    Config(
        "resnet50-pfu64",
        ("--backbone", "resnet50", "--unroll-mode", "multi_range", *UIS),
        sizes=(321,),
        precisions=("float32",),
        onnx=False,
        stepwise=False,
    ),
    Config("mobilenetv2-fcn", ("--backbone", "mobilenetv2", "--fcn")),
    Config(
        "mobilenetv2-pu64",
        ("--backbone", "mobilenetv2", "--unroll-mode", "parallel", *UIS),
        large_precisions=("float32", "int8"),
    ),
    # Backbones cut from keras.applications and keras-hub models, and MiT (docs/BACKBONES.md):
    # Pu<6..4> at ui 1, 2, 4, TFLite float32 and int8 and onnxruntime; hub_* need keras-hub.
    *(
        Config(
            f"{name}-pu64",
            ("--backbone", name, "--unroll-mode", "parallel", "--uis", "1", "2", "4"),
            precisions=("float32", "int8"),
            stepwise=False,
            # The int8 conversion of a 50-layer ResNet's three signatures peaked at 14.7 GB at
            # 321x321 (resnet50v2, 2026-12-02); at 512x512 it would not fit in 24 GB.
            large_precisions=("float32",) if name in ("resnet50v2", "hub_resnet50") else None,
        )
        for name in (
            "efficientnetv2b0",
            "mobilenetv3small",
            "mobilenetv3large",
            "convnext_tiny",
            "resnet50v2",
            "hub_resnet18",
            "hub_resnet_vd34",
            "hub_resnet50",
            "hub_mobilenet_v3_small",
            "hub_mit_b0",
            "hub_mit_b1",
        )
    ),
]


def run(config, size, phase, workdir, out, threads, rounds):
    folder = os.path.join(workdir, f"{config.name}-{size}")
    argv = config.argv(size, folder) + ["--threads", str(threads)]
    if phase == "export":
        if os.path.isfile(os.path.join(folder, "export", "manifest.json")):
            print(f"== {config.name} {size}: already exported", flush=True)
            return 0
        argv.append("--export-only")
    else:
        argv += ["--reuse", "--append", "--out", out, "--rounds", str(rounds), "--per-round", "1"]
    print(f"== {config.name} {size}: {phase}", flush=True)
    return subprocess.call(bench_command("export_latency", *argv), cwd=REPOSITORY_ROOT)


# ---------------------------------------------------------------------------------------------
# Report


def _peak(path):
    with open(path) as f:
        peak = json.load(f)
    if "peak_float32" in peak:
        return peak["peak_float32"]["gflops"], peak["peak_float32"]["kernel"]
    return peak["float32"]["gflops_median"], "tensorflow matmul"


def _column(row):
    if row["runtime"] == "keras_tf_function":
        return "Keras graph"
    if row["runtime"] == "onnxruntime":
        return "onnxruntime fp32"
    if row.get("kind") == "stepwise":
        return f"step-wise {row['precision']} {row['signature']}"
    return f"TFLite {row['precision']}"


def report(results_path, peak_path):
    """Markdown: per model and size, median ms (GFLOP/s, % of peak) per ui and runtime."""
    with open(results_path) as f:
        runs = json.load(f)["runs"]
    peak, kernel = _peak(peak_path)
    lines = [f"Peak: {peak:.1f} GFLOP/s float32 ({kernel}, `{os.path.relpath(peak_path)}`).", ""]
    for run_ in runs:
        name = _model_name(run_["model"])
        size = "x".join(str(s) for s in run_["input_size"])
        rows = [r for r in run_["rows"] if r.get("kind") != "stepwise"]
        columns = []
        for r in rows:
            if _column(r) not in columns:
                columns.append(_column(r))
        uis = sorted({r["ui"] for r in rows})
        macs = {r["ui"]: r["macs"] for r in rows if r.get("macs")}
        lines += [
            f"**{name}, {size}** ({run_['date']}, load average at end "
            f"{run_['load_average_at_end'][0]}): median ms (GFLOP/s, % of peak)",
            "",
            "| ui | GMACs | " + " | ".join(columns) + " |",
            "|---|---|" + "---|" * len(columns),
        ]
        for ui in uis:
            cells = []
            for c in columns:
                r = next((r for r in rows if r["ui"] == ui and _column(r) == c), None)
                if r is None:
                    cells.append("-")
                    continue
                gflops = 2 * macs[ui] / 1e9 / (r["median_ms"] / 1e3) if ui in macs else None
                cells.append(
                    f"{r['median_ms']:.0f}"
                    + (f" ({gflops:.0f}, {100 * gflops / peak:.0f}%)" if gflops else "")
                )
            gmacs = f"{macs[ui] / 1e9:.2f}" if ui in macs else "-"
            lines.append(f"| {ui} | {gmacs} | " + " | ".join(cells) + " |")
        if len(uis) > 1 and 1 in macs:
            ratios = []
            for c in ("Keras graph", "TFLite float32", "onnxruntime fp32"):
                base = next((r for r in rows if r["ui"] == 1 and _column(r) == c), None)
                if base is None:
                    continue
                parts = []
                for ui in uis[1:]:
                    r = next((r for r in rows if r["ui"] == ui and _column(r) == c), None)
                    if r and ui in macs:
                        parts.append(
                            f"ui={ui} {r['median_ms'] / base['median_ms']:.2f} "
                            f"(MACs {macs[ui] / macs[1]:.2f})"
                        )
                ratios.append(f"{c}: " + ", ".join(parts))
            lines += ["", "latency(ui=k) / latency(ui=1), against the MACs' ratio: "]
            lines += [f"- {r}" for r in ratios]
        steps = [r for r in run_["rows"] if r.get("kind") == "stepwise"]
        if steps:
            lines += [
                "",
                "Step-wise graphs, median ms: "
                + "; ".join(
                    f"{r['precision']} {r['signature']} {r['median_ms']:.0f}" for r in steps
                ),
            ]
        lines.append("")
    return "\n".join(lines)


def summary(results_path):
    """Markdown: one row per model (backbone and mode) and size, the latest run of each, median
    ms per ui for TFLite float32, TFLite int8 and onnxruntime, with parameters and GMACs (which
    backbone a device budget affords)."""
    with open(results_path) as f:
        runs = json.load(f)["runs"]
    latest = {}
    for run_ in runs:
        latest[(_model_name(run_["model"]), run_["input_size"][0])] = run_
    columns = ["TFLite float32", "TFLite int8", "onnxruntime fp32"]
    lines = [
        "| model | params | size | ui | GMACs | "
        + " | ".join(f"{c} ms" for c in columns)
        + " | load avg start / end |",
        "|---|---|---|---|---|" + "---|" * len(columns) + "---|",
    ]
    order = sorted(latest, key=lambda k: (k[1], min(r["macs"] or 0 for r in latest[k]["rows"])))
    for name, size in order:
        run_ = latest[(name, size)]
        rows = [r for r in run_["rows"] if r.get("kind") != "stepwise"]
        uis = sorted({r["ui"] for r in rows})
        macs = {r["ui"]: r["macs"] for r in rows if r.get("macs")}
        cells = []
        for column in columns:
            values = [
                next((r for r in rows if r["ui"] == ui and _column(r) == column), None)
                for ui in uis
            ]
            cells.append(
                " / ".join("-" if r is None else f"{r['median_ms']:.0f}" for r in values)
                if any(values)
                else "-"
            )
        load = (run_["machine"]["load_average"][0], run_["load_average_at_end"][0])
        lines.append(
            f"| {name} | {run_['model']['parameter_count'] / 1e6:.1f} M | {size} | "
            + " / ".join(str(ui) for ui in uis)
            + " | "
            + " / ".join(f"{macs[ui] / 1e9:.2f}" for ui in uis if ui in macs)
            + " | "
            + " | ".join(cells)
            + f" | {load[0]:.1f} / {load[1]:.1f} |"
        )
    return "\n".join(lines)


def _model_name(model):
    if not model["feedback_blocks"]:
        return f"{model['backbone']} FCN"
    mode = {"parallel": "Pu", "sequential": "Su", "multi_range": "Pf_u"}.get(
        model["unroll_mode"], model["unroll_mode"]
    )
    return f"{model['backbone']} RIGNet {mode}<6..{model['feedback_blocks'][0]}>"


def plot(results_path, png_path):
    """PNG: median latency against GMACs, one line per model over its ui (one colour per model,
    the latest run of each size: circles and solid lines 321x321, squares and dashed 512x512),
    one panel per runtime column (TFLite float32, TFLite int8, onnxruntime)."""
    import matplotlib

    matplotlib.use("Agg")  # not training.plots.pyplot: this process stays without TensorFlow
    import matplotlib.pyplot as plt

    with open(results_path) as f:
        runs = json.load(f)["runs"]
    latest = {}
    for run_ in runs:
        latest[(_model_name(run_["model"]), run_["input_size"][0])] = run_
    names = sorted({name for name, _ in latest})
    colours = plt.get_cmap("tab20")
    colour = {name: colours(i % 20) for i, name in enumerate(names)}
    panels = ["TFLite float32", "TFLite int8", "onnxruntime fp32"]
    figure, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5.2), squeeze=False)
    for axis, panel in zip(axes[0], panels, strict=True):
        for (name, size), run_ in sorted(latest.items()):
            rows = sorted(
                (r for r in run_["rows"] if _column(r) == panel and r.get("macs")),
                key=lambda r: r["ui"],
            )
            if not rows:
                continue
            axis.plot(
                [r["macs"] / 1e9 for r in rows],
                [r["median_ms"] for r in rows],
                marker="o" if size < 512 else "s",
                linestyle="-" if size < 512 else "--",
                color=colour[name],
                markersize=4,
            )
            last = rows[-1]
            axis.annotate(f"ui {last['ui']}", (last["macs"] / 1e9, last["median_ms"]), fontsize=5)
        axis.set(title=panel, xlabel="GMACs", ylabel="median latency, ms (batch 1)")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.grid(True, which="both", alpha=0.3)
    handles = [plt.Line2D([], [], color=colour[n], marker="o", label=n) for n in names]
    handles += [
        plt.Line2D([], [], color="k", marker="o", linestyle="-", label="321x321"),
        plt.Line2D([], [], color="k", marker="s", linestyle="--", label="512x512"),
    ]
    figure.legend(handles=handles, loc="lower center", ncol=min(7, len(handles)), fontsize=7)
    chosen = list(latest.values())
    first = chosen[0]["machine"] if chosen else {}
    loads = [r["machine"]["load_average"][0] for r in chosen] + [
        r["load_average_at_end"][0] for r in chosen
    ]
    figure.suptitle(
        f"RIGNet latency against multiply-adds (points: ui 1, 2, 4, ...): {first.get('cpu', '?')}, "
        f"{first.get('cores', '?')} cores, {chosen[0]['threads'] if chosen else '?'} threads, "
        f"{first.get('date', '?')}; load average {min(loads, default=0):.1f}-"
        f"{max(loads, default=0):.1f} during the runs",
        fontsize=9,
    )
    figure.tight_layout(rect=(0, 0.04 + 0.035 * (len(handles) // 7), 1, 1))
    figure.savefig(png_path, dpi=120)
    plt.close(figure)
    return png_path


def main(argv=None):
    parser = bench_parser(
        __doc__,
        full_doc=True,
        threads=2,
        rounds=6,
        out=os.path.join(RESULTS_DIR, "inference.json"),
        helps={"rounds": "interleaved rounds per graph (default: %(default)s)"},
    )
    parser.add_argument("--phase", choices=["export", "measure", "both"], default="both")
    parser.add_argument("--only", nargs="+", help="configuration names (default: all)")
    parser.add_argument("--sizes", nargs="+", type=int, help="only these sizes")
    parser.add_argument("--workdir", default="/tmp/rignet-inference-bench")
    parser.add_argument("--peak", default=os.path.join(RESULTS_DIR, "peak.json"))
    parser.add_argument("--report", action="store_true", help="print the tables of --out")
    parser.add_argument(
        "--summary", action="store_true", help="one row per backbone and size (Markdown)"
    )
    parser.add_argument(
        "--plot", metavar="PNG", help="write latency against GMACs of the runs in --out"
    )
    args = parser.parse_args(argv)

    if args.report or args.plot or args.summary:
        if args.summary:
            print(summary(args.out))
        if args.report:
            print(report(args.out, args.peak))
        if args.plot:
            print(plot(args.out, args.plot))
        return 0
    names = [c.name for c in CONFIGS]
    unknown = sorted(set(args.only or []) - set(names))
    if unknown:
        raise SystemExit(f"unknown configuration(s) {unknown}; choose from {names}")
    phases = ["export", "measure"] if args.phase == "both" else [args.phase]
    failed = []
    for phase in phases:
        for config in CONFIGS:
            if args.only and config.name not in args.only:
                continue
            for size in config.sizes:
                if args.sizes and size not in args.sizes:
                    continue
                code = run(config, size, phase, args.workdir, args.out, args.threads, args.rounds)
                if code:
                    failed.append(f"{config.name} {size} ({phase}, exit {code})")
    if failed:
        print("failed: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
