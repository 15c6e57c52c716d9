"""One model for every ui: random-ui training against a model trained at each fixed ui.

A RIGNet Pu<6..4> trained with ui drawn per step from [1, K] (`train.train_iterations=(1, K)`,
`--random-ui 1,K` on the command line) is meant to serve every compute budget from one set of
weights. This sweep measures whether it does, on the synthetic task with the claims' budget
(`bench.claims.Budget`: 96 px, 3 classes, 300 steps, narrow ResNet-18 x0.25), for several
seeds:

    fcn         the feed-forward ResNet-18 (a RIGNet trained at ui = 1 alone is this network)
    fixed ui    Pu<6..4> trained at ui = 2, 3, 4
    random      Pu<6..4> trained with ui drawn uniformly from [1, K]

every model evaluated at ui = 1..K (the FCN at ui = 1, its only output). The goal: at every ui
the random-ui model within 1 mIoU point of the model trained for that ui, and its ui = 1 within
1 point of the FCN. `--diagnose` adds variants of the random-ui model that test the usual
suspects when it falls short: a loss on every iteration ("uniform_loss"), the batch-norm
statistics of the passes ("first_pass", "every_pass": the `recurrent_batch_norm` options; and
"prefix", the random-ui method that always runs ui = K and so updates every pass's statistics
at every step), and the learning rate ("lr0.025", "lr0.1").

The runs go through `bench.claims`' sweep (`run_sweep`: one runner, results written after
every run under a lock, resumable, `--shard i/n`); the work folder is shared with
`bench.equal_compute`, so that a run both need is trained once.

    python -m bench.anytime                      # the sweep (one process, one thread)
    python -m bench.anytime --diagnose uniform_loss every_pass
    python -m bench.anytime --report             # the table, the goal and the plot
"""

import os
import sys
import types

from bench.claims import (
    Budget,
    claims_config,
    list_runs,
    miou_spread,
    open_results,
    parse_shard,
    run_sweep,
    sweep_parser,
    update_results,
    variant_key,
)
from bench.common import (
    RESULTS_DIR,
    format_mean_sd,
    load_results,
    machine,
    set_tf_threads,
    spread,
)

K = 4
WORK_DIR = "/tmp/rignet-anytime"
DEFAULT_RBN = "gated_passes"
# The diagnosis variants of the random-ui model: name -> (what changes, overrides).
DIAGNOSES = {
    "uniform_loss": (
        "loss on every iteration, uniform weights",
        [("train.iteration_loss_weights", "uniform"), ("model.return_all_iterations", True)],
    ),
    "first_pass": (
        "recurrent_batch_norm='first_pass'",
        [("model.recurrent_batch_norm", "first_pass")],
    ),
    "every_pass": (
        "recurrent_batch_norm='every_pass'",
        [("model.recurrent_batch_norm", "every_pass")],
    ),
    "prefix": ("random_ui_method='prefix'", [("train.random_ui_method", "prefix")]),
    "lr0.025": ("learning rate 0.025", [("train.learning_rate", 0.025)]),
    "lr0.1": ("learning rate 0.1", [("train.learning_rate", 0.1)]),
}


COMMANDS = [
    "python -m bench.anytime",
    "python -m bench.anytime --diagnose uniform_loss --only-diagnoses",
    "python -m bench.anytime --diagnose every_pass --only-diagnoses",
    "python -m bench.anytime --diagnose prefix --only-diagnoses",
    "python -m bench.anytime --report",
]


def record_commands(results, commands):
    """Writes the sweep's commands, the seeds of its runs and the machine of the report into
    the results (what the file's runs came from)."""
    results["commands"] = commands
    results["seeds"] = sorted({int(s) for runs in results.get("runs", {}).values() for s in runs})
    results["report_machine"] = machine()


def model_section(ui, blocks=(4, 6)):
    """A recipe-shaped model section: Pu<6..`blocks[0]`> at `ui`, or the FCN (`blocks=None`)."""
    model = dict(
        backbone="resnet50",
        unroll_mode="parallel",
        feedback_blocks=blocks,
        num_iterations=1 if blocks is None else ui,
    )
    return types.SimpleNamespace(model=model)


