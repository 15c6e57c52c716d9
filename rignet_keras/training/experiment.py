"""The runner: executes a `rignet_keras.config.RunConfig` (train, evaluate, export), and the
command line of the recipes built on it (the table runner is `tables.py`).

A run's folder holds the `Trainer`'s files (config.json, history, checkpoints, backup) and::

    run_config.json          the resolved RunConfig (what `--resume` and `rignet evaluate --run`
                             read back)
    eval/results.json        scores for every ui (one confusion matrix per ui)
    eval/anytime_miou.png    mIoU against ui
    eval/predictions/        palette masks, overlays and gate maps for a sample of images
    export/                  the exported graphs, when the export section asks for them
    summary.json             the headline numbers (what the table runner reads)
"""

import dataclasses
import json
import os
import sys
import time

from rignet_keras.cli import OneLineParser, report_errors, shown_path
from rignet_keras.config import (
    CONFIG_NAME,
    ConfigError,
    DataConfig,
    RunConfig,
    check_recipe_overrides,
    check_resume,
    resolved_model_kwargs,
)
from rignet_keras.config_flags import add_override_arguments, overrides_from_args
from rignet_keras.training.determinism import restart_for_determinism
from rignet_keras.training.trainer import TrainConfig, Trainer, save_json


def data_layer():
    """The data layer's public functions (imported late: it is optional for the library)."""
    from rignet_keras import data

    return data


# --------------------------------------------------------------------------------------------
# The data section, as datasets


def synthetic_config(data):
    """The `SyntheticConfig` of `data.synthetic`, or None."""
    return data_layer().SyntheticConfig(**data.synthetic) if data.synthetic else None


def _common(data, preprocessing, seed):
    return dict(
        data_dir=data.data_dir,
        preprocessing=preprocessing,
        seed=seed,
        label_convention=data.label_convention,
        synthetic_config=synthetic_config(data),
        on_bad_sample=data.on_bad_sample,
    )


def train_stream(data, batch_size, preprocessing, seed):
    """A callable `skip_batches -> Dataset`: the endless, deterministic training stream."""
    build = data_layer().build_dataset
    crop = None if data.crop_size is None else (data.crop_size, data.crop_size)

    def stream(skip_batches=0):
        return build(
            data.source,
            data.train_split,
            batch_size=batch_size,
            training=True,
            crop_size=crop,
            scale_range=tuple(data.scale_range),
            flip=data.flip,
            repeat=True,
            skip_batches=skip_batches,
            num_samples=data.num_train_samples,
            **_common(data, preprocessing, seed),
        )

    return stream


def eval_dataset(data, preprocessing, return_ids=False, num_samples=None, batch_size=None):
    """(finite evaluation dataset, its `DatasetInfo`) of a data section."""
    return data_layer().build_dataset(
        data.eval_source or data.source,
        data.eval_split,
        batch_size=batch_size or data.eval_batch_size,
        training=False,
        eval_mode=data.eval_mode,
        eval_size=None if data.eval_size is None else tuple(data.eval_size),
        num_samples=num_samples or data.num_eval_samples,
        return_ids=return_ids,
        with_info=True,
        **_common(data, preprocessing, None),
    )


def build_size(data):
    """The square side the network is built at: the crop, or the synthetic image size."""
    if data.crop_size is not None:
        return data.crop_size
    if data.synthetic and data.synthetic.get("image_size"):
        return int(tuple(data.synthetic["image_size"])[0])
    return 321


# --------------------------------------------------------------------------------------------
# The model section, as a network


def model_preprocessing(model):
    """The normalisation mode the data must use for a model section."""
    from rignet_keras.backbones import get_backbone_spec

    m = resolved_model_kwargs(model)
    return m["preprocessing"] or get_backbone_spec(m["backbone"]).preprocessing


