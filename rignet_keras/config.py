"""The run configuration: one tree that recipes, `rignet train`, the quickstart and
`bench/claims.py` build, and `rignet_keras.training.experiment.run_experiment` executes.

A run is a `RunConfig`::

    RunConfig(
        name="voc_r50_pu64_ui6",        # the run folder's default name
        model={...},                    # RIGNet's constructor arguments, less num_classes
        data=DataConfig(...),           # where the data comes from and how it is fed
        train=TrainConfig(...),         # rignet_keras.training.trainer.TrainConfig
        eval=EvalConfig(...),           # which ui, flip/multi-scale testing, pictures
        export=ExportConfig(...),       # what to export after evaluation (nothing by default)
        description="...", paper={"mIoU": 68.9},
    )

Sections:

- `model` is a plain dict of `RIGNet.__init__` keyword arguments. Its keys are checked against
  that signature (`check_model_kwargs`), so a new RIGNet option is reachable from every recipe
  and command the day it exists, and an unknown key is an error naming it. `num_classes` is not
  in it: it comes from the data. `backbone` must be a registered name (a list of layers cannot
  be written to JSON). `backbone_weights="imagenet"` on a backbone without published ImageNet
  weights (ResNet-18/34) is resolved to None by the runner, which says so on the console.
- Numeric fields are checked when a section is built (a crop, batch, sample count or ui below
  1, a negative warm-up or weight decay, a rate or scale that is not positive): `ConfigError`
  naming `section.field` and the value, before any data is opened.
- `data` (`DataConfig`), `eval` (`EvalConfig`) and `export` (`ExportConfig`) are defined here;
  `train` is the trainer's own `TrainConfig` (imported on first use, so that this module and the
  command line's `--help` need no TensorFlow).

JSON: `config.save(path)` writes the tree (`RunConfig.to_dict()`); `RunConfig.load(path)` reads
it back, refusing a section or key it does not know (naming it). The runner writes the resolved
tree as `run_config.json` in the run folder, beside `checkpoints/`; `rignet train --config
<run>/run_config.json` runs it again, and `rignet evaluate --run <run>` evaluates the run's
checkpoint on the data recorded there.

Overrides: one generic mechanism, `section.key=value` (`config.override(["train.steps=100",
"model.backbone=resnet18"])`, `--set` on the command line). A value is read as JSON, else as a
Python literal, else as a string: `train.steps=100`, `model.feedback_blocks=[4,6]`,
`model.gate_pooling=null` (or `None`), `data.eval_size=[512,512]`, `model.backbone=resnet18`.
The common flags (`--steps`, `--backbone`, `--sync-batch-norm`, ...;
`rignet_keras.config_flags.OVERRIDE_FLAGS`) are aliases of it. An override is refused, naming
it, when its section or key does not exist, when its value has the wrong type, or
(`check_recipe_overrides`) when it sets a model or data field that the recipe's variants differ
in (pick the variant instead). Shortening `train.steps` below the recipe's `steps_per_epoch` or
`warmup_steps` shortens those too, with a console line, unless they are overridden as well.

Resume: `check_resume(recorded, current)` refuses to continue a run whose model, data, seed or
batch size changed, naming the first field that differs.
"""

import ast
import dataclasses
import hashlib
import inspect
import json
import os
import sys
import types
import typing

CONFIG_NAME = "run_config.json"
SECTIONS = ("model", "data", "train", "eval", "export")
# What a resumed run must share with the run it continues (besides the whole model and data).
RESUME_TRAIN_FIELDS = ("seed", "batch_size")
# The sections whose fields name a recipe's variant (see `check_recipe_overrides`).
VARIANT_SECTIONS = ("model", "data")


class ConfigError(ValueError):
    """A configuration, override or resume the run cannot honour; the message names the key."""