def run_config(
    budget,
    ui=1,
    blocks=(4, 6),
    train_iterations=None,
    eval_ui=None,
    depth=18,
    width_multiplier=None,
    overrides=(),
):
    """The synthetic-task `RunConfig` of one model of these studies.

    Args:
        ui: the model's (and, without `train_iterations`, the training's) ui.
        blocks: the feedback blocks; None for the FCN.
        train_iterations: None, or (lo, hi) for random-ui training.
        eval_ui: evaluated at ui = 1..eval_ui (default: the model's ui).
        depth, width_multiplier: the ResNet (default: the budget's width).
        overrides: more (key, value) overrides (`RunConfig.override`).
    """
    config = claims_config(
        model_section(ui, blocks), budget, 0, DEFAULT_RBN, depth, width_multiplier
    )
    changes = [
        ("eval.iterations", tuple(range(1, (eval_ui or config.model["num_iterations"]) + 1)))
    ]
    if train_iterations is not None:
        changes.append(("train.train_iterations", tuple(train_iterations)))
    config = config.override(changes + list(overrides))
    config.name = run_key(config, budget)
    return config


def run_key(config, budget=None):
    """The run's name in the results file and the work folder: `bench.claims.variant_key` and
    whatever else of the training differs from the claims' runs (e.g.
    "r18-Pu<6..4>-ui4-avg-mul_sigmoid-random1to4", "r18-fcn-w0.395")."""
    budget = budget or Budget()
    key = variant_key(config)
    m, t = config.model, config.train
    if m["width_multiplier"] != budget.width_multiplier:
        key += f"-w{m['width_multiplier']:g}"
    if m.get("recurrent_batch_norm", DEFAULT_RBN) != DEFAULT_RBN:
        key += f"-bn_{m['recurrent_batch_norm']}"
    if t.train_iterations is not None:
        lo, hi = t.train_iterations
        if (lo, hi) != (m["num_iterations"],) * 2:
            key += f"-random{lo}to{hi}" if lo != hi else f"-train{lo}"
    if t.iteration_loss_weights is not None:
        key += f"-loss_{t.iteration_loss_weights}"
    if t.random_ui_method != "auto":
        key += f"-{t.random_ui_method}"
    if t.learning_rate != budget.learning_rate:
        key += f"-lr{t.learning_rate:g}"
    return key


