"""The command line of a recipe file: `recipe_main` picks a variant of its `EXPERIMENTS`, applies
the flags' overrides and runs it (`run_guarded`), printing a user's error as one line."""

import json
import os
import sys

from rignet_keras.config import ConfigError
from rignet_keras.config.flags import add_run_arguments, resolve
from rignet_keras.console import OneLineParser, report_errors, shown_path
from rignet_keras.training.determinism import restart_for_determinism
from rignet_keras.training.experiment import run_experiment


def run_guarded(config, output_dir, **kwargs):
    """`run_experiment` under `rignet_keras.console.report_errors`: a user's error (a missing
    dataset, a bad sample, a refused configuration, a damaged run folder) is one line and exit
    status 2, a training stopped on a NaN or an infinity one line (naming the step and the last
    good checkpoint) and exit status 1; success prints the summary as one JSON line."""

    def run():
        restart_for_determinism(config.train.deterministic)
        summary = run_experiment(config, output_dir, **kwargs).summary
        print(json.dumps({k: summary[k] for k in ("name", "label", "ui", "mIoU", "pAcc", "mAcc")}))
        return 0

    return report_errors(run)


def recipe_main(experiments, argv=None, default=None, description=None, recipe=None):
    """The `main` of a recipe file: picks a variant, applies the overrides, runs it.

    Args:
        experiments: {variant name: `RunConfig`} (a dict of one for a single-model recipe).
        argv: the arguments (default `sys.argv[1:]`).
        default: the variant run without `--variant`.
        recipe: the recipe's path (for messages).

    Returns:
        the process exit status (0 ok; 2 when the data is missing or an override is refused).
    """
    parser = OneLineParser(description=description)
    parser.add_argument(
        "--variant",
        default=default or next(iter(experiments)),
        choices=sorted(experiments),
        help="which model of the table",
    )
    parser.add_argument("--list", action="store_true", help="list the variants and exit")
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    if args.list:
        for name, config in experiments.items():
            print(f"{name:28s} {config.label()}")
        return 0
    try:
        config = resolve(
            experiments[args.variant], args, shown_path(recipe) or "the recipe", experiments
        )
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    output_dir = args.output_dir or os.path.join("runs", config.name)
    return run_guarded(
        config, output_dir, resume=args.resume, eval_only=args.eval_only, progress=not args.quiet
    )