def check_numbers(section, obj, minimums):
    """Refuses a numeric field below its smallest value: {field: smallest}; None (unset) and,
    for tuples, every element are checked. Raises `ConfigError` naming `section.field`."""
    for field, low in minimums.items():
        value = getattr(obj, field)
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if item is not None and not isinstance(item, bool) and item < low:
                raise ConfigError(f"{section}.{field} must be at least {low}; received {value!r}")


# --------------------------------------------------------------------------------------------
# The model section: RIGNet's own constructor arguments


def model_signature():
    """`inspect.signature(RIGNet.__init__)` parameters by name, less self, num_classes, kwargs."""
    from rignet_keras.models import RIGNet

    params = inspect.signature(RIGNet.__init__).parameters
    return {
        name: p
        for name, p in params.items()
        if name not in ("self", "num_classes") and p.kind is not inspect.Parameter.VAR_KEYWORD
    }


def check_model_kwargs(model):
    """Checks `model` (a dict of RIGNet keyword arguments) against RIGNet's signature.

    Returns:
        a copy, with JSON lists turned into tuples (`feedback_blocks`).

    Raises:
        ConfigError: naming an unknown key, `num_classes`, or a backbone that is not a name.
    """
    if not isinstance(model, dict):
        raise ConfigError(f"model must be a dict of RIGNet arguments; received {model!r}")
    known = model_signature()
    for key in model:
        if key == "num_classes":
            raise ConfigError("model.num_classes is not configurable: it comes from the data")
        if key not in known:
            raise ConfigError(
                f"model.{key} is not a RIGNet argument; choose from {', '.join(sorted(known))}"
            )
    backbone = model.get("backbone", known["backbone"].default)
    if not isinstance(backbone, str):
        raise ConfigError(
            f"model.backbone must be a registered backbone name; received {type(backbone).__name__}"
        )
    return {k: tuple(v) if isinstance(v, list) else v for k, v in model.items()}


def resolved_model_kwargs(model):
    """Every RIGNet argument of `model`, RIGNet's defaults filled in (what the model will be)."""
    model = check_model_kwargs(model)
    full = {k: p.default for k, p in model_signature().items()}
    full.update(model)
    return full


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
FEED_FORWARD_MODES = ("parallel", "sequential", "multi_range")


def is_baseline(model):
    """True for the feed-forward baseline (no gates in a block-wise mode)."""
    m = resolved_model_kwargs(model)
    return m["feedback_blocks"] is None and m["unroll_mode"] in FEED_FORWARD_MODES


def model_label(model):
    """The paper's name of a model section, e.g. "ResNet50-RIGNet Pu<6..4>, ui=6"."""
    m = resolved_model_kwargs(model)
    backbone = m["backbone"]
    name = BACKBONE_LABELS.get(backbone, backbone)
    if m["output_stride"] == 8 and backbone != "deeplabv2":
        name += " (8s)"
    if is_baseline(m):
        return f"{name}-FCN" if backbone != "deeplabv2" else name
    mode = MODE_LABELS.get(m["unroll_mode"], m["unroll_mode"])
    if m["unroll_mode"] in ("network_recurrent", "network_gated"):
        return f"{name} {mode}, ui={m['num_iterations']}"
    blocks = m["feedback_blocks"]
    if isinstance(blocks, int):  # RIGNet reads k as (k, 6)
        blocks = (blocks, 6)
    if isinstance(blocks, (tuple, list)) and len(blocks) == 2:
        first, last = blocks
        blocks = f"<{last}>" if first == last else f"<{last}..{first}>"
    else:  # RIGNet refuses it when the model is built; the label only shows it
        blocks = f"<{blocks!r}>"
    extra = []
    if m["gate_combine"] != "mul_sigmoid":
        extra.append(m["gate_combine"])
    if m["gate_pooling"] != "avg":
        extra.append(f"pool={m['gate_pooling']}")
    tail = f" [{', '.join(extra)}]" if extra else ""
    return f"{name}-RIGNet {mode}{blocks}, ui={m['num_iterations']}{tail}"


