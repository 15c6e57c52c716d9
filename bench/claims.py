"""The paper's claims, re-run on the synthetic task: Tables 2-6 and the headline.

Every table of the paper's ablation (Sec. 4.2) has an analogue here: the variants of
`recipes/table2.py` ... `table6.py` (their model sections: unroll mode, feedback blocks, ui,
gate pooling and combine), each as one run configuration (`rignet_keras.config.RunConfig`)
executed by the one runner (`rignet_keras.training.run_experiment`), trained from scratch on the
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

On this task the ResNet-50/101 rows of a recipe become the same narrow ResNet-18 run, and a
variant shared by several tables (e.g. Pu<6..4>, ui = 2) is one run: each is trained once.
The narrow ResNets are the model section's own `width_multiplier`. Results go to one
JSON file, written after every run, so an interrupted sweep resumes where it stopped; `--shard
i/n` splits the runs over n processes (the two cores of this machine train two narrow networks
at once faster than one at a time with two threads). `--report` then measures each variant's
inference latency (Keras graph mode, batch 1), prints the tables as Markdown and writes the
plots (mIoU against ui per mode, and against latency).

    python -m bench.claims --shard 0/2 & python -m bench.claims --shard 1/2; wait
    python -m bench.claims --seeds 0 1 2 --report

The sweep itself (`open_results`, `run_sweep`: one run at a time through `run_experiment`,
each added to the results file under a lock as it ends) is shared with `bench.anytime` and
`bench.equal_compute`, which name their runs with their own keys.

Every network is built with `--recurrent-batch-norm` (the model's default, "gated_passes",
unless given); each option writes its own results file, `results/claims_<option>.json`, and
its plots beside it.
"""

import dataclasses
import os
import statistics
import sys
import time

from bench.common import (
    REPOSITORY_ROOT,
    RESULTS_DIR,
    bench_parser,
    format_mean_sd,
    load_results,
    machine,
    set_tf_threads,
    spread,
    summary_ms,
    time_calls,
    write_json,
)

RECIPES = os.path.join(REPOSITORY_ROOT, "recipes")
TABLES = ("table2", "table3", "table4", "table5", "table6")
MODE_NAMES = {"sequential": "Su", "parallel": "Pu", "multi_range": "Pf_u"}
NETWORK_MODES = ("network_recurrent", "network_gated")
# The headline: a shallow network with gating against a deeper one without, as
# (row, recipe table, variant, ResNet depth).
HEADLINE = (
    ("ResNet-18 FCN", "table6", "fcn", 18),
    ("ResNet-34 FCN", "table6", "fcn", 34),
    ("ResNet-18 RIGNet Pu <6..4>, ui=2", "table6", "pu_64", 18),
    ("ResNet-18 RIGNet Pu <6..4>, ui=6", "table3", "pu_ui6", 18),
    ("ResNet-18 RIGNet Pf_u <6..1>, ui=6", "table3", "pf_ui6", 18),
)


