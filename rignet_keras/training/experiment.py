"""The runner: executes a `rignet_keras.config.RunConfig` (train, evaluate, export) and
evaluates a run or a model file on a configuration's data (a recipe's command line is
`recipe_command.py`, the table runner `tables.py`).

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
import time

from rignet_keras.config import CONFIG_NAME, ConfigError, RunConfig, check_resume
from rignet_keras.training.checkpoints import save_json
from rignet_keras.training.run_inputs import (
    build_network,
    build_size,
    class_names,
    eval_dataset,
    model_preprocessing,
    network_kwargs,
    quality_source,
    train_stream,
)
from rignet_keras.training.trainer import Trainer


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
    options = ex.export_options()
    if options["class_names"] is None:  # the MediaPipe files' labels: the dataset's names
        options["class_names"] = class_names(config.data)
    manifest = export_model(
        network,
        folder,
        input_size=(size, size),
        overwrite=True,  # the run's own export folder (a previous export of it, or nothing)
        **options,
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