# --------------------------------------------------------------------------------------------
# The other sections


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
        crop_size: training crop (square side); None for the data layer's default (321, or the
            image size for "synthetic").
        scale_range, flip: training augmentation.
        eval_mode, eval_size, eval_batch_size: evaluation batches (see `build_dataset`).
        label_convention: COCO-Stuff "171" or "182".
        num_train_samples, num_eval_samples: use only the first N samples.
        synthetic: dict of `SyntheticConfig` fields for the in-memory synthetic source.
        on_bad_sample: "raise" (stop naming the file) or "skip" (leave it out, counted).
    """

    source: str = "voc_aug"
    train_split: str = "train"
    eval_source: str | None = None
    eval_split: str = "val"
    data_dir: str | None = None
    crop_size: int | None = 321
    scale_range: tuple = (0.5, 2.0)
    flip: bool = True
    eval_mode: str = "pad"
    eval_size: tuple | None = None
    eval_batch_size: int = 1
    label_convention: str = "171"
    num_train_samples: int | None = None
    num_eval_samples: int | None = None
    synthetic: dict | None = None
    on_bad_sample: str = "raise"

    def __post_init__(self):
        check_numbers(
            "data",
            self,
            {
                "crop_size": 1,
                "eval_size": 1,
                "eval_batch_size": 1,
                "num_train_samples": 1,
                "num_eval_samples": 1,
            },
        )


@dataclasses.dataclass
class EvalConfig:
    """How to evaluate a run.

    Args:
        iterations: the ui values; None for 1..ui (the anytime curve).
        flip, scales: flip and multi-scale testing.
        num_visualize: images to draw into `eval/predictions/` (0 for none).
        checkpoint: "best" or "last": the weights evaluated.
        max_batches: evaluate only this many batches.
        validate: validate (and pick "best") during training; False trains without validation.
    """

    iterations: tuple | None = None
    flip: bool = False
    scales: tuple = (1.0,)
    num_visualize: int = 8
    checkpoint: str = "best"
    max_batches: int | None = None
    validate: bool = True

    def __post_init__(self):
        check_numbers("eval", self, {"iterations": 1, "num_visualize": 0, "max_batches": 1})
        if any(scale <= 0 for scale in self.scales):
            raise ConfigError(f"eval.scales must be positive; received {self.scales!r}")
        if self.checkpoint not in ("best", "last"):
            raise ConfigError(
                f"eval.checkpoint must be 'best' or 'last'; received {self.checkpoint!r}"
            )


@dataclasses.dataclass
class ExportConfig:
    """What to export after evaluation (see `rignet_keras.export.export_model`).

    Args:
        formats: e.g. ("tflite",); empty for no export.
        precisions: e.g. ("float32",).
        tflite_layouts: e.g. ("multi",) (one file holding every ui).
        stepwise: also export the step-by-step graphs.
        input_size: the graphs' square side; None for the evaluation size, else the crop size.
        output_dir: the export folder; None for `<run>/export`.
        quality_images: score every exported file on the first N images of the evaluation
            source's val split and record mIoU and pixel accuracy per ui in the manifest
            (`export_model(validation=...)`); 0 (default) for none. The source must be
            "synthetic" (the run's own synthetic set), "voc" or "voc_aug" (VOC val under
            `data.data_dir`).
    """

    formats: tuple = ()
    precisions: tuple = ("float32",)
    tflite_layouts: tuple = ("multi",)
    stepwise: bool = False
    input_size: int | None = None
    output_dir: str | None = None
    quality_images: int = 0

    def __post_init__(self):
        check_numbers("export", self, {"input_size": 1, "quality_images": 0})
        if self.formats:  # the export's own check, before any training
            from rignet_keras.export.options import check_export_options

            try:
                check_export_options(
                    formats=self.formats,
                    precisions=self.precisions,
                    tflite_layouts=self.tflite_layouts,
                )
            except ValueError as error:
                raise ConfigError(f"export.{error}") from None


# The evaluation sources whose val split the export's quality scores can read.
QUALITY_SOURCES = ("synthetic", "voc", "voc_aug")


def check_export_quality(data, export):
    """Refuses `export.quality_images` where the export cannot score: no export, an evaluation
    source other than `QUALITY_SOURCES`, or an evaluation split other than val."""
    if not export.quality_images:
        return
    source = data.eval_source or data.source
    if not export.formats:
        raise ConfigError(
            f"export.quality_images={export.quality_images} needs an export: export.formats is "
            "empty"
        )
    if source not in QUALITY_SOURCES:
        raise ConfigError(
            f"export.quality_images needs an evaluation source in {QUALITY_SOURCES}; the run's "
            f"is {source!r} (score its export with rignet_keras.export.add_quality instead)"
        )
    if data.eval_split != "val":
        raise ConfigError(
            f"export.quality_images scores the val split; data.eval_split is {data.eval_split!r}"
        )


def _train_config_class():
    from rignet_keras.training.trainer import TrainConfig

    return TrainConfig


def _default_train():
    return _train_config_class()()


SECTION_CLASSES = {"data": DataConfig, "eval": EvalConfig, "export": ExportConfig}


def section_class(section):
    return _train_config_class() if section == "train" else SECTION_CLASSES[section]


def check_training_ui(model, train):
    """Refuses a training ui the model cannot honour (`ConfigError` naming the fields): more than
    one iteration for a model without feedback (the FCN has one output whatever the ui), and
    the "prefix" random-ui method for the sequential mode (its ui = k is no prefix of a longer
    unroll)."""
    ui = getattr(train, "train_iterations", None)
    if ui is None:
        return
    if ui[1] > 1 and is_baseline(model):
        raise ConfigError(
            f"train.train_iterations={list(ui)} needs feedback gates: model.feedback_blocks is "
            "None, so every ui is the same feed-forward network; set model.feedback_blocks"
        )
    model_ui = resolved_model_kwargs(model)["num_iterations"]
    if ui[1] > model_ui and not is_baseline(model):
        raise ConfigError(
            f"train.train_iterations={list(ui)} trains up to ui {ui[1]} but "
            f"model.num_iterations is {model_ui}, the largest ui evaluated and exported; raise "
            f"model.num_iterations to {ui[1]} or lower the range"
        )
    mode = resolved_model_kwargs(model)["unroll_mode"]
    if ui[0] < ui[1] and train.random_ui_method == "prefix" and mode == "sequential":
        raise ConfigError(
            "train.random_ui_method='prefix' cannot train model.unroll_mode='sequential' (its "
            "ui = k is not a prefix of a longer unroll); use 'switch' or 'auto'"
        )


@dataclasses.dataclass
class RunConfig:
    """One run: a model, its data, how to train, evaluate and export it (see the module doc)."""

    name: str = "run"
    model: dict = dataclasses.field(default_factory=dict)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: typing.Any = dataclasses.field(default_factory=_default_train)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    description: str = ""
    paper: dict | None = None

    def __post_init__(self):
        self.model = check_model_kwargs(self.model)
        # what the trainer's own TrainConfig leaves to its callers
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
        path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        payload = dict(self.to_dict(), label=self.label())
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2)
        os.replace(path + ".tmp", path)
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
        train = changes.get("train", {})
        steps = train.get("steps")
        if steps is not None:
            if "steps_per_epoch" not in train and self.train.steps_per_epoch > steps:
                train["steps_per_epoch"] = steps
                print(f"note: train.steps_per_epoch set to train.steps={steps}", file=sys.stderr)
            if "warmup_steps" not in train and self.train.warmup_steps >= steps:
                train["warmup_steps"] = steps // 10
                print(
                    f"note: train.warmup_steps set to {steps // 10} (train.steps={steps})",
                    file=sys.stderr,
                )
        try:
            return self.replace(**changes)
        except ConfigError:
            raise
        except (TypeError, ValueError) as error:  # a section's own check (TrainConfig's)
            if str(error).split(" ", 1)[0] in {f.name for f in dataclasses.fields(self.train)}:
                raise ConfigError(f"train.{error}") from None  # it names its field
            shown = " ".join(f"{k}={v!r}" for k, v in pairs)
            raise ConfigError(f"overrides {shown}: {error}") from None

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


def _field_type(cls, name):
    hints = typing.get_type_hints(cls)
    return hints.get(name, typing.Any)


def _from_json(cls, name, value):
    """Lists back to tuples where the field holds tuples."""
    if isinstance(value, list) and _accepts(_field_type(cls, name), tuple):
        return tuple(value)
    return value


def _accepts(annotation, kind):
    if annotation in (typing.Any, object):
        return True
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_accepts(a, kind) for a in args)
    return annotation is kind


# --------------------------------------------------------------------------------------------
# Overrides


def parse_value(text):
    """A command-line value: JSON, else a Python literal, else the string itself."""
    if text in ("none", "None"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_assignment(text):
    """ "section.key=value" -> ("section.key", value)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like section.key=value")
    return key.strip(), parse_value(value.strip())