def schemes(budget, k=K, diagnoses=()):
    """[(label, RunConfig)]: the FCN, Pu<6..4> trained at each fixed ui 2..k, the random-ui
    model, and the named diagnosis variants of it."""
    rows = [("FCN (ui=1 alone)", run_config(budget, blocks=None))]
    rows += [(f"trained at ui={ui}", run_config(budget, ui, eval_ui=k)) for ui in range(2, k + 1)]
    random = dict(ui=k, train_iterations=(1, k), eval_ui=k)
    rows.append((f"random ui in [1, {k}]", run_config(budget, **random)))
    for name in diagnoses:
        what, overrides = DIAGNOSES[name]
        rows.append(
            (f"random ui in [1, {k}], {what}", run_config(budget, **random, overrides=overrides))
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Report


def summarize(results, config, budget):
    """{ui: `claims.miou_spread` (mIoU %) over seeds} of one run's model."""
    runs = results.get("runs", {}).get(run_key(config, budget), {})
    out = {}
    for ui in config.eval.iterations:
        s = miou_spread(runs, ui)
        if s:
            out[ui] = s
    return out


def goal(results, rows, budget, k=K, tolerance=1.0):
    """The goal's checks: {ui: (random-ui mean - reference mean, reference)} with the
    reference the model trained at that ui (the FCN at ui = 1), and whether each is within
    `tolerance` points."""
    by_label = dict(rows)
    random = summarize(results, by_label[f"random ui in [1, {k}]"], budget)
    out = {}
    for ui in range(1, k + 1):
        ref_label = "FCN (ui=1 alone)" if ui == 1 else f"trained at ui={ui}"
        ref = summarize(results, by_label[ref_label], budget).get(ui)
        if ref and ui in random:
            gap = random[ui]["mean"] - ref["mean"]
            runs = results["runs"]
            mine = runs[run_key(by_label[f"random ui in [1, {k}]"], budget)]
            theirs = runs[run_key(by_label[ref_label], budget)]
            paired = spread(
                [
                    mine[s]["mIoU"][str(ui)] - theirs[s]["mIoU"][str(ui)]
                    for s in sorted(set(mine) & set(theirs))
                    if str(ui) in mine[s]["mIoU"] and str(ui) in theirs[s]["mIoU"]
                ],
                scale=100,
            )
            out[ui] = {"reference": ref_label, "gap": gap, "paired": paired}
            out[ui]["met"] = gap >= -tolerance
    return out


def markdown(results, rows, budget, k=K):
    lines = [
        "| trained | seeds | " + " | ".join(f"ui={ui}" for ui in range(1, k + 1)) + " |",
        "|---|---|" + "---|" * k,
    ]
    for label, config in rows:
        s = summarize(results, config, budget)
        n = max((v["n"] for v in s.values()), default=0)
        cells = [format_mean_sd(s.get(ui)) for ui in range(1, k + 1)]
        if config.model["feedback_blocks"] is None:  # one output whatever the ui
            cells = [cells[0]] + ["(= ui=1)"] * (k - 1)
        lines.append(f"| {label} | {n} | " + " | ".join(cells) + " |")
    checks = goal(results, rows, budget, k)
    if checks:
        lines += ["", f"random ui in [1, {k}] minus the reference (goal: >= -1.0 point):", ""]
        for ui, c in checks.items():
            verdict = "met" if c["met"] else "MISSED"
            p = c["paired"]
            lines.append(
                f"- ui={ui}: {c['gap']:+.1f} against {c['reference']} ({verdict}); per seed "
                f"{p['mean']:+.1f} ± {p['sd']:.1f}, from {p['min']:+.1f} to {p['max']:+.1f}"
            )
    return "\n".join(lines)


def plot(results, rows, budget, path, k=K):
    """mIoU against ui per training scheme, mean ± sd over seeds (error bars)."""
    from rignet_keras.training.plots import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5.4), dpi=120)
    for i, (label, config) in enumerate(rows):
        s = summarize(results, config, budget)
        if not s:
            continue
        if config.model["feedback_blocks"] is None:
            ax.axhspan(s[1]["mean"] - s[1]["sd"], s[1]["mean"] + s[1]["sd"], color="0.85")
            ax.axhline(s[1]["mean"], color="0.4", linestyle="--", label=label)
            continue
        uis = sorted(s)
        offset = (i - len(rows) / 2) * 0.03
        ax.errorbar(
            [u + offset for u in uis],
            [s[u]["mean"] for u in uis],
            yerr=[s[u]["sd"] for u in uis],
            marker="o",
            capsize=3,
            label=label,
        )
    ax.set_xticks(range(1, k + 1))
    ax.set_xlabel("ui at evaluation")
    ax.set_ylabel("mIoU (%), mean ± sd over seeds")
    ax.set_title("synthetic val: Pu<6..4> by training scheme")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv=None):
    p = sweep_parser(__doc__, os.path.join(RESULTS_DIR, "anytime.json"), WORK_DIR)
    p.add_argument("--diagnose", nargs="+", default=[], choices=sorted(DIAGNOSES))
    p.add_argument("--only-diagnoses", action="store_true", help="run the diagnoses alone")
    p.add_argument("--report", action="store_true", help="print the table, write the plot")
    args = p.parse_args(argv)
    try:
        shard = parse_shard(args.shard)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    budget = Budget()
    if args.report:
        args.diagnose = sorted({*args.diagnose, *load_results(args.output).get("diagnoses", [])})
    rows = schemes(budget, K, args.diagnose)
    configs = [c for label, c in rows]
    if args.only_diagnoses:
        configs = configs[-len(args.diagnose) :] if args.diagnose else []
    runs = [(c, s) for s in args.seeds for c in configs]
    if args.list:
        list_runs(runs, lambda c: run_key(c, budget))
        return 0
    results = open_results(args.output, budget, k=K)
    if args.report:
        results = update_results(args.output, lambda r: record_commands(r, COMMANDS))
        print(markdown(results, rows, budget))
        path = plot(results, rows, budget, os.path.splitext(args.output)[0] + "_miou_vs_ui.png")
        print("wrote", path)
        return 0
    if args.diagnose:
        update_results(
            args.output,
            lambda r: r.__setitem__("diagnoses", sorted({*r.get("diagnoses", []), *args.diagnose})),
        )
    threads = set_tf_threads(args.threads)
    run_sweep(
        runs, args.output, budget, args.work_dir, shard, threads, lambda c: run_key(c, budget)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
