"""Experiments: a model, a dataset, a training recipe and an evaluation, as one config; and
`run_experiment`, which the recipes, the table runner and `rignet train` call.

An experiment's folder holds the `Trainer`'s files (config, history, checkpoints, backup) and::

    eval/results.json        scores for every ui (one confusion matrix per ui)
    eval/anytime_miou.png    mIoU against ui
    eval/predictions/        palette masks, overlays and gate maps for a sample of images
    summary.json             the headline numbers (what the table runner reads)
"""

import argparse
import dataclasses
import json
import os
import sys
import time

from rignet_keras.training.trainer import TrainConfig, Trainer, save_json

MODE_LABELS = {
    "sequential": "Su",
    "parallel": "Pu",
    "multi_range": "Pf_u",
    "network_recurrent": "network-wide",
    "network_gated": "network-wide gated",
}
BACKBONE_LABELS = {
    "resnet18": "ResNet18",
    "resnet34": "ResNet34",
    "resnet50": "ResNet50",
    "resnet101": "ResNet101",
    "resnet152": "ResNet152",
    "mobilenetv2": "MobileNetV2",
    "deeplabv2": "DeepLabV2",
}


def _data_layer():
    """The data layer's public functions (imported late: it is optional for the library)."""
    from rignet_keras import data

    return data


@dataclasses.dataclass
class ModelConfig:
    """The `RIGNet` constructor arguments of an experiment (see `rignet_keras.RIGNet`).

    `feedback_blocks=None` with `num_iterations=1` is the feed-forward (FCN) baseline.
    `backbone_weights` is "imagenet" (downloaded by Keras once), a path, or None; it is
    ignored for backbones without published weights (ResNet-18/34).
    """

    backbone: str = "resnet50"
    unroll_mode: str = "parallel"
    feedback_blocks: object = (4, 6)
    num_iterations: int = 2
    output_stride: int | None = None
    head: str | None = None
    gate_pooling: str | None = "avg"
    gate_combine: str = "mul_sigmoid"
    gate_bottleneck: int | None = None
    return_all_iterations: bool = False
    backbone_weights: str | None = "imagenet"

    def __post_init__(self):
        if isinstance(self.feedback_blocks, list):
            self.feedback_blocks = tuple(self.feedback_blocks)

    @property
    def preprocessing(self):
        from rignet_keras.backbones import get_backbone_spec

        return get_backbone_spec(self.backbone).preprocessing

    def resolved_backbone_weights(self):
        from rignet_keras.backbones import get_backbone_spec

        if self.backbone_weights in (None, "none"):
            return None
        if get_backbone_spec(self.backbone).imagenet_model is None:
            return None
        return self.backbone_weights

    def build(self, num_classes, sync_batch_norm=False):
        from rignet_keras.models import RIGNet

        return RIGNet(
            num_classes,
            backbone=self.backbone,
            output_stride=self.output_stride,
            head=self.head,
            unroll_mode=self.unroll_mode,
            feedback_blocks=self.feedback_blocks,
            num_iterations=self.num_iterations,
            gate_pooling=self.gate_pooling,
            gate_combine=self.gate_combine,
            gate_bottleneck=self.gate_bottleneck,
            return_all_iterations=self.return_all_iterations,
            sync_batch_norm=sync_batch_norm,
            backbone_weights=self.resolved_backbone_weights(),
        )

    @property
    def is_baseline(self):
        return self.feedback_blocks is None and self.unroll_mode in (
            "parallel",
            "sequential",
            "multi_range",
        )

    def label(self):
        """The paper's name for the model, e.g. "ResNet50-RIGNet Pu<6..4>, ui=6"."""
        name = BACKBONE_LABELS.get(self.backbone, self.backbone)
        if self.output_stride == 8 and self.backbone != "deeplabv2":
            name += " (8s)"
        if self.is_baseline:
            return f"{name}-FCN" if self.backbone != "deeplabv2" else name
        mode = MODE_LABELS[self.unroll_mode]
        if self.unroll_mode in ("network_recurrent", "network_gated"):
            return f"{name} {mode}, ui={self.num_iterations}"
        first, last = self.feedback_blocks
        blocks = f"<{last}>" if first == last else f"<{last}..{first}>"
        extra = []
        if self.gate_combine != "mul_sigmoid":
            extra.append(self.gate_combine)
        if self.gate_pooling != "avg":
            extra.append(f"pool={self.gate_pooling}")
        tail = f" [{', '.join(extra)}]" if extra else ""
        return f"{name}-RIGNet {mode}{blocks}, ui={self.num_iterations}{tail}"


