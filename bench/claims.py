"""The paper's claims, re-run on the synthetic task: Tables 2-6 and the headline.

Every table of the paper's ablation (Sec. 4.2) has an analogue here, trained from scratch on the
built-in synthetic dataset (`rignet_keras.data.synthetic`, where the class of an object is only
visible in a small mark, so labelling the rest of it needs context) with narrow ResNets small
enough for 2 CPU cores, several seeds each, and evaluated at every ui from 1 to the trained one:

    table2    feedback on <6>, <6..5>, ..., <6..1> for Su, Pu and Pf_u (ui = 2)
    table3    ui = 2, 4, 6 for Su<6..4>, Pu<6..4> and Pf_u<6..1>
    table4    the gate's combine: add + ReLU, mul + sigmoid, mul + tanh (Pu<6..4>, ui = 2)
    table5    the gate's pooling: none, max, average (Pu<6..4>, ui = 2)
    table6    network-wide recurrence (plain and gated) against block-wise gating (ui = 2)
    headline  a shallow network with gating (ResNet-18 RIGNet) against a deeper one without
              (ResNet-34 FCN)

A variant shared by several tables (e.g. Pu<6..4>, ui = 2) is trained once. Results go to one
JSON file, written after every run, so an interrupted sweep resumes where it stopped; `--shard
i/n` splits the runs over n processes (the two cores of this machine train two narrow networks
at once faster than one at a time with two threads). `--report` then measures each variant's
inference latency (Keras graph mode, batch 1), prints the tables as Markdown and writes the
plots (mIoU against ui per mode, and against latency).

    python bench/claims.py --shard 0/2 & python bench/claims.py --shard 1/2; wait
    python bench/claims.py --seeds 0 1 2 --report

Every network is built with `--recurrent-batch-norm` (the model's default, "gated_passes",
unless given); each option writes its own results file, `results/claims_<option>.json`, and
its plots beside it.
"""

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import machine, summary_ms, time_calls, write_json  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
MODE_NAMES = {"sequential": "Su", "parallel": "Pu", "multi_range": "Pf_u"}


def _blocks(feedback_blocks):
    """ "<6..4>" for (4, 6), "<6>" for (6, 6), "" for None."""
    if feedback_blocks is None:
        return ""
    return "<6>" if feedback_blocks[0] == 6 else f"<6..{feedback_blocks[0]}>"


@dataclasses.dataclass(frozen=True)
class Variant:
    """One network of the sweep (`feedback_blocks=None` and ui = 1 is the FCN baseline)."""

    depth: int = 18
    mode: str = "parallel"
    feedback_blocks: tuple | None = (4, 6)
    ui: int = 2
    pooling: str | None = "avg"
    combine: str = "mul_sigmoid"

    @property
    def key(self):
        """A stable name, used as the results' key."""
        if self.feedback_blocks is None and self.mode not in ("network_recurrent", "network_gated"):
            return f"r{self.depth}-fcn"
        name = MODE_NAMES.get(self.mode, self.mode) + _blocks(self.feedback_blocks)
        return f"r{self.depth}-{name}-ui{self.ui}-{self.pooling}-{self.combine}"

    @property
    def label(self):
        if self.feedback_blocks is None and self.mode not in ("network_recurrent", "network_gated"):
            return f"ResNet-{self.depth} FCN"
        name = MODE_NAMES.get(self.mode, self.mode)
        return f"ResNet-{self.depth} {name}{_blocks(self.feedback_blocks)}, ui={self.ui}"


FCN18 = Variant(feedback_blocks=None, ui=1)
FCN34 = Variant(depth=34, feedback_blocks=None, ui=1)
PU64 = Variant()
PF61 = Variant(mode="multi_range", feedback_blocks=(1, 6))