def network_kwargs(model):
    """The model section as RIGNet keyword arguments, `backbone_weights="imagenet"` resolved to
    None (with a console line) for a backbone without published ImageNet weights."""
    from rignet_keras.backbones import get_backbone_spec

    kwargs = dict(model)
    weights = kwargs.get("backbone_weights")
    backbone = resolved_model_kwargs(model)["backbone"]
    if weights == "imagenet" and get_backbone_spec(backbone).imagenet_model is None:
        print(
            f"note: {backbone} has no published ImageNet weights; training from scratch "
            "(model.backbone_weights=null)",
            file=sys.stderr,
        )
        kwargs["backbone_weights"] = None
    return kwargs


def build_network(model, num_classes):
    """`RIGNet(num_classes, **model)` of a (resolved, see `network_kwargs`) model section."""
    from rignet_keras.models import RIGNet

    return RIGNet(num_classes, **model)


# --------------------------------------------------------------------------------------------
# Recipes' shorthand


def paper_experiment(
    name,
    *,
    dataset="voc",
    backbone="resnet50",
    mode="parallel",
    blocks=(4, 6),
    ui=2,
    paper=None,
    description="",
    **model,
):
    """A run with the project's recipe for the paper's datasets (the paper does not give its
    training hyper-parameters; these are the field's: SGD, momentum 0.9, poly 0.9, crop 321,
    batch 16, ImageNet backbone at a tenth of the rate of gates and head).

    Args:
        dataset: "voc" (train on VOC-aug, evaluate on VOC val) or "cocostuff" (10k: train/test).
        backbone, mode, blocks, ui: `RIGNet`'s backbone, unroll_mode, feedback_blocks and
            num_iterations; `blocks=None` (and ui 1) for the FCN baseline.
        **model: any other `RIGNet` argument (gate_combine, gate_pooling, output_stride,
            head_filters, sync_batch_norm, recurrent_batch_norm, ...).

    Returns:
        a `RunConfig`.
    """
    if blocks is None and mode in ("parallel", "sequential", "multi_range"):
        ui = 1
    deeplab = backbone == "deeplabv2"
    model_kwargs = dict(
        backbone=backbone,
        unroll_mode=mode,
        feedback_blocks=blocks,
        num_iterations=ui,
        backbone_weights="imagenet",
        **model,
    )
    if dataset == "voc":
        data = DataConfig(source="voc_aug", eval_source="voc", eval_split="val")
        steps = 30000
    elif dataset == "cocostuff":
        data = DataConfig(source="cocostuff10k", eval_split="test", label_convention="171")
        steps = 20000
    else:
        raise ValueError(f"dataset must be 'voc' or 'cocostuff'; received {dataset!r}")
    train = TrainConfig(
        steps=steps,
        steps_per_epoch=1000,
        batch_size=16,
        learning_rate=0.0025 if deeplab else 0.01,
        weight_decay=5e-4 if deeplab else 1e-4,
        warmup_steps=500,
        backbone_lr_multiplier=0.1,
    )
    config = RunConfig(name=name, model=model_kwargs, data=data, train=train, paper=paper)
    config.description = description or config.label()
    return config


def default_run(name="run"):
    """The base of `rignet train` without a recipe: `RIGNet`'s defaults on VOC-aug with an
    ImageNet backbone at a tenth of the rate."""
    return RunConfig(
        name=name,
        model={"backbone_weights": "imagenet"},
        data=DataConfig(),
        train=TrainConfig(backbone_lr_multiplier=0.1),
    )


# --------------------------------------------------------------------------------------------
# The runner


@dataclasses.dataclass
class RunResult:
    """What `run_experiment` did: the summary (also in `summary.json`), the evaluated network,
    the `EvaluationResult`, the dataset's `DatasetInfo` and the training's `TrainResult`."""

    summary: dict
    network: object
    evaluation: object
    info: object
    train: object = None


