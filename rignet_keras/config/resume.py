"""Resume: what a resumed run must share with the run it continues."""

import json

from rignet_keras.config.errors import ConfigError
from rignet_keras.config.model import resolved_model_kwargs
from rignet_keras.config.sections import CONFIG_NAME

# What a resumed run must share with the run it continues (besides the whole model and data).
RESUME_TRAIN_FIELDS = ("seed", "batch_size")


def check_resume(recorded, current, path=CONFIG_NAME, sections=None):
    """Refuses to resume a run whose model, data, seed or batch size changed.

    Args:
        recorded: the `RunConfig` the run was started with (its `run_config.json`).
        current: the `RunConfig` asked to resume it.
        path: the recorded file (for the message).
        sections: compare only these of ("model", "data", "train"); None for all three.

    Raises:
        ConfigError: naming the first field that differs and both values.
    """
    sections = sections or ("model", "data", "train")
    old, new = recorded.to_dict(), current.to_dict()
    fields = []
    if "model" in sections:
        before = json.loads(json.dumps(resolved_model_kwargs(recorded.model)))
        after = json.loads(json.dumps(resolved_model_kwargs(current.model)))
        fields += [(f"model.{k}", before.get(k), after.get(k)) for k in sorted(after)]
    if "data" in sections:
        fields += [(f"data.{k}", old["data"].get(k), v) for k, v in sorted(new["data"].items())]
    if "train" in sections:
        fields += [
            (f"train.{k}", old["train"].get(k), new["train"].get(k)) for k in RESUME_TRAIN_FIELDS
        ]
    for key, before, after in fields:
        if before != after:
            raise ConfigError(
                f"--resume refused: {key} was {before!r} in {path}, now {after!r}; resume with "
                "the same value or start a new run in another --output-dir"
            )
