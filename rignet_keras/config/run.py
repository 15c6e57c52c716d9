"""`RunConfig`: one run, a model, its data, how to train, evaluate and export it (see
`rignet_keras.config`), with its JSON file and its overrides."""

import dataclasses
import hashlib
import json
import os
import sys

from rignet_keras.config.errors import ConfigError, check_numbers
from rignet_keras.config.fields import _from_json
from rignet_keras.config.model import check_model_kwargs, model_label, resolved_model_kwargs
from rignet_keras.config.overrides import check_value, parse_assignment, split_key
from rignet_keras.config.sections import (
    DataConfig,
    EvalConfig,
    ExportConfig,
    check_export_quality,
    section_class,
)
from rignet_keras.config.train import TrainConfig, check_training_ui
from rignet_runtime import atomic


@dataclasses.dataclass
class RunConfig:
    """One run: a model, its data, how to train, evaluate and export it (see the module doc)."""

    name: str = "run"
    model: dict = dataclasses.field(default_factory=dict)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    description: str = ""
    paper: dict | None = None

    def __post_init__(self):
        self.model = check_model_kwargs(self.model)
        # what TrainConfig's own check leaves to the tree
        check_numbers("train", self.train, {"warmup_steps": 0, "weight_decay": 0})
        if not self.train.learning_rate > 0:
            raise ConfigError(
                f"train.learning_rate must be positive; received {self.train.learning_rate!r}"
            )
        check_training_ui(self.model, self.train)
        check_export_quality(self.data, self.export)

    def label(self):
        return model_label(self.model)

    def to_dict(self):
        """The tree as JSON values (tuples become lists)."""
        out = {"name": self.name, "model": dict(self.model)}
        for section in ("data", "train", "eval", "export"):
            out[section] = dataclasses.asdict(getattr(self, section))
        out.update(description=self.description, paper=self.paper)
        return json.loads(json.dumps(out))

    @classmethod
    def from_dict(cls, tree, source="the configuration"):
        """The `RunConfig` of a `to_dict()` tree; a section or key it does not know is an error."""
        if not isinstance(tree, dict):
            raise ConfigError(f"{source} must be a JSON object; received {type(tree).__name__}")
        top = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(tree) - top - {"label"})
        if unknown:
            raise ConfigError(f"{source}: unknown key {unknown[0]!r}; choose from {sorted(top)}")
        kwargs = {k: v for k, v in tree.items() if k in top}
        for section in ("data", "train", "eval", "export"):
            if section in kwargs:
                kwargs[section] = _build_section(section, kwargs[section], source)
        return cls(**kwargs)

    def save(self, path):
        """Writes the tree as JSON (atomically); returns `path` (a str or a path-like)."""
        payload = dict(self.to_dict(), label=self.label())
        atomic.write_json(path, payload)
        return path

    @classmethod
    def load(cls, path):
        if not os.path.isfile(path):
            raise ConfigError(f"configuration file not found: {path}")
        with open(path, encoding="utf-8") as f:
            try:
                tree = json.load(f)
            except json.JSONDecodeError as error:
                raise ConfigError(f"{path} is not valid JSON: {error}") from None
        return cls.from_dict(tree, source=path)

    def replace(self, **sections):
        """A copy with fields of sections replaced: `config.replace(train={"steps": 10})`;
        `model` is updated key by key; `name`, `description`, `paper` are replaced."""
        changes = {}
        for section, fields in sections.items():
            current = getattr(self, section)
            if section == "model":
                changes[section] = {**current, **fields}
            elif dataclasses.is_dataclass(current):
                changes[section] = dataclasses.replace(current, **fields)
            else:
                changes[section] = fields
        return dataclasses.replace(self, **changes)

    def override(self, assignments):
        """A copy with `section.key=value` assignments applied (see the module docstring).

        Args:
            assignments: strings "section.key=value", or (key, value) pairs whose value is
                already a Python value (the command line's aliases).
        """
        pairs = [parse_assignment(a) if isinstance(a, str) else tuple(a) for a in assignments]
        changes = {}
        for key, value in pairs:
            section, field = split_key(key)
            if field is None:  # a top-level string: name, description
                changes[section] = str(value)
            else:
                changes.setdefault(section, {})[field] = check_value(section, field, value)
        self._follow_steps(changes.get("train", {}))
        self._follow_source(changes.get("data", {}))
        try:
            return self.replace(**changes)
        except ConfigError:
            raise
        except (TypeError, ValueError) as error:  # a section's own check (TrainConfig's)
            if str(error).split(" ", 1)[0] in {f.name for f in dataclasses.fields(self.train)}:
                raise ConfigError(f"train.{error}") from None  # it names its field
            shown = " ".join(f"{k}={v!r}" for k, v in pairs)
            raise ConfigError(f"overrides {shown}: {error}") from None

    def _follow_steps(self, train):
        """Shortening `train.steps` below the warm-up or the epoch shortens those too (said on
        the console), unless they are overridden as well."""
        steps = train.get("steps")
        if steps is None:
            return
        if "steps_per_epoch" not in train and self.train.steps_per_epoch > steps:
            train["steps_per_epoch"] = steps
            print(f"note: train.steps_per_epoch set to train.steps={steps}", file=sys.stderr)
        if "warmup_steps" not in train and self.train.warmup_steps >= steps:
            train["warmup_steps"] = steps // 10
            print(
                f"note: train.warmup_steps set to {steps // 10} (train.steps={steps})",
                file=sys.stderr,
            )

    def _follow_source(self, data):
        """Overriding `data.source` alone moves the evaluation with it (said on the console): a
        recipe's other evaluation source (VOC's `voc`) becomes the new source, and a split
        other than the default becomes the default, unless they are overridden as well."""
        source = data.get("source")
        if source is None or source == self.data.source:
            return
        if "eval_source" not in data and self.data.eval_source not in (None, source):
            data["eval_source"] = None
            print(
                f"note: data.eval_source follows data.source={source!r} (the recipe's was "
                f"{self.data.eval_source!r}; set data.eval_source to evaluate there)",
                file=sys.stderr,
            )
        default_split = DataConfig.eval_split
        if "eval_split" not in data and self.data.eval_split != default_split:
            data["eval_split"] = default_split
            print(
                f"note: data.eval_split set to {default_split!r} with data.source={source!r} "
                f"(the recipe's was {self.data.eval_split!r})",
                file=sys.stderr,
            )

    def fingerprint(self):
        """A short digest of what decides the run's numbers (model, data, train, eval): two
        configurations that train the same thing share it, whatever their names."""
        tree = self.to_dict()
        relevant = {k: tree[k] for k in ("data", "train", "eval")}
        # RIGNet's defaults filled in: a default written out is the same model as one left out
        relevant["model"] = json.loads(json.dumps(resolved_model_kwargs(self.model)))
        relevant["train"].pop("verbose", None)
        relevant["eval"].pop("num_visualize", None)
        blob = json.dumps(relevant, sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:10]


def _build_section(section, values, source):
    cls = section_class(section)
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: {section} must be an object; received {values!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in names:
            raise ConfigError(
                f"{source}: {section}.{key} is not a {cls.__name__} field; "
                f"choose from {', '.join(sorted(names))}"
            )
    values = {k: _from_json(cls, k, v) for k, v in values.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: {section}: {error}") from None