def run_experiment(
    config, output_dir, *, resume=False, eval_only=False, progress=True, strategy=None
):
    """Trains (unless `eval_only`), evaluates and exports one `RunConfig`; writes its folder.

    The data is opened first: without it, this stops at once with the data layer's
    `DatasetError` (naming the path and the download command), before any model is built.
    With `resume` (or `eval_only`) and a `run_config.json` in the folder, a changed model, data,
    seed or batch size is refused (`ConfigError` naming the field).

    Args:
        config: the `RunConfig`.
        output_dir: the run folder.

    Returns:
        `RunResult`.
    """
    t0 = time.time()
    config = config.replace(model=network_kwargs(config.model))  # what is built, as recorded
    preprocessing = model_preprocessing(config.model)
    stream = train_stream(config.data, config.train.batch_size, preprocessing, config.train.seed)
    if not eval_only:
        stream(0)  # opens the data: a missing dataset fails here, before anything heavy
    val_data, info = eval_dataset(config.data, preprocessing)
    num_classes = info.num_classes
    print(
        f"[{config.name}] {config.label()} on {config.data.source} ({num_classes} classes)",
        flush=True,
    )

    trainer = Trainer(config.train, output_dir, strategy=strategy)
    config_path = os.path.join(trainer.write_dir, CONFIG_NAME)
    if (resume or eval_only) and os.path.isfile(config_path):
        recorded = RunConfig.load(config_path)
        check_resume(recorded, config, config_path, sections=("model",) if eval_only else None)
    if not eval_only:
        config.save(config_path)
    size = build_size(config.data)

    def make_network():
        try:
            return build_network(config.model, num_classes)
        except (TypeError, ValueError) as error:  # RIGNet's own checks of its arguments
            raise ConfigError(f"RIGNet refused the model section: {error}") from None

    trainer.build(make_network, (None, size, size, 3))
    network = trainer.network
    fit = None
    if not eval_only:
        fit = trainer.fit(
            stream,
            val_data=val_data if config.eval.validate else None,
            resume=resume,
            run_info={"label": config.label(), "dataset": info.to_dict()},
        )
        print(fit.summary(), flush=True)
    weights = os.path.join(trainer.checkpoint_dir, f"{config.eval.checkpoint}.weights.h5")
    if not os.path.isfile(weights):
        weights = os.path.join(trainer.checkpoint_dir, "last.weights.h5")
    if eval_only or config.eval.checkpoint != "last":
        if os.path.isfile(weights):
            network.load_weights(weights)
        elif eval_only:
            raise FileNotFoundError(f"no checkpoint to evaluate in {trainer.checkpoint_dir}")

    result = _evaluate(network, config, val_data, info, trainer.strategy, progress, weights)
    eval_dir = os.path.join(trainer.write_dir, "eval")
    result.save(eval_dir, title=config.label())
    print(result.table(), flush=True)
    if config.eval.num_visualize:
        _visualize(network, config, preprocessing, os.path.join(eval_dir, "predictions"))
    exports = export_run(network, config, trainer.write_dir) if config.export.formats else None
    k = network.num_iterations
    headline = result.scores[k] if k in result.scores else result.scores[max(result.scores)]
    summary = {
        "name": config.name,
        "label": config.label(),
        "fingerprint": config.fingerprint(),
        "dataset": info.name,
        "num_classes": num_classes,
        "ui": k,
        "mIoU": headline["mIoU"],
        "pAcc": headline["pAcc"],
        "mAcc": headline["mAcc"],
        "anytime": {str(i): s["mIoU"] for i, s in result.scores.items()},
        "paper": config.paper,
        "steps": fit.final_step if fit else None,
        "train_seconds": fit.wall_time_s if fit else None,
        "loss": [x for x in (fit.history.get("loss", []) if fit else []) if isinstance(x, float)],
        "exports": exports,
        "seconds": time.time() - t0,
        "output_dir": trainer.write_dir,
    }
    summary_path = os.path.join(trainer.write_dir, "summary.json")
    if eval_only and os.path.isfile(summary_path):  # keep what the training did
        with open(summary_path, encoding="utf-8") as f:
            trained = json.load(f)
        summary.update({k: trained.get(k) for k in ("steps", "train_seconds", "loss")})
    save_json(summary_path, summary)
    return RunResult(summary=summary, network=network, evaluation=result, info=info, train=fit)