@dataclasses.dataclass
class DataConfig:
    """Where the data comes from and how it is fed (see `rignet_keras.data.build_dataset`).

    Args:
        source: training dataset ("voc_aug", "voc", "cocostuff10k", "synthetic", or TFRecords).
        train_split: its split.
        eval_source: evaluation dataset; None for `source`.
        eval_split: "val" (VOC), "test" (COCO-Stuff 10k).
        data_dir: the data folder; None for the data layer's default (`$RIGNET_DATA_DIR` or
            `~/.rignet/data`); for "synthetic", None generates the data in memory.
        crop_size: training crop (square side).
        scale_range, flip: training augmentation.
        eval_mode, eval_size, eval_batch_size: evaluation batches (see `build_dataset`).
        label_convention: COCO-Stuff "171" or "182".
        num_train_samples, num_eval_samples: use only the first N samples.
        synthetic: dict of `SyntheticConfig` fields for the in-memory synthetic source.
    """

    source: str = "voc_aug"
    train_split: str = "train"
    eval_source: str | None = None
    eval_split: str = "val"
    data_dir: str | None = None
    crop_size: int = 321
    scale_range: tuple = (0.5, 2.0)
    flip: bool = True
    eval_mode: str = "pad"
    eval_size: object = None
    eval_batch_size: int = 1
    label_convention: str = "171"
    num_train_samples: int | None = None
    num_eval_samples: int | None = None
    synthetic: dict | None = None

    def synthetic_config(self):
        if not self.synthetic:
            return None
        return _data_layer().SyntheticConfig(**self.synthetic)

    def common(self, preprocessing, seed):
        return dict(
            data_dir=self.data_dir, preprocessing=preprocessing, seed=seed,
            label_convention=self.label_convention, synthetic_config=self.synthetic_config(),
        )  # fmt: skip

    def train_stream(self, batch_size, preprocessing, seed):
        """A callable `skip_batches -> Dataset`: the endless, deterministic training stream."""
        build = _data_layer().build_dataset
        crop = (self.crop_size, self.crop_size)

        def stream(skip_batches=0):
            return build(
                self.source, self.train_split, batch_size=batch_size, training=True,
                crop_size=crop, scale_range=tuple(self.scale_range), flip=self.flip, repeat=True,
                skip_batches=skip_batches, num_samples=self.num_train_samples,
                **self.common(preprocessing, seed),
            )  # fmt: skip

        return stream

    def eval_dataset(self, preprocessing, return_ids=False):
        """(finite evaluation dataset, its `DatasetInfo`)."""
        return _data_layer().build_dataset(
            self.eval_source or self.source, self.eval_split, batch_size=self.eval_batch_size,
            training=False, eval_mode=self.eval_mode, eval_size=self.eval_size,
            num_samples=self.num_eval_samples, return_ids=return_ids, with_info=True,
            **self.common(preprocessing, None),
        )  # fmt: skip

    def info(self):
        return _data_layer().get_info(
            self.source if self.source in _data_layer().SOURCES else "synthetic",
            label_convention=self.label_convention, data_dir=self.data_dir,
            synthetic_config=self.synthetic_config(),
        )  # fmt: skip


@dataclasses.dataclass
class EvalConfig:
    """How to evaluate: `iterations` None for 1..ui (the anytime curve); flip and multi-scale
    testing; how many images to draw; which checkpoint ("best" or "last")."""

    iterations: object = None
    flip: bool = False
    scales: tuple = (1.0,)
    num_visualize: int = 8
    checkpoint: str = "best"
    max_batches: int | None = None


@dataclasses.dataclass
class Experiment:
    """One row of a paper table: what to train, on what, how, and how to evaluate it."""

    name: str
    model: ModelConfig
    data: DataConfig
    train: TrainConfig
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    description: str = ""
    paper: dict | None = None  # the paper's numbers, e.g. {"mIoU": 68.9}

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["label"] = self.model.label()
        return d

    def replace(self, **sections):
        """A copy with some fields of the sections replaced: `exp.replace(train={"steps": 10})`."""
        changes = {}
        for section, fields in sections.items():
            current = getattr(self, section)
            if dataclasses.is_dataclass(current):
                changes[section] = dataclasses.replace(current, **fields)
            else:
                changes[section] = fields
        return dataclasses.replace(self, **changes)


