"""Training and evaluation of RIGNets: losses, metrics, schedules, the distributed trainer,
evaluation for every ui, pictures, and the runner that executes a run
configuration (`rignet_keras.config.RunConfig`).

    from rignet_keras.training import TrainConfig, Trainer, evaluate

    trainer = Trainer(TrainConfig(steps=1000, batch_size=8), "runs/demo")
    trainer.build(lambda: RIGNet(21, backbone="resnet18", num_iterations=3), (None, 321, 321, 3))
    result = trainer.fit(lambda skip: build_dataset(..., repeat=True, skip_batches=skip), val)
    scores = evaluate(trainer.network, val)        # mIoU/pAcc/mAcc for ui = 1..3

See docs/TRAINING.md.
"""

from rignet_keras.config import (
    DataConfig,
    EvalConfig,
    ExportConfig,
    RunConfig,
    TrainConfig,
    paper_experiment,
)
from rignet_keras.training.backup import ResumableBackup
from rignet_keras.training.checkpoints import (
    BestAndLastCheckpoint,
    atomic_save,
    atomic_write_json,
    remove_stale_files,
)
from rignet_keras.training.evaluate import (
    EvaluationResult,
    evaluate,
    logits_per_iteration,
    predict_probabilities,
)
from rignet_keras.training.experiment import RunResult, evaluate_run, run_experiment
from rignet_keras.training.gate_figures import save_gate_maps
from rignet_keras.training.gate_maps import gate_maps
from rignet_keras.training.history import EpochHistory
from rignet_keras.training.losses import (
    SegmentationCrossEntropy,
    cross_entropy_sum,
    segmentation_loss,
)
from rignet_keras.training.metrics import (
    ConfusionMatrixMetric,
    confusion_matrix,
    segmentation_scores,
)
from rignet_keras.training.nan_guard import NaNGuard, NonFiniteTrainingError
from rignet_keras.training.plots import plot_anytime
from rignet_keras.training.recipe_command import recipe_main
from rignet_keras.training.schedules import PolyWarmup
from rignet_keras.training.strategy import build_strategy, is_chief, mixed_precision_policy
from rignet_keras.training.tables import format_table, run_table, run_tables
from rignet_keras.training.task import (
    TrainingModel,
    enable_recompute,
    set_batch_norm_momentum,
    uses_sync_batch_norm,
)
from rignet_keras.training.trainer import NaNLossError, Trainer, TrainResult, train
from rignet_keras.training.visualize import overlay, save_palette_png, save_predictions

__all__ = [
    "BestAndLastCheckpoint",
    "ConfusionMatrixMetric",
    "DataConfig",
    "EvalConfig",
    "EvaluationResult",
    "ExportConfig",
    "EpochHistory",
    "NaNGuard",
    "NonFiniteTrainingError",
    "remove_stale_files",
    "NaNLossError",
    "PolyWarmup",
    "ResumableBackup",
    "RunConfig",
    "RunResult",
    "SegmentationCrossEntropy",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingModel",
    "atomic_save",
    "atomic_write_json",
    "build_strategy",
    "confusion_matrix",
    "cross_entropy_sum",
    "enable_recompute",
    "evaluate",
    "evaluate_run",
    "format_table",
    "gate_maps",
    "is_chief",
    "logits_per_iteration",
    "mixed_precision_policy",
    "overlay",
    "paper_experiment",
    "plot_anytime",
    "predict_probabilities",
    "recipe_main",
    "run_experiment",
    "run_table",
    "run_tables",
    "save_gate_maps",
    "save_palette_png",
    "save_predictions",
    "segmentation_loss",
    "segmentation_scores",
    "set_batch_norm_momentum",
    "train",
    "uses_sync_batch_norm",
]