def tables():
    """{table: [(row label, Variant)]}: the paper's ablation tables, in its order."""
    t2 = [
        (f"{MODE_NAMES[m]} {_blocks((f, 6))}", Variant(mode=m, feedback_blocks=(f, 6)))
        for m in ("sequential", "parallel", "multi_range")
        for f in (6, 5, 4, 3, 2, 1)
    ]
    t3 = [
        (f"{MODE_NAMES[m]} <6..{f}>, ui={ui}", Variant(mode=m, feedback_blocks=(f, 6), ui=ui))
        for m, f in (("sequential", 4), ("parallel", 4), ("multi_range", 1))
        for ui in (2, 4, 6)
    ]
    t4 = [
        (c, dataclasses.replace(PU64, combine=c)) for c in ("add_relu", "mul_sigmoid", "mul_tanh")
    ]
    t5 = [(str(p or "none"), dataclasses.replace(PU64, pooling=p)) for p in (None, "max", "avg")]
    t6 = [
        ("FCN (feed-forward)", FCN18),
        ("network-wide recurrence", Variant(mode="network_recurrent", feedback_blocks=None)),
        ("network-wide gated feedback", Variant(mode="network_gated", feedback_blocks=None)),
        ("block-wise Pu <6..4>", PU64),
        ("block-wise Pf_u <6..1>", PF61),
    ]
    headline = [
        ("ResNet-18 FCN", FCN18),
        ("ResNet-34 FCN", FCN34),
        ("ResNet-18 RIGNet Pu <6..4>, ui=2", PU64),
        ("ResNet-18 RIGNet Pu <6..4>, ui=6", dataclasses.replace(PU64, ui=6)),
        ("ResNet-18 RIGNet Pf_u <6..1>, ui=6", dataclasses.replace(PF61, ui=6)),
    ]
    return {"table2": t2, "table3": t3, "table4": t4, "table5": t5, "table6": t6,
            "headline": headline}  # fmt: skip


def all_variants(selected=None):
    """The distinct variants of the selected tables, cheapest first."""
    seen = {}
    for name, rows in tables().items():
        if selected and name not in selected:
            continue
        for _, v in rows:
            seen.setdefault(v.key, v)
    return sorted(seen.values(), key=lambda v: (v.ui, v.depth, v.key))


@dataclasses.dataclass
class Budget:
    """The training budget of every run (the same for all, so rows compare)."""

    image_size: int = 96
    num_classes: int = 3
    mark_size: int = 10
    num_train: int = 800
    num_val: int = 128
    width_multiplier: float = 0.25
    steps: int = 300
    batch_size: int = 8
    learning_rate: float = 0.05
    warmup_steps: int = 20


def build_network(variant, budget, recurrent_batch_norm="gated_passes"):
    """The RIGNet of `variant`: a narrow ResNet (`budget.width_multiplier`) with an FCN head."""
    from rignet_keras import RIGNet
    from rignet_keras.backbones.heads import build_head
    from rignet_keras.backbones.resnet import resnet_blocks

    blocks, contracts = resnet_blocks(variant.depth, width_multiplier=budget.width_multiplier)
    head_filters = max(8, round(512 * budget.width_multiplier))
    blocks.append(build_head("fcn", contracts[-1].channels, budget.num_classes, head_filters))
    return RIGNet(
        budget.num_classes,
        backbone=blocks,
        unroll_mode=variant.mode,
        feedback_blocks=variant.feedback_blocks,
        num_iterations=variant.ui,
        gate_pooling=variant.pooling,
        gate_combine=variant.combine,
        recurrent_batch_norm=recurrent_batch_norm,
    )


def synthetic_config(budget):
    from rignet_keras.data import SyntheticConfig

    size = (budget.image_size, budget.image_size)
    return SyntheticConfig(image_size=size, num_classes=budget.num_classes,
                           mark_size=budget.mark_size, object_size=(0.4, 0.6),
                           objects_per_image=(1, 2))  # fmt: skip