def paper_experiment(name, *, dataset="voc", backbone="resnet50", mode="parallel", blocks=(4, 6),
                     ui=2, output_stride=None, gate_combine="mul_sigmoid", gate_pooling="avg",
                     paper=None, description=""):  # fmt: skip
    """An experiment with the project's recipe for the paper's datasets (the paper does not give
    its training hyper-parameters; these are the field's: SGD, momentum 0.9, poly 0.9, crop
    321, batch 16, ImageNet backbone at a tenth of the rate of gates and head).

    Args:
        dataset: "voc" (train on VOC-aug, evaluate on VOC val) or "cocostuff" (10k: train/test).
        mode: unroll mode; `blocks=None` (and ui 1) for the FCN baseline.
    """
    if blocks is None and mode in ("parallel", "sequential", "multi_range"):
        ui = 1
    deeplab = backbone == "deeplabv2"
    model = ModelConfig(
        backbone=backbone, unroll_mode=mode, feedback_blocks=blocks, num_iterations=ui,
        output_stride=output_stride, gate_combine=gate_combine, gate_pooling=gate_pooling,
    )  # fmt: skip
    if dataset == "voc":
        data = DataConfig(source="voc_aug", eval_source="voc", eval_split="val")
        steps = 30000
    elif dataset == "cocostuff":
        data = DataConfig(source="cocostuff10k", eval_split="test", label_convention="171")
        steps = 20000
    else:
        raise ValueError(f"dataset must be 'voc' or 'cocostuff'; received {dataset!r}")
    train = TrainConfig(
        steps=steps, steps_per_epoch=1000, batch_size=16,
        learning_rate=0.0025 if deeplab else 0.01, weight_decay=5e-4 if deeplab else 1e-4,
        warmup_steps=500, backbone_lr_multiplier=0.1,
    )  # fmt: skip
    return Experiment(
        name=name, model=model, data=data, train=train, paper=paper,
        description=description or model.label(),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------


def run_experiment(experiment, output_dir, *, resume=False, eval_only=False, progress=True,
                   strategy=None):  # fmt: skip
    """Trains (unless `eval_only`) and evaluates an experiment; writes its folder.

    The data is opened first: without it, this stops at once with the data layer's
    `DatasetError` (naming the path and the download command), before any model is built.

    Returns:
        the summary dict (also written to `output_dir/summary.json`).
    """
    exp = experiment
    t0 = time.time()
    preprocessing = exp.model.preprocessing
    # Open the data before building anything heavy: a missing dataset fails here.
    train_stream = exp.data.train_stream(exp.train.batch_size, preprocessing, exp.train.seed)
    first = None if eval_only else train_stream(0)
    val_data, info = exp.data.eval_dataset(preprocessing)
    num_classes = info.num_classes
    del first
    print(
        f"[{exp.name}] {exp.model.label()} on {exp.data.source} ({num_classes} classes)", flush=True
    )

    trainer = Trainer(exp.train, output_dir, strategy=strategy)
    size = exp.data.crop_size
    trainer.build(
        lambda: exp.model.build(num_classes, sync_batch_norm=False), (None, size, size, 3)
    )
    network = trainer.network
    train_result = None
    if not eval_only:
        train_result = trainer.fit(
            train_stream, val_data=val_data, resume=resume,
            run_info={"experiment": exp.to_dict(), "dataset": info.to_dict()},
        )  # fmt: skip
        print(train_result.summary(), flush=True)
    weights = os.path.join(trainer.checkpoint_dir, f"{exp.eval.checkpoint}.weights.h5")
    if not os.path.isfile(weights):
        weights = os.path.join(trainer.checkpoint_dir, "last.weights.h5")
    if os.path.isfile(weights):
        network.load_weights(weights)
    elif eval_only:
        raise FileNotFoundError(f"no checkpoint to evaluate in {trainer.checkpoint_dir}")

    from rignet_keras.training.evaluate import evaluate
    from rignet_keras.training.visualize import save_predictions

    result = evaluate(
        network, val_data, num_classes, iterations=exp.eval.iterations, flip=exp.eval.flip,
        scales=exp.eval.scales, class_names=info.class_names, max_batches=exp.eval.max_batches,
        progress=progress, strategy=trainer.strategy,
        info={"checkpoint": weights, "dataset": info.to_dict(), "model": exp.model.label()},
    )  # fmt: skip
    eval_dir = os.path.join(trainer.write_dir, "eval")
    result.save(eval_dir, title=exp.model.label())
    print(result.table(), flush=True)
    if exp.eval.num_visualize:
        vis_data, _ = exp.data.eval_dataset(preprocessing, return_ids=True)
        save_predictions(
            network,
            vis_data,
            os.path.join(eval_dir, "predictions"),
            num_images=exp.eval.num_visualize,
            preprocessing=preprocessing,
        )
    k = network.num_iterations
    headline = result.scores[k] if k in result.scores else result.scores[max(result.scores)]
    summary = {
        "name": exp.name,
        "label": exp.model.label(),
        "dataset": info.name,
        "num_classes": num_classes,
        "ui": k,
        "mIoU": headline["mIoU"],
        "pAcc": headline["pAcc"],
        "mAcc": headline["mAcc"],
        "anytime": {str(i): s["mIoU"] for i, s in result.scores.items()},
        "paper": exp.paper,
        "steps": train_result.final_step if train_result else None,
        "train_seconds": train_result.wall_time_s if train_result else None,
        "seconds": time.time() - t0,
        "output_dir": trainer.write_dir,
    }
    save_json(os.path.join(trainer.write_dir, "summary.json"), summary)
    return summary


# --------------------------------------------------------------------------------------------
# The command line of a recipe


def add_run_arguments(parser):
    """The flags every recipe (and the table runner) takes."""
    p = parser
    p.add_argument("--data-dir", help="dataset folder (default $RIGNET_DATA_DIR or ~/.rignet/data)")
    p.add_argument("--output-dir", help="run folder (default runs/<experiment name>)")
    p.add_argument("--batch-size", type=int, help="global batch size")
    p.add_argument("--steps", type=int, help="total training steps")
    p.add_argument("--steps-per-epoch", type=int, help="steps between validations/checkpoints")
    p.add_argument("--save-freq", type=int, help="steps between resume backups")
    p.add_argument("--crop-size", type=int, help="training crop side")
    p.add_argument("--lr", type=float, help="base learning rate")
    p.add_argument("--backbone", help="override the backbone (e.g. resnet18 for a smoke test)")
    p.add_argument("--backbone-weights", help="'imagenet', a .h5 path, or 'none'")
    p.add_argument("--mixed-precision", action="store_true", help="mixed_float16/bfloat16")
    p.add_argument("--strategy", help="auto, default, one_device, mirrored, multi_worker")
    p.add_argument("--seed", type=int)
    p.add_argument("--resume", action="store_true", help="continue from the run's backup")
    p.add_argument("--eval-only", action="store_true", help="evaluate the run's checkpoint")
    p.add_argument("--eval-batch-size", type=int)
    p.add_argument("--eval-size", type=int, help="evaluation pad/resize side")
    p.add_argument("--flip", action="store_true", help="flip testing")
    p.add_argument("--scales", help="multi-scale testing, e.g. 0.75,1,1.25")
    p.add_argument("--num-train-samples", type=int, help="use only the first N training samples")
    p.add_argument("--num-eval-samples", type=int, help="evaluate only the first N samples")
    p.add_argument("--num-visualize", type=int, help="images to draw (0 for none)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def apply_overrides(exp, args):
    """The experiment with the command-line overrides of `add_run_arguments` applied."""
    model, data, train, ev = {}, {}, {}, {}
    if args.backbone:
        model["backbone"] = args.backbone
    if args.backbone_weights:
        model["backbone_weights"] = (
            None if args.backbone_weights == "none" else args.backbone_weights
        )
    for key, target, name in (
        ("data_dir", data, "data_dir"), ("crop_size", data, "crop_size"),
        ("eval_batch_size", data, "eval_batch_size"),
        ("num_train_samples", data, "num_train_samples"),
        ("num_eval_samples", data, "num_eval_samples"),
        ("batch_size", train, "batch_size"), ("steps", train, "steps"),
        ("steps_per_epoch", train, "steps_per_epoch"), ("save_freq", train, "save_freq"),
        ("lr", train, "learning_rate"), ("strategy", train, "strategy"), ("seed", train, "seed"),
        ("num_visualize", ev, "num_visualize"),
    ):  # fmt: skip
        value = getattr(args, key, None)
        if value is not None:
            target[name] = value
    if args.eval_size:
        data["eval_size"] = (args.eval_size, args.eval_size)
    if args.mixed_precision:
        train["mixed_precision"] = True
    if args.quiet:
        train["verbose"] = 2
    if args.flip:
        ev["flip"] = True
    if args.scales:
        ev["scales"] = tuple(float(s) for s in args.scales.split(","))
    steps = train.get("steps", exp.train.steps)
    if "steps_per_epoch" not in train and exp.train.steps_per_epoch > steps:
        train["steps_per_epoch"] = steps
    if train.get("steps") is not None and exp.train.warmup_steps >= steps:
        train["warmup_steps"] = steps // 10
    return exp.replace(model=model, data=data, train=train, eval=ev)


def recipe_main(experiments, argv=None, default=None, description=None):
    """The `main` of a recipe file: picks a variant, applies the flags, runs it.

    Args:
        experiments: {variant name: `Experiment`} (a dict of one for a single-model recipe).
        argv: the arguments (default `sys.argv[1:]`).
        default: the variant run without `--variant`.

    Returns:
        the process exit status (0 ok; 2 when the data is missing).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--variant", default=default or next(iter(experiments)), choices=sorted(experiments),
        help="which model of the table",
    )  # fmt: skip
    parser.add_argument("--list", action="store_true", help="list the variants and exit")
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    if args.list:
        for name, exp in experiments.items():
            print(f"{name:28s} {exp.model.label()}")
        return 0
    exp = apply_overrides(experiments[args.variant], args)
    output_dir = args.output_dir or os.path.join("runs", exp.name)
    return run_guarded(exp, output_dir, resume=args.resume, eval_only=args.eval_only,
                       progress=not args.quiet)  # fmt: skip


def run_guarded(exp, output_dir, **kwargs):
    """`run_experiment`, turning a missing dataset into a one-line message and exit status 2."""
    try:
        summary = run_experiment(exp, output_dir, **kwargs)
    except _data_layer().DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({k: summary[k] for k in ("name", "label", "ui", "mIoU", "pAcc", "mAcc")}))
    return 0


# --------------------------------------------------------------------------------------------
# Paper tables: a layout (data, in recipes/tableN.py) and the Markdown it becomes


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
        experiments: {variant: `Experiment`} (for the paper's numbers).
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


def run_table(experiments, table, argv=None):
    """The table runner's `main`: trains and evaluates the variants of a table (or those named
    with `--variants`), skipping those whose `summary.json` exists unless `--rerun`, then writes
    `<output-dir>/<table name>.md`."""
    parser = argparse.ArgumentParser(description=f"Runs {table['title']}")
    parser.add_argument("--variants", help="comma-separated subset (default: all)")
    parser.add_argument("--rerun", action="store_true", help="run variants already done")
    parser.add_argument("--markdown-only", action="store_true", help="only write the table")
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    names = args.variants.split(",") if args.variants else list(experiments)
    unknown = [n for n in names if n not in experiments]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {sorted(experiments)}")
    root = args.output_dir or os.path.join("runs", table["name"])
    summaries = {}
    for name in names:
        out = os.path.join(root, name)
        done = os.path.join(out, "summary.json")
        if os.path.isfile(done) and not args.rerun:
            with open(done, encoding="utf-8") as f:
                summaries[name] = json.load(f)
            continue
        if args.markdown_only:
            continue
        exp = apply_overrides(experiments[name], args)
        try:
            summaries[name] = run_experiment(
                exp, out, resume=args.resume, eval_only=args.eval_only, progress=not args.quiet
            )
        except _data_layer().DatasetError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    markdown = format_table(table, experiments, summaries)
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, f"{table['name']}.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(markdown)
    print(markdown)
    print(f"wrote {path}")
    return 0