def _evaluate(network, config, dataset, info, strategy, progress, weights, label=None):
    """`evaluate` with `config.eval`; `label` names a model that no run configured (a model
    file), whose record then holds the data and eval sections only."""
    from rignet_keras.training.evaluate import evaluate

    ev = config.eval
    recorded = config.to_dict()
    if label is not None:
        recorded = {section: recorded[section] for section in ("data", "eval")}
    return evaluate(
        network,
        dataset,
        info.num_classes,
        iterations=None if ev.iterations is None else list(ev.iterations),
        flip=ev.flip,
        scales=ev.scales,
        class_names=info.class_names,
        max_batches=ev.max_batches,
        progress=progress,
        strategy=strategy,
        info={
            "checkpoint": weights,
            "dataset": info.to_dict(),
            "model": label or config.label(),
            "run": recorded,
        },
    )


def _visualize(network, config, preprocessing, folder):
    from rignet_keras.training.visualize import save_predictions

    vis_data, _ = eval_dataset(config.data, preprocessing, return_ids=True)
    save_predictions(
        network, vis_data, folder, num_images=config.eval.num_visualize, preprocessing=preprocessing
    )


def export_run(network, config, run_dir):
    """Exports the network as the export section says; returns {"dir", "files"}."""
    from rignet_keras.export import export_model

    ex = config.export
    folder = ex.output_dir or os.path.join(run_dir, "export")
    size = ex.input_size or (config.data.eval_size or [build_size(config.data)])[0]
    quality = {}
    if ex.quality_images:
        quality = dict(
            validation=quality_source(config.data), num_validation_images=ex.quality_images
        )
    manifest = export_model(
        network,
        folder,
        input_size=(size, size),
        formats=tuple(ex.formats),
        precisions=tuple(ex.precisions),
        tflite_layouts=tuple(ex.tflite_layouts),
        stepwise=ex.stepwise,
        overwrite=True,
        **quality,
    )
    scores = {
        artifact["file"]: {
            s["name"]: s["quality"]["miou"] for s in artifact["signatures"] if s.get("quality")
        }
        for artifact in manifest["artifacts"]
    }
    return {
        "dir": folder,
        "files": sorted(os.listdir(folder)),
        "quality": {f: q for f, q in scores.items() if q},
    }


def quality_source(data):
    """The `export_model(validation=...)` source of a data section's evaluation data: its
    `SyntheticConfig` for the in-memory "synthetic" set (whose val images depend on their index
    only, so the first N are the run's), else the VOC-layout folder ("voc", "voc_aug", or the
    synthetic set on disk); `config.check_export_quality` has refused the other sources."""
    source = data.eval_source or data.source
    if source == "synthetic" and data.data_dir is None:  # generated in memory, as the run's
        return data_layer().SyntheticConfig(**(data.synthetic or {}))
    return data.data_dir or data_layer().default_data_dir()  # a VOC-layout folder


def synthetic_quality_source(model_path):
    """`quality_source` of the synthetic task a run's checkpoint was trained on: what
    `export/export_model.py --validation synthetic` scores. The run is the checkpoint's folder
    (`RUN/checkpoints/NAME.keras` beside `RUN/run_config.json`).

    Raises:
        ConfigError: naming the file, when it is not a run's checkpoint or the run's evaluation
            data is not the synthetic set.
    """
    run_dir = os.path.dirname(os.path.dirname(os.path.abspath(model_path)))
    config_path = os.path.join(run_dir, CONFIG_NAME)
    if os.path.basename(os.path.dirname(os.path.abspath(model_path))) != "checkpoints" or (
        not os.path.isfile(config_path)
    ):
        raise ConfigError(
            f"--validation synthetic scores a model on the synthetic task its run recorded; "
            f"{model_path} is not a run's checkpoint (RUN/checkpoints/NAME.keras beside "
            f"RUN/{CONFIG_NAME}): pass a VOC-layout folder of its task as --validation"
        )
    data = RunConfig.load(config_path).data
    source = data.eval_source or data.source
    if source != "synthetic":
        raise ConfigError(
            f"--validation synthetic: the run {run_dir} was evaluated on {source!r}, not the "
            f"synthetic set; pass that data's VOC-layout folder as --validation"
        )
    return quality_source(data)