def train_and_evaluate(variant, seed, budget, work_dir, recurrent_batch_norm="gated_passes",
                       progress=False):  # fmt: skip
    """Trains `variant` with `seed` from scratch and evaluates its final weights at ui = 1..ui.

    The validation images are the same for every run (a fixed seed); the training stream and
    the initial weights follow `seed`. No checkpoint is picked on validation.

    Returns:
        {"mIoU": {ui: value}, "pAcc": {...}, "train_seconds": s, "loss_by_third": mean training
        loss over each third of the run}.
    """
    from rignet_keras.data import build_dataset
    from rignet_keras.training.evaluate import evaluate
    from rignet_keras.training.trainer import TrainConfig, Trainer

    syn = synthetic_config(budget)
    config = TrainConfig(
        steps=budget.steps, steps_per_epoch=max(1, budget.steps // 3), batch_size=budget.batch_size,
        learning_rate=budget.learning_rate, weight_decay=1e-4,
        warmup_steps=min(budget.warmup_steps, budget.steps // 5),
        seed=seed, monitor="loss", tensorboard=False, verbose=1 if progress else 0,
    )  # fmt: skip

    def stream(skip):
        return build_dataset("synthetic", "train", batch_size=budget.batch_size, training=True,
                             num_samples=budget.num_train, repeat=True, skip_batches=skip,
                             preprocessing="torch", synthetic_config=syn, seed=seed)  # fmt: skip

    val = build_dataset("synthetic", "val", batch_size=16, training=False,
                        num_samples=budget.num_val, preprocessing="torch",
                        synthetic_config=syn, seed=0)  # fmt: skip
    # The folder names everything a resumed run must share with the one it resumes.
    run_name = (
        f"{variant.key}-s{seed}-{recurrent_batch_norm}-{budget.steps}steps-{budget.image_size}px"
    )
    trainer = Trainer(config, os.path.join(work_dir, run_name))
    size = budget.image_size
    trainer.build(
        lambda: build_network(variant, budget, recurrent_batch_norm), (None, size, size, 3)
    )
    t0 = time.time()
    fit = trainer.fit(stream, val_data=None, resume=True)
    seconds = time.time() - t0
    result = evaluate(trainer.network, val, budget.num_classes, progress=False)
    losses = [x for x in fit.history.get("loss", []) if isinstance(x, float)]
    return {
        "mIoU": {str(k): s["mIoU"] for k, s in result.scores.items()},
        "pAcc": {str(k): s["pAcc"] for k, s in result.scores.items()},
        "train_seconds": round(seconds, 1),
        "loss_by_third": losses,
    }


def measure_latency(variant, budget, repeats=20):
    """Median ms of one 1-image forward pass (Keras graph mode) at every ui = 1..variant.ui."""
    import numpy as np
    import tensorflow as tf

    model = build_network(variant, budget)
    x = tf.constant(np.random.default_rng(0).random((1, budget.image_size, budget.image_size, 3),
                                                    dtype=np.float32))  # fmt: skip
    out = {}
    for k in range(1, variant.ui + 1):
        fn = tf.function(lambda t, k=k: model(t, num_iterations=k, training=False))
        out[str(k)] = summary_ms(time_calls(lambda fn=fn: fn(x), repeats=repeats, warmup=3))
    return out


# ---------------------------------------------------------------------------------------------
# Results


def load_results(path):
    if os.path.isfile(path):
        with open(path) as f:
            return json.load(f)
    return {"runs": {}}


def update_results(path, change):
    """Applies `change(results)` to the results file under a lock (other shards write it too)."""
    import fcntl

    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = load_results(path)
        change(results)
        write_json(path, results)
    return results


def merge_run(path, key, seed, record):
    """Adds one run to the results file."""
    update_results(path, lambda r: r.setdefault("runs", {}).setdefault(key, {}).__setitem__(
        str(seed), record))  # fmt: skip


def stats(values):
    values = [100 * v for v in values if v is not None]
    if not values:
        return None
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": mean, "sd": sd, "min": min(values), "max": max(values), "n": len(values)}


def summarize(results, variant):
    """{ui: stats of mIoU over seeds} of one variant."""
    runs = results.get("runs", {}).get(variant.key, {})
    out = {}
    for k in range(1, variant.ui + 1):
        s = stats([r["mIoU"].get(str(k)) for r in runs.values()])
        if s:
            out[k] = s
    return out


def fmt(s):
    return "-" if not s else f"{s['mean']:.1f} ± {s['sd']:.1f}"


def markdown(results):
    """The tables as Markdown: mIoU (%) mean ± sd over seeds at the trained ui, and at ui = 1."""
    lines = []
    for name, rows in tables().items():
        lines += [f"**{name}**", "", "| variant | seeds (diverged) | mIoU at trained ui | mIoU at "
                  "ui=1 | best ui (mIoU) | train s/run |", "|---|---|---|---|---|---|"]  # fmt: skip
        for label, v in rows:
            s = summarize(results, v)
            if not s:
                lines.append(f"| {label} | 0 | - | - | - | - |")
                continue
            best = max(s, key=lambda k: s[k]["mean"])
            runs = results["runs"][v.key].values()
            secs = statistics.fmean(r["train_seconds"] for r in runs if "train_seconds" in r)
            diverged = sum(1 for r in runs if r.get("diverged"))
            seeds = f"{s[v.ui]['n'] if v.ui in s else 0}" + (f" ({diverged})" if diverged else "")
            lines.append(
                f"| {label} | {seeds} | {fmt(s.get(v.ui))} | "
                f"{fmt(s.get(1))} | {best} ({s[best]['mean']:.1f}) | {secs:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def plot(results, prefix):
    """mIoU against ui per mode (Table 3's variants) and against measured latency, as
    `<prefix>_miou_vs_ui.png` and `<prefix>_miou_vs_latency.png`."""
    from rignet_keras.training.visualize import _pyplot, plot_anytime

    curves = {}
    for _, v in tables()["table3"] + [("FCN", FCN18), ("ResNet-34 FCN", FCN34)]:
        if v.ui not in (1, 6):
            continue
        s = summarize(results, v)
        if s:
            curves[v.label] = [(k, s[k]["mean"] / 100) for k in sorted(s)]
    paths = [plot_anytime(curves, f"{prefix}_miou_vs_ui.png",
                          title="synthetic val: mIoU against ui (mean of seeds)")]  # fmt: skip
    latency = results.get("latency", {})
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    drawn = set()
    for _, v in tables()["headline"] + tables()["table3"]:
        s, lat = summarize(results, v), latency.get(v.key)
        if not s or not lat or (v.ui not in (1, 6)) or v.key in drawn:
            continue
        drawn.add(v.key)
        pts = [(lat[str(k)]["median_ms"], s[k]["mean"]) for k in sorted(s) if str(k) in lat]
        xs, ys = zip(*pts, strict=True)
        ax.plot(xs, ys, marker="o", label=v.label)
    ax.set_xlabel("latency, ms (Keras graph mode, batch 1, CPU)")
    ax.set_ylabel("mIoU (%)")
    ax.set_title("synthetic val: mIoU against latency (each point one ui)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = f"{prefix}_miou_vs_latency.png"
    fig.savefig(path)
    plt.close(fig)
    return paths + [path]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tables", nargs="+", choices=list(tables()), default=None)
    p.add_argument("--variants", nargs="+", help="only these variant keys (see --list)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--shard", default="0/1", help="i/n: run every n-th run starting at i")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="TF intra-op threads (default: 1 when sharded over >1 processes, else 2)",
    )
    p.add_argument("--steps", type=int, default=Budget.steps)
    p.add_argument(
        "--image-size", type=int, default=Budget.image_size, help="synthetic images' side (px)"
    )
    p.add_argument(
        "--recurrent-batch-norm",
        default="gated_passes",
        choices=["gated_passes", "first_pass", "every_pass"],
        help="the RIGNet option of that name",
    )
    p.add_argument("--work-dir", default="/tmp/rignet-claims", help="checkpoints of each run")
    p.add_argument(
        "--output", help="the results file (default: results/claims_<recurrent_batch_norm>.json)"
    )
    p.add_argument(
        "--report",
        action="store_true",
        help="measure latency, print the Markdown tables and write the plots",
    )
    p.add_argument("--no-latency", action="store_true", help="--report without timing anything")
    p.add_argument("--list", action="store_true", help="print the runs and exit")
    args = p.parse_args(argv)
    args.output = args.output or os.path.join(RESULTS, f"claims_{args.recurrent_batch_norm}.json")

    index, count = (int(x) for x in args.shard.split("/"))
    budget = Budget(steps=args.steps, image_size=args.image_size)
    variants = all_variants(args.tables)
    if args.variants:
        unknown = sorted(set(args.variants) - {v.key for v in variants})
        if unknown:
            raise SystemExit(f"unknown variant(s) {unknown}; see --list")
        variants = [v for v in variants if v.key in args.variants]
    runs = [(v, s) for s in args.seeds for v in variants]
    if args.list:
        for v, s in runs:
            print(v.key, s)
        print(f"{len(runs)} runs of {len(variants)} variants")
        return 0

    import tensorflow as tf

    from rignet_keras.training.trainer import NaNLossError

    threads = args.threads or (1 if count > 1 else 2)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)

    def start(results):
        if results.get("budget") not in (None, dataclasses.asdict(budget)):
            raise SystemExit(f"{args.output} holds runs made with another budget "
                             f"({results['budget']}); use another --output")  # fmt: skip
        stored = results.get("recurrent_batch_norm", args.recurrent_batch_norm)
        if stored != args.recurrent_batch_norm:
            raise SystemExit(f"{args.output} holds runs with recurrent_batch_norm={stored!r}; "
                             "use another --output")  # fmt: skip
        results.setdefault("budget", dataclasses.asdict(budget))
        results.setdefault("machine", machine())
        results["recurrent_batch_norm"] = args.recurrent_batch_norm

    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    results = update_results(args.output, start)

    if args.report:
        latency = results.get("latency", {})
        for v in [] if args.no_latency else variants:
            if v.key not in latency:
                latency[v.key] = measure_latency(v, budget)
                print(f"latency {v.key}: " + ", ".join(
                    f"ui={k} {m['median_ms']:.1f} ms" for k, m in latency[v.key].items()),
                    flush=True)  # fmt: skip
        if not args.no_latency:
            results = update_results(
                args.output, lambda r: r.update(latency=latency, latency_machine=machine())
            )
        print(markdown(results))
        for path in plot(results, os.path.splitext(args.output)[0]):
            print("wrote", path)
        return 0

    todo = [(v, s) for i, (v, s) in enumerate(runs) if i % count == index]
    for n, (v, s) in enumerate(todo, 1):
        if str(s) in load_results(args.output).get("runs", {}).get(v.key, {}):
            continue
        t0 = time.time()
        try:
            record = train_and_evaluate(v, s, budget, args.work_dir, args.recurrent_batch_norm)
        except NaNLossError as error:  # a result too: this variant diverged with this seed
            record = {"mIoU": {}, "pAcc": {}, "diverged": str(error).split(".")[0]}
        record["threads"] = threads
        merge_run(args.output, v.key, s, record)
        miou = " ".join(f"{100 * x:.1f}" for x in record["mIoU"].values()) or record["diverged"]
        print(f"[{index}/{count} {n}/{len(todo)}] {v.key} seed {s}: mIoU by ui {miou} "
              f"({time.time() - t0:.0f} s)", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
