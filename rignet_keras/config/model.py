"""The model section: a plain dict of `RIGNet.__init__` keyword arguments, checked against that
signature, and the paper's name of the model it describes."""

import inspect

from rignet_keras.config.errors import ConfigError


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


# The paper's names of the backbones (the unroll modes name themselves:
# `rignet_keras.models.unroll`, each mode class's `label` and `paper_label`).
BACKBONE_LABELS = {
    "resnet18": "ResNet18",
    "resnet34": "ResNet34",
    "resnet50": "ResNet50",
    "resnet101": "ResNet101",
    "resnet152": "ResNet152",
    "mobilenetv2": "MobileNetV2",
    "deeplabv2": "DeepLabV2",
}


def mode_labels():
    """{unroll_mode: the paper's name of the unroll} ("parallel" -> "Pu"), from the modes."""
    from rignet_keras.models.unroll import unroll_mode_labels

    return unroll_mode_labels()


def is_baseline(model):
    """True for the feed-forward baseline (no gates in a block-wise mode)."""
    from rignet_keras.models.unroll import is_feed_forward

    m = resolved_model_kwargs(model)
    return is_feed_forward(m["unroll_mode"], m["feedback_blocks"])


def model_label(model):
    """The paper's name of a model section, e.g. "ResNet50-RIGNet Pu<6..4>, ui=6": the
    backbone's name here, the unroll's from its mode class (`paper_label`)."""
    from rignet_keras.models.unroll import paper_label

    m = resolved_model_kwargs(model)
    backbone = m["backbone"]
    name = BACKBONE_LABELS.get(backbone, backbone)
    if m["output_stride"] == 8 and backbone != "deeplabv2":
        name += " (8s)"
    if is_baseline(m):
        return f"{name}-FCN" if backbone != "deeplabv2" else name
    return paper_label(
        m["unroll_mode"],
        name,
        feedback_blocks=m["feedback_blocks"],
        num_iterations=m["num_iterations"],
        gate_combine=m["gate_combine"],
        gate_pooling=m["gate_pooling"],
    )
