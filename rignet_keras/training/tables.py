"""The paper's tables: a layout (data, in recipes/tableN.py), the runs it needs, and the
Markdown it becomes.

`run_tables` trains and evaluates each distinct configuration of one or more tables once (a
variant that several tables share is one run folder, `run_folder`), reads the finished runs'
`summary.json`, and writes each table as Markdown with our number beside the paper's
(`format_table`). `recipes/run_table.py` is its command line.
"""

import json
import os
import re
import sys

from rignet_keras.config import ConfigError, model_label
from rignet_keras.config.flags import add_run_arguments, resolve
from rignet_keras.console import OneLineParser, shown_path
from rignet_keras.training.experiment import run_experiment
from rignet_keras.training.run_inputs import data_layer
from rignet_runtime.atomic import write_text


def _cell(summary, paper, score):
    ours = "—" if summary is None or summary.get(score) is None else f"{100 * summary[score]:.1f}"
    ref = (paper or {}).get(score)
    return f"{ours} ({ref})" if ref is not None else ours


def format_table(table, experiments, summaries):
    """The Markdown of a paper table, each cell "ours (paper)" in percent.

    Args:
        table: the layout: {"title", "kind": "grid" | "list", ...}. A grid has "row_header",
            "rows", "columns", "cells" {(row, column): variant} and "score"; a list has "rows"
            [(label, variant)] and "scores" (e.g. ["pAcc", "mAcc", "mIoU"]).
        experiments: {variant: `RunConfig`} (for the paper's numbers).
        summaries: {variant: summary dict of `run_experiment`} (missing: not run).
    """
    lines = [f"**{table['title']}** — ours (paper), %", ""]
    if table["kind"] == "grid":
        score = table.get("score", "mIoU")
        lines.append("| " + " | ".join([table.get("row_header", "")] + table["columns"]) + " |")
        lines.append("|" + "---|" * (len(table["columns"]) + 1))
        for row in table["rows"]:
            cells = []
            for col in table["columns"]:
                variant = table["cells"].get((row, col))
                if variant is None:
                    cells.append("")
                    continue
                cells.append(_cell(summaries.get(variant), experiments[variant].paper, score))
            lines.append("| " + " | ".join([row] + cells) + " |")
    else:
        scores = table.get("scores", ["mIoU"])
        lines.append("| Method | " + " | ".join(scores) + " |")
        lines.append("|---|" + "---|" * len(scores))
        for label, variant in table["rows"]:
            cells = [_cell(summaries.get(variant), experiments[variant].paper, s) for s in scores]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    notes = table.get("notes")
    if notes:
        lines += ["", notes]
    return "\n".join(lines) + "\n"


def run_folder(root, config):
    """A run's folder under a table root: named by the model and the configuration's
    fingerprint, so a variant that several tables share is one folder, trained once."""
    slug = re.sub(r"[^a-z0-9.]+", "_", model_label(config.model).lower()).strip("_")
    return os.path.join(root, f"{slug}-{config.fingerprint()}")


def run_tables(tables, argv=None, recipe=None):
    """The table runner's `main`: trains and evaluates the variants of one or more tables,
    each distinct configuration once (a variant shared by several tables, or repeated within
    one, is one run), skipping runs whose `summary.json` exists unless `--rerun`; then writes
    `<output-dir>/<table name>.md` for each table.

    Args:
        tables: [(experiments {variant: RunConfig}, layout)] (see `format_table`).
    """
    title = ", ".join(layout["title"].split(":")[0] for _, layout in tables)
    parser = OneLineParser(description=f"Runs {title}")
    parser.add_argument("--variants", help="comma-separated subset (one table only)")
    parser.add_argument("--rerun", action="store_true", help="run variants already done")
    parser.add_argument("--markdown-only", action="store_true", help="only write the tables")
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    if args.variants and len(tables) > 1:
        parser.error("--variants needs a single table")
    root = args.output_dir or os.path.join("runs", "tables")
    resolved = []
    try:
        for experiments, layout in tables:
            names = args.variants.split(",") if args.variants else list(experiments)
            unknown = [n for n in names if n not in experiments]
            if unknown:
                raise ConfigError(f"unknown variants {unknown}; choose from {sorted(experiments)}")
            where = shown_path(recipe) if recipe else f"{layout['name']}"
            configs = {n: resolve(experiments[n], args, where, experiments) for n in names}
            resolved.append((experiments, layout, configs))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    done = {}
    for experiments, layout, configs in resolved:
        summaries = {}
        for name, config in configs.items():
            out = run_folder(root, config)
            path = os.path.join(out, "summary.json")
            if out in done:
                summaries[name] = done[out]
            elif os.path.isfile(path) and not args.rerun:
                with open(path, encoding="utf-8") as f:
                    summaries[name] = done[out] = json.load(f)
            elif not args.markdown_only:
                try:
                    summaries[name] = done[out] = run_experiment(
                        config,
                        out,
                        resume=args.resume,
                        eval_only=args.eval_only,
                        progress=not args.quiet,
                    ).summary
                except (data_layer().DatasetError, ConfigError) as error:
                    print(f"error: {error}", file=sys.stderr)
                    return 2
                except FloatingPointError as error:  # a NaN stop: this run failed
                    print(f"error: {config.name}: {error}", file=sys.stderr)
                    return 1
        markdown = format_table(layout, experiments, summaries)
        os.makedirs(root, exist_ok=True)
        path = os.path.join(root, f"{layout['name']}.md")
        write_text(path, markdown)
        print(markdown)
        print(f"wrote {path}")
    return 0


def run_table(experiments, table, argv=None, recipe=None):
    """`run_tables` for one table."""
    return run_tables([(experiments, table)], argv, recipe=recipe)