def _blocks(feedback_blocks):
    """ "<6..4>" for (4, 6), "<6>" for (6, 6), "" for None."""
    if feedback_blocks is None:
        return ""
    return "<6>" if feedback_blocks[0] == 6 else f"<6..{feedback_blocks[0]}>"


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

    def train_config(self, seed, **overrides):
        """The `TrainConfig` of a run of this budget with `seed` (plus `overrides`, e.g.
        `train_iterations`): SGD from scratch, the final weights kept."""
        from rignet_keras.config import TrainConfig

        fields = dict(
            steps=self.steps,
            steps_per_epoch=max(1, self.steps // 3),
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=1e-4,
            warmup_steps=min(self.warmup_steps, self.steps // 5),
            seed=seed,
            monitor="loss",
            tensorboard=False,
            verbose=0,
        )
        fields.update(overrides)
        return TrainConfig(**fields)

    @staticmethod
    def eval_config():
        """The final weights, no checkpoint picked on validation, no figures."""
        from rignet_keras.config import EvalConfig

        return EvalConfig(num_visualize=0, checkpoint="last", validate=False)


def variant_key(config):
    """A stable name of a claims run's model, the results file's key (e.g.
    "r18-Pu<6..4>-ui2-avg-mul_sigmoid", "r34-fcn")."""
    m = config.model
    depth = int(m["backbone"].removeprefix("resnet"))
    mode = m.get("unroll_mode", "parallel")
    blocks = None if mode in NETWORK_MODES else m.get("feedback_blocks")
    if blocks is None and mode not in NETWORK_MODES:
        return f"r{depth}-fcn"
    name = MODE_NAMES.get(mode, mode) + _blocks(blocks)
    pooling, combine = m.get("gate_pooling", "avg"), m.get("gate_combine", "mul_sigmoid")
    return f"r{depth}-{name}-ui{m['num_iterations']}-{pooling}-{combine}"


def variant_label(config):
    """ "ResNet-18 Pu<6..4>, ui=2 [mul_tanh]"-style row label of a claims run's model."""
    m = config.model
    depth = m["backbone"].removeprefix("resnet")
    mode = m.get("unroll_mode", "parallel")
    if mode not in NETWORK_MODES and m.get("feedback_blocks") is None:
        return f"ResNet-{depth} FCN"
    blocks = "" if mode in NETWORK_MODES else _blocks(m["feedback_blocks"])
    combine, pooling = m.get("gate_combine", "mul_sigmoid"), m.get("gate_pooling", "avg")
    extra = [combine] if combine != "mul_sigmoid" else []
    extra += [f"pool={pooling or 'none'}"] if pooling != "avg" else []
    tail = f" [{', '.join(extra)}]" if extra else ""
    return f"ResNet-{depth} {MODE_NAMES.get(mode, mode)}{blocks}, ui={m['num_iterations']}{tail}"


def claims_config(
    paper, budget, seed, recurrent_batch_norm="gated_passes", depth=18, width_multiplier=None
):
    """The synthetic-task run of a recipe's `RunConfig`: its model (gates, unroll, ui) on a
    ResNet-`depth` trained from scratch, on the synthetic data, with the sweep's budget.
    `width_multiplier` (default the budget's) scales the backbone's channels and the head's."""
    from rignet_keras.config import DataConfig, RunConfig

    width = budget.width_multiplier if width_multiplier is None else width_multiplier
    model = dict(
        paper.model,
        backbone=f"resnet{depth}",
        backbone_weights=None,
        width_multiplier=width,
        head_filters=max(8, round(512 * width)),
        recurrent_batch_norm=recurrent_batch_norm,
    )
    size = (budget.image_size, budget.image_size)
    data = DataConfig(
        source="synthetic",
        crop_size=None,
        eval_batch_size=16,
        num_train_samples=budget.num_train,
        num_eval_samples=budget.num_val,
        synthetic=dict(
            image_size=size,
            num_classes=budget.num_classes,
            mark_size=budget.mark_size,
            object_size=(0.4, 0.6),
            objects_per_image=(1, 2),
        ),
    )
    train = budget.train_config(seed)
    config = RunConfig(model=model, data=data, train=train, eval=budget.eval_config())
    config.name = variant_key(config)
    config.description = f"{variant_label(config)}, width multiplier {width}, synthetic task"
    return config


def load_tables():
    """{table: (experiments, layout)} of recipes/table2.py ... table6.py."""
    from rignet_keras.config import load_recipe

    out = {}
    for name in TABLES:
        module = load_recipe(os.path.join(RECIPES, f"{name}.py"))
        out[name] = (module.EXPERIMENTS, module.TABLE)
    return out


def _layout_variants(layout):
    """The variants of a table layout, in its order (grid cells row by row, or list rows)."""
    if layout["kind"] == "grid":
        return [
            layout["cells"][(r, c)]
            for r in layout["rows"]
            for c in layout["columns"]
            if (r, c) in layout["cells"]
        ]
    return [variant for _, variant in layout["rows"]]


def tables(budget=None, recurrent_batch_norm="gated_passes"):
    """{table: [(row label, RunConfig at seed 0)]}: the recipes' Tables 2-6 on the synthetic
    task (rows that become the same run, e.g. Table 4's ResNet-50 and ResNet-101 rows, are one),
    and the headline."""
    budget = budget or Budget()
    recipes = load_tables()
    out = {}
    for name, (experiments, layout) in recipes.items():
        rows, seen = [], set()
        for variant in _layout_variants(layout):
            config = claims_config(experiments[variant], budget, 0, recurrent_batch_norm)
            if variant_key(config) not in seen:
                seen.add(variant_key(config))
                rows.append((variant_label(config), config))
        out[name] = rows
    out["headline"] = [
        (label, claims_config(recipes[t][0][v], budget, 0, recurrent_batch_norm, depth))
        for label, t, v, depth in HEADLINE
    ]
    return out


def all_variants(all_tables, selected=None):
    """The distinct runs (one per key) of the selected tables, cheapest first."""
    seen = {}
    for name, rows in all_tables.items():
        if selected and name not in selected:
            continue
        for _, config in rows:
            seen.setdefault(variant_key(config), config)
    return sorted(
        seen.values(),
        key=lambda c: (c.model["num_iterations"], c.model["backbone"], variant_key(c)),
    )


def train_and_evaluate(config, budget, work_dir, progress=False, key=None):
    """Trains a claims run from scratch with the one runner (`run_experiment`) and evaluates its
    final weights at ui = 1..ui (or at `config.eval.iterations`).

    The validation images are the same for every run; the training stream and the initial
    weights follow `config.train.seed`. No checkpoint is picked on validation.

    Args:
        key: the run's name in the work folder, which must name everything that decides its
            training (default `variant_key(config)`); a finished run of the same name is
            evaluated again, not retrained.

    Returns:
        {"mIoU": {ui: value}, "pAcc": {...}, "train_seconds": s, "loss_by_third": mean training
        loss over each third of the run}.
    """
    from rignet_keras.training.experiment import run_experiment

    # The folder names everything a resumed run must share with the one it resumes.
    rbn = config.model["recurrent_batch_norm"]
    run_name = (
        f"{key or variant_key(config)}-s{config.train.seed}-{rbn}-{budget.steps}steps-"
        f"{budget.image_size}px"
    )
    if progress:
        config = config.override([("train.verbose", 1)])
    run = run_experiment(config, os.path.join(work_dir, run_name), resume=True, progress=progress)
    scores = run.evaluation.scores
    return {
        "mIoU": {str(k): s["mIoU"] for k, s in scores.items()},
        "pAcc": {str(k): s["pAcc"] for k, s in scores.items()},
        "train_seconds": round(run.summary["train_seconds"], 1),
        "loss_by_third": run.summary["loss"],
    }


def measure_latency(config, budget, repeats=20):
    """Median ms of one 1-image forward pass (Keras graph mode) at every ui = 1..ui."""
    import numpy as np
    import tensorflow as tf

    from rignet_keras import RIGNet

    model = RIGNet(num_classes=budget.num_classes, **config.model)
    x = tf.constant(
        np.random.default_rng(0).random(
            (1, budget.image_size, budget.image_size, 3), dtype=np.float32
        )
    )
    out = {}
    for k in range(1, config.model["num_iterations"] + 1):
        fn = tf.function(lambda t, k=k: model(t, num_iterations=k, training=False))
        out[str(k)] = summary_ms(time_calls(lambda fn=fn: fn(x), repeats=repeats, warmup=3))
    return out


# ---------------------------------------------------------------------------------------------
# Results


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
    update_results(
        path, lambda r: r.setdefault("runs", {}).setdefault(key, {}).__setitem__(str(seed), record)
    )


# ---------------------------------------------------------------------------------------------
# The sweep: the loop every synthetic-task study runs (this one, bench.anytime, ...)


def open_results(path, budget, **fields):
    """Creates or checks the results file of a sweep: a file holding runs of another budget, or
    another value of one of `fields` (e.g. `recurrent_batch_norm`), is refused (SystemExit with
    one line naming it). Returns the results."""

    def start(results):
        if results.get("budget") not in (None, dataclasses.asdict(budget)):
            raise SystemExit(
                f"{path} holds runs made with another budget ({results['budget']}); "
                "use another --output"
            )
        for name, value in fields.items():
            stored = results.get(name, value)
            if stored != value:
                raise SystemExit(f"{path} holds runs with {name}={stored!r}; use another --output")
        results.setdefault("budget", dataclasses.asdict(budget))
        results.setdefault("machine", machine())
        results.update(fields)

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return update_results(path, start)


def run_sweep(runs, path, budget, work_dir, shard=(0, 1), threads=1, key=variant_key):
    """Trains and evaluates the runs of this shard that `path` does not hold yet, one at a time,
    adding each to `path` as it ends (so a killed sweep loses at most the run in progress).

    Args:
        runs: [(RunConfig, seed)], in the sweep's order (the same in every shard).
        path: the results file (see `open_results`).
        shard: (i, n): this process runs every n-th run starting at i.
        threads: recorded with each run (set them with `common.set_tf_threads`).
        key: run configuration -> the run's name in the results file and the work folder.
    """
    from rignet_keras.training.trainer import NaNLossError

    index, count = shard
    todo = [(c, s) for i, (c, s) in enumerate(runs) if i % count == index]
    for n, (c, s) in enumerate(todo, 1):
        name = key(c)
        if str(s) in load_results(path).get("runs", {}).get(name, {}):
            continue
        t0 = time.time()
        try:
            record = train_and_evaluate(c.override([("train.seed", s)]), budget, work_dir, key=name)
        except NaNLossError as error:  # a result too: this variant diverged with this seed
            record = {"mIoU": {}, "pAcc": {}, "diverged": str(error).split(".")[0]}
        record["threads"] = threads
        merge_run(path, name, s, record)
        miou = " ".join(f"{100 * x:.1f}" for x in record["mIoU"].values()) or record["diverged"]
        print(
            f"[{index}/{count} {n}/{len(todo)}] {name} seed {s}: mIoU by ui {miou} "
            f"({time.time() - t0:.0f} s)",
            flush=True,
        )


def sweep_parser(doc, output, work_dir, threads=1, helps=None):
    """The parser of a seeded sweep bench (`run_sweep`), from `common.bench_parser` with the
    module's whole docstring: --seeds (0 1 2), --shard, --threads (default `threads`),
    --work-dir, --output (the results JSON, default `output`) and --list. `helps` replaces
    shared help texts as in `bench_parser`."""
    parser = bench_parser(
        doc,
        full_doc=True,
        seeds=[0, 1, 2],
        threads=threads,
        work_dir=work_dir,
        output=output,
        helps={
            "threads": "TF intra- and inter-op threads (default: %(default)s)",
            "work_dir": "checkpoints of each run (default: %(default)s)",
            **(helps or {}),
        },
    )
    parser.add_argument("--shard", default="0/1", help="i/n: run every n-th run starting at i")
    parser.add_argument("--list", action="store_true", help="print the runs and exit")
    return parser


def list_runs(runs, key):
    """--list: prints each (config, seed) run's key and seed, then the count."""
    for config, seed in runs:
        print(key(config), seed)
    print(f"{len(runs)} runs")


def parse_shard(text):
    """ "i/n" -> (i, n) with 0 <= i < n; ValueError otherwise."""
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must be i/n with 0 <= i < n; received {text!r}") from None
    if not 0 <= index < count:
        raise ValueError(f"--shard must be i/n with 0 <= i < n; received {text!r}")
    return index, count


def miou_spread(runs, ui):
    """`common.spread` of the mIoU (%) at `ui` over the seeds of `runs` ({seed: record}); a
    diverged run (no mIoU) is left out. None when no run has it."""
    return spread([r["mIoU"].get(str(ui)) for r in runs.values()], scale=100)


def summarize(results, config):
    """{ui: `miou_spread` over seeds} of one run's model."""
    runs = results.get("runs", {}).get(variant_key(config), {})
    out = {}
    for k in range(1, config.model["num_iterations"] + 1):
        s = miou_spread(runs, k)
        if s:
            out[k] = s
    return out


def markdown(results, all_tables):
    """The tables as Markdown: mIoU (%) mean ± sd over seeds at the trained ui, and at ui = 1."""
    lines = []
    for name, rows in all_tables.items():
        lines += [
            f"**{name}**",
            "",
            "| variant | seeds (diverged) | mIoU at trained ui | mIoU at "
            "ui=1 | best ui (mIoU) | train s/run |",
            "|---|---|---|---|---|---|",
        ]
        for label, config in rows:
            s = summarize(results, config)
            ui = config.model["num_iterations"]
            if not s:
                lines.append(f"| {label} | 0 | - | - | - | - |")
                continue
            best = max(s, key=lambda k: s[k]["mean"])
            runs = results["runs"][variant_key(config)].values()
            secs = statistics.fmean(r["train_seconds"] for r in runs if "train_seconds" in r)
            diverged = sum(1 for r in runs if r.get("diverged"))
            seeds = f"{s[ui]['n'] if ui in s else 0}" + (f" ({diverged})" if diverged else "")
            lines.append(
                f"| {label} | {seeds} | {format_mean_sd(s.get(ui))} | "
                f"{format_mean_sd(s.get(1))} | {best} ({s[best]['mean']:.1f}) | {secs:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def plot(results, prefix, all_tables):
    """mIoU against ui per mode (Table 3's variants) and against measured latency, as
    `<prefix>_miou_vs_ui.png` and `<prefix>_miou_vs_latency.png`."""
    from rignet_keras.training.plots import plot_anytime, pyplot

    headline = [config for _, config in all_tables["headline"]]
    fcns = [c for c in headline if variant_key(c).endswith("-fcn")]
    curves = {}
    for config in [c for _, c in all_tables["table3"]] + fcns:
        if config.model["num_iterations"] not in (1, 6):
            continue
        s = summarize(results, config)
        if s:
            curves[variant_label(config)] = [(k, s[k]["mean"] / 100) for k in sorted(s)]
    paths = [
        plot_anytime(
            curves,
            f"{prefix}_miou_vs_ui.png",
            title="synthetic val: mIoU against ui (mean of seeds)",
        )
    ]
    latency = results.get("latency", {})
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    drawn = set()
    for config in headline + [c for _, c in all_tables["table3"]]:
        key = variant_key(config)
        s, lat = summarize(results, config), latency.get(key)
        if not s or not lat or config.model["num_iterations"] not in (1, 6) or key in drawn:
            continue
        drawn.add(key)
        pts = [(lat[str(k)]["median_ms"], s[k]["mean"]) for k in sorted(s) if str(k) in lat]
        xs, ys = zip(*pts, strict=True)
        ax.plot(xs, ys, marker="o", label=variant_label(config))
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
    p = sweep_parser(
        __doc__,
        output=None,
        work_dir="/tmp/rignet-claims",
        threads=None,
        helps={
            "threads": "TF intra- and inter-op threads (default: 1 when sharded over >1 "
            "processes, else 2)",
            "output": "the results file (default: results/claims_<recurrent_batch_norm>.json)",
        },
    )
    p.add_argument("--tables", nargs="+", choices=[*TABLES, "headline"], default=None)
    p.add_argument("--variants", nargs="+", help="only these variant keys (see --list)")
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
    p.add_argument(
        "--report",
        action="store_true",
        help="measure latency, print the Markdown tables and write the plots",
    )
    p.add_argument("--no-latency", action="store_true", help="--report without timing anything")
    args = p.parse_args(argv)
    args.output = args.output or os.path.join(
        RESULTS_DIR, f"claims_{args.recurrent_batch_norm}.json"
    )

    try:
        index, count = parse_shard(args.shard)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    budget = Budget(steps=args.steps, image_size=args.image_size)
    all_tables = tables(budget, args.recurrent_batch_norm)
    variants = all_variants(all_tables, args.tables)
    if args.variants:
        unknown = sorted(set(args.variants) - {variant_key(c) for c in variants})
        if unknown:
            print(f"error: unknown variant(s) {unknown}; see --list", file=sys.stderr)
            return 2
        variants = [c for c in variants if variant_key(c) in args.variants]
    runs = [(c, s) for s in args.seeds for c in variants]
    if args.list:
        for c, s in runs:
            print(variant_key(c), s)
        print(f"{len(runs)} runs of {len(variants)} variants")
        return 0

    threads = set_tf_threads(args.threads or (1 if count > 1 else 2))

    results = open_results(args.output, budget, recurrent_batch_norm=args.recurrent_batch_norm)

    if args.report:
        latency = results.get("latency", {})
        for c in [] if args.no_latency else variants:
            key = variant_key(c)
            if key not in latency:
                latency[key] = measure_latency(c, budget)
                print(
                    f"latency {key}: "
                    + ", ".join(f"ui={k} {m['median_ms']:.1f} ms" for k, m in latency[key].items()),
                    flush=True,
                )
        if not args.no_latency:
            results = update_results(
                args.output, lambda r: r.update(latency=latency, latency_machine=machine())
            )
        print(markdown(results, all_tables))
        for path in plot(results, os.path.splitext(args.output)[0], all_tables):
            print("wrote", path)
        return 0

    run_sweep(runs, args.output, budget, args.work_dir, (index, count), threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