def evaluate_run(run_dir, *, output_dir=None, checkpoint=None, progress=True, overrides=()):
    """Evaluates a run's checkpoint on the data and with the evaluation recorded in its
    `run_config.json`: the run's own numbers, reproduced; `overrides` change what is evaluated.

    Args:
        run_dir: the run folder.
        output_dir: where results.json goes; None for `<run>/eval`.
        checkpoint: "best" or "last"; None for the recorded `eval.checkpoint`.
        overrides: (key, value) pairs or "section.key=value" strings applied to the recorded
            configuration (`RunConfig.override`), e.g. `[("eval.flip", True)]`; the results
            record the configuration evaluated.

    Returns:
        `EvaluationResult`.
    """
    from rignet_keras.models.loading import load_rignet

    config = RunConfig.load(os.path.join(run_dir, CONFIG_NAME)).override(overrides)
    name = checkpoint or config.eval.checkpoint
    path = os.path.join(run_dir, "checkpoints", f"{name}.keras")
    if not os.path.isfile(path):
        path = os.path.join(run_dir, "checkpoints", "last.keras")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"no checkpoint to evaluate in {os.path.join(run_dir, 'checkpoints')}"
        )
    model = load_rignet(path)
    output_dir = output_dir or os.path.join(run_dir, "eval")
    return evaluate_model(model, config, path, output_dir=output_dir, progress=progress, run=True)


def evaluate_model(model, config, weights, *, output_dir, progress=True, run=False):
    """Evaluates `model` on the data and with the evaluation of `config` (a `RunConfig`):
    results.json and the anytime curve in `output_dir`, and `eval.num_visualize` pictures in
    its `predictions/`. `weights` is the model's file, named in messages and in the results;
    `run`: whether `config` is the run configuration the model was trained by (else only its
    data and eval sections are recorded, and the file names the model).

    Returns:
        `EvaluationResult`.
    """
    dataset, info = eval_dataset(config.data, model.preprocessing)
    check_num_classes(model, info, weights)
    label = None if run else weights
    result = _evaluate(model, config, dataset, info, None, progress, weights, label)
    result.save(output_dir, title=config.label() if run else os.path.basename(weights))
    if config.eval.num_visualize:
        _visualize(model, config, model.preprocessing, os.path.join(output_dir, "predictions"))
    return result


def check_num_classes(model, info, model_path):
    """Refuses a model whose class count differs from the data's."""
    if model.num_classes != info.num_classes:
        raise ConfigError(
            f"{model_path} predicts {model.num_classes} classes; the data ({info.name}) has "
            f"{info.num_classes}"
        )


# --------------------------------------------------------------------------------------------
# The command line of a recipe


def add_run_arguments(parser):
    """The flags every recipe, the table runner and `rignet train` take: the run's own (output
    folder, resume, ...) and the configuration overrides (`--set` and its aliases)."""
    p = parser
    p.add_argument("--output-dir", help="run folder (default runs/<run name>)")
    p.add_argument("--resume", action="store_true", help="continue from the run's backup")
    p.add_argument("--eval-only", action="store_true", help="evaluate the run's checkpoint")
    p.add_argument("--print-config", action="store_true", help="print the resolved configuration")
    p.add_argument("--quiet", action="store_true", help="no progress bars (train.verbose=2)")
    add_override_arguments(p)
    return p


def resolve(config, args, recipe=None, variants=None):
    """The configuration with the parsed flags' overrides applied; refuses, naming it, an
    override the recipe cannot honour."""
    pairs = overrides_from_args(args)
    if args.quiet:
        pairs.append(("train.verbose", 2))
    if recipe and variants:
        check_recipe_overrides(recipe, variants, pairs)
    return config.override(pairs)


def run_guarded(config, output_dir, **kwargs):
    """`run_experiment` under `rignet_keras.cli.report_errors`: a user's error (a missing
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
