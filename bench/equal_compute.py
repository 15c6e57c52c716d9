"""RIGNet against feed-forward networks of equal compute and of equal parameters.

RIGNet Pu<6..4> trained at ui = 2, 4, 6 (`bench.anytime`'s runs, the claims' budget) against
feed-forward ResNets that spend what it spends:

    equal multiply-adds, wider   ResNet-18 FCNs with the `width_multiplier` whose multiply-adds
                                 at 96x96 are nearest those of the RIGNet at each ui
    equal multiply-adds, deeper  ResNet-34, -50 and -101 FCNs at the narrow width (the nearest
                                 match of each is printed beside it)
    equal parameters             the ResNet-18 FCN width nearest the RIGNet's parameters

Multiply-adds and parameters are counted with `rignet_keras.profile` at 96x96 (`--report`
prints them in the table). The runs go through `bench.claims`' sweep and share
`bench.anytime`'s work folder: a run both need is trained once and evaluated here again.

    python -m bench.equal_compute               # the sweep (one process, one thread)
    python -m bench.equal_compute --report      # the table and the plot (mIoU against MACs)
"""

import os
import sys

from bench.anytime import WORK_DIR, record_commands, run_config, run_key
from bench.claims import (
    Budget,
    list_runs,
    miou_spread,
    open_results,
    parse_shard,
    run_sweep,
    sweep_parser,
    update_results,
)
from bench.common import RESULTS_DIR, format_mean_sd, set_tf_threads

RIGNET_UI = (2, 4, 6)
# ResNet-18 widths whose multiply-adds at 96x96 are nearest those of Pu<6..4> x0.25 at ui = 2,
# 4, 6 (37.5, 59.9, 82.4 M against 36.1, 60.2, 82.7 M), and whose parameters are nearest its
# (0.951 M against 0.962 M): `--check-widths` recounts them.
WIDER = {2: 0.30, 4: 0.395, 6: 0.465}
EQUAL_PARAMETERS = 0.265
DEEPER = (34, 50, 101)


def rows(budget):
    """[(group, label, RunConfig)] of the table, in its order."""
    out = [("baseline", "ResNet-18 FCN x0.25", run_config(budget, blocks=None))]
    for ui in RIGNET_UI:
        out.append(("RIGNet", f"ResNet-18 RIGNet Pu<6..4> x0.25, ui={ui}", run_config(budget, ui)))
    for ui, width in WIDER.items():
        config = run_config(budget, blocks=None, width_multiplier=width)
        out.append((f"MACs of ui={ui}, wider", f"ResNet-18 FCN x{width:g}", config))
    for depth in DEEPER:
        config = run_config(budget, blocks=None, depth=depth)
        out.append(("MACs, deeper", f"ResNet-{depth} FCN x0.25", config))
    config = run_config(budget, blocks=None, width_multiplier=EQUAL_PARAMETERS)
    out.append(("parameters", f"ResNet-18 FCN x{EQUAL_PARAMETERS:g}", config))
    return out


def count(config, budget):
    """(multiply-adds at the trained ui, parameters) of a run's model at the budget's size."""
    from rignet_keras.models import RIGNet
    from rignet_keras.profile import count_macs

    model = RIGNet(budget.num_classes, **config.model)
    size = (budget.image_size, budget.image_size)
    model.build((None, *size, 3))
    return count_macs(model, size, config.model["num_iterations"]), model.count_params()


def nearest_width(target, key, budget, widths):
    """The ResNet-18 FCN width of `widths` whose count (`key`: 0 MACs, 1 parameters) is nearest
    `target`, and that count."""
    best = None
    for width in widths:
        value = count(run_config(budget, blocks=None, width_multiplier=width), budget)[key]
        if best is None or abs(value - target) < abs(best[1] - target):
            best = (width, value)
    return best


def markdown(results, table, budget):
    costs = results.get("costs", {})
    lines = [
        "| matches | network | MACs at 96x96 (M) | parameters (M) | seeds | mIoU (%) |",
        "|---|---|---|---|---|---|",
    ]
    for group, label, config in table:
        key = run_key(config, budget)
        ui = config.model["num_iterations"]
        s = miou_spread(results.get("runs", {}).get(key, {}), ui)
        macs, params = costs.get(key, (None, None))
        cells = [
            group,
            label,
            "-" if macs is None else f"{macs / 1e6:.1f}",
            "-" if params is None else f"{params / 1e6:.3f}",
            str(s["n"] if s else 0),
            format_mean_sd(s),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results, table, budget, path):
    """mIoU (mean ± sd over seeds) against multiply-adds, one marker per family."""
    from rignet_keras.training.plots import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=120)
    families = {}
    for group, label, config in table:
        key = run_key(config, budget)
        ui = config.model["num_iterations"]
        s = miou_spread(results.get("runs", {}).get(key, {}), ui)
        cost = results.get("costs", {}).get(key)
        if not s or not cost:
            continue
        if group == "RIGNet":
            family = "RIGNet Pu<6..4> x0.25 (ui = 2, 4, 6)"
        elif "deeper" in group:
            family = "deeper FCN (ResNet-34/50/101 x0.25)"
        elif group == "baseline":
            family = "ResNet-18 FCN x0.25"
        else:
            family = "wider ResNet-18 FCN"
        families.setdefault(family, []).append((cost[0] / 1e6, s["mean"], s["sd"], label))
    for family, points in families.items():
        points.sort()
        xs, ys, sds, _ = zip(*points, strict=True)
        ax.errorbar(xs, ys, yerr=sds, marker="o", capsize=3, label=family)
    ax.set_xlabel("multiply-adds at 96x96 (M)")
    ax.set_ylabel("mIoU (%), mean ± sd over seeds")
    ax.set_title("synthetic val: accuracy against compute")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv=None):
    p = sweep_parser(__doc__, os.path.join(RESULTS_DIR, "equal_compute.json"), WORK_DIR)
    p.add_argument("--report", action="store_true", help="count, print the table, write the plot")
    p.add_argument(
        "--check-widths", action="store_true", help="recount the matching widths and exit"
    )
    args = p.parse_args(argv)
    try:
        shard = parse_shard(args.shard)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    budget = Budget()
    table = rows(budget)
    runs = [(c, s) for s in args.seeds for _, _, c in table]
    if args.list:
        list_runs(runs, lambda c: run_key(c, budget))
        return 0
    threads = set_tf_threads(args.threads)
    if args.check_widths:
        grid = [round(0.25 + 0.005 * i, 3) for i in range(51)]
        for ui in RIGNET_UI:
            macs, params = count(run_config(budget, ui), budget)
            width, value = nearest_width(macs, 0, budget, grid)
            print(f"ui={ui}: {macs / 1e6:.1f} M MACs; nearest x{width:g} ({value / 1e6:.1f} M)")
        width, value = nearest_width(params, 1, budget, grid)
        print(f"parameters {params / 1e6:.3f} M; nearest x{width:g} ({value / 1e6:.3f} M)")
        return 0
    results = open_results(args.output, budget)
    if args.report:
        costs = {run_key(c, budget): count(c, budget) for _, _, c in table}
        commands = ["python -m bench.equal_compute", "python -m bench.equal_compute --report"]

        def change(r):
            r["costs"] = costs
            record_commands(r, commands)

        results = update_results(args.output, change)
        print(markdown(results, table, budget))
        path = plot(results, table, budget, os.path.splitext(args.output)[0] + "_miou_vs_macs.png")
        print("wrote", path)
        return 0
    run_sweep(
        runs, args.output, budget, args.work_dir, shard, threads, lambda c: run_key(c, budget)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