def split_key(key):
    section, _, field = key.partition(".")
    if section in ("name", "description") and not field:
        return section, None
    if section not in SECTIONS or not field:
        raise ConfigError(
            f"override key {key!r} must be section.key with section one of {SECTIONS} (or 'name')"
        )
    return section, field


def check_value(section, field, value):
    """Checks one override against the tree; returns the value to set."""
    if section == "model":
        value = tuple(value) if isinstance(value, list) else value
        check_model_kwargs({field: value})
        return value
    cls = section_class(section)
    names = {f.name for f in dataclasses.fields(cls)}
    if field not in names:
        raise ConfigError(
            f"{section}.{field} is not a {cls.__name__} field; choose from "
            f"{', '.join(sorted(names))}"
        )
    annotation = _field_type(cls, field)
    value = _from_json(cls, field, value)
    if not _type_ok(annotation, value):
        raise ConfigError(
            f"{section}.{field}={value!r}: expected {_type_name(annotation)}, received "
            f"{type(value).__name__}"
        )
    return value


def _type_ok(annotation, value):
    if annotation in (typing.Any, object):
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_type_ok(a, value) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def _type_name(annotation):
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    return "None" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))


def varied_fields(configs):
    """The `section.key` fields whose values differ among `configs` (a recipe's variants)."""
    trees = [c.to_dict() for c in configs]
    if len(trees) < 2:
        return set()
    varied = set()
    for section in SECTIONS:
        keys = set().union(*(t[section] for t in trees))
        for key in keys:
            values = {json.dumps(t[section].get(key), sort_keys=True) for t in trees}
            if len(values) > 1:
                varied.add(f"{section}.{key}")
    return varied


def check_recipe_overrides(recipe, variants, assignments):
    """Refuses overrides that set a model or data field the recipe's variants differ in (what
    makes a variant that variant: Table 3's `model.num_iterations`, Table 4's
    `model.gate_combine`); training fields such as the learning rate stay free.

    Args:
        recipe: the recipe's name (for the message), e.g. "recipes/table3.py".
        variants: {variant: RunConfig}.
        assignments: the overrides ("section.key=value" strings or (key, value) pairs).
    """
    varied = {k for k in varied_fields(variants.values()) if k.split(".")[0] in VARIANT_SECTIONS}
    for item in assignments:
        key = parse_assignment(item)[0] if isinstance(item, str) else item[0]
        if key in varied:
            raise ConfigError(
                f"{recipe} cannot honour {key}: its variants differ in it; choose a --variant "
                f"({', '.join(sorted(variants))}) instead of overriding it"
            )


# --------------------------------------------------------------------------------------------
# Resume


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
