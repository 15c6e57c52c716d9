"""Backbones split into RIGNet blocks, and the registry that names them.

A backbone here is five blocks B1-B5; the head (B6) comes from `heads.py`. `build_blocks` returns
all six. Any other network joins by being a list of six Keras layers (see `RIGNet`); the gates
never know which network they wrap. docs/DESIGN.md ("How to add: a backbone") describes the
block contract and how to register a backbone here. Backbones cut from `keras.applications` and
keras-hub models (`split.py`, `applications.py`, `hub.py`) are listed in docs/BACKBONES.md.
"""

import dataclasses
import functools
import inspect
import os

import keras

from rignet_keras.backbones.applications import APPLICATION_BACKBONES
from rignet_keras.backbones.common import (
    OUTPUT_STRIDES,
    BlockContract,
    check_output_stride,
    transfer_weights_by_name,
)
from rignet_keras.backbones.heads import ASPP_RATES, HEADS, build_head
from rignet_keras.backbones.hub import HUB_BACKBONES
from rignet_keras.backbones.mobilenet import mobilenet_v2_blocks
from rignet_keras.backbones.resnet import resnet_blocks
from rignet_keras.backbones.split import SplitBackbone, input_of, split_backbone, split_model


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone.

    Attributes:
        build: `build(output_stride, sync_batch_norm) -> (blocks, contracts)`.
        preprocessing: the `rignet_keras.preprocessing` mode its ImageNet weights expect.
        imagenet_model: the `keras.applications` constructor whose weights load by name, or None
            (for a backbone cut from a model: its source, `SplitBackbone.source`).
        default_output_stride: used when the caller gives None.
        default_head: used when the caller gives None.
        load_weights: `load_weights(blocks, weights) -> layers filled`, for backbones whose
            weights do not load by layer name (those cut from a model); None to load by name.
        weights_from: where `weights="imagenet"` comes from, in words (for messages and docs).
    """

    build: object
    preprocessing: str
    imagenet_model: object = None
    default_output_stride: int = 32
    default_head: str = "fcn"
    load_weights: object = None
    weights_from: str = ""


def _split_spec(backbone):
    """The registry entry of a `SplitBackbone` (a backbone cut from a functional model)."""
    return BackboneSpec(
        backbone.build,
        backbone.preprocessing,
        backbone.source,
        load_weights=backbone.load_weights,
        weights_from=backbone.weights_from,
    )


BACKBONES = {
    "resnet18": BackboneSpec(functools.partial(resnet_blocks, 18), "torch"),
    "resnet34": BackboneSpec(functools.partial(resnet_blocks, 34), "torch"),
    "resnet50": BackboneSpec(
        functools.partial(resnet_blocks, 50), "caffe", keras.applications.ResNet50
    ),
    "resnet101": BackboneSpec(
        functools.partial(resnet_blocks, 101), "caffe", keras.applications.ResNet101
    ),
    "resnet152": BackboneSpec(
        functools.partial(resnet_blocks, 152), "caffe", keras.applications.ResNet152
    ),
    "mobilenetv2": BackboneSpec(mobilenet_v2_blocks, "tf", keras.applications.MobileNetV2),
    # DeepLabV2: ResNet-101 at output stride 8 with the ASPP head.
    "deeplabv2": BackboneSpec(
        functools.partial(resnet_blocks, 101),
        "caffe",
        keras.applications.ResNet101,
        default_output_stride=8,
        default_head="aspp",
    ),
    **{name: _split_spec(backbone) for name, backbone in APPLICATION_BACKBONES.items()},
    **{name: _split_spec(backbone) for name, backbone in HUB_BACKBONES.items()},
}


def get_backbone_spec(name):
    """The `BackboneSpec` registered as `name`; `ValueError` naming the choices otherwise."""
    if name not in BACKBONES:
        raise ValueError(f"backbone must be one of {tuple(BACKBONES)}; received {name!r}")
    return BACKBONES[name]


def build_blocks(
    name,
    num_classes,
    output_stride=None,
    head=None,
    head_filters=512,
    sync_batch_norm=False,
    width_multiplier=1.0,
):
    """Builds the six blocks B1-B6 of a registered backbone with its head.

    Args:
        width_multiplier: scales the channels of B1-B5 (1.0: the published network); only
            for backbones whose builder takes it (the ResNets).

    Returns:
        (blocks, contracts): six Keras models and their `BlockContract`s.
    """
    spec = get_backbone_spec(name)
    options = {}
    if width_multiplier != 1.0:
        if "width_multiplier" not in inspect.signature(spec.build).parameters:
            raise ValueError(
                f"width_multiplier={width_multiplier!r}: backbone {name!r} has no width "
                "multiplier (the ResNets have one)"
            )
        options["width_multiplier"] = width_multiplier
    output_stride = spec.default_output_stride if output_stride is None else output_stride
    head = spec.default_head if head is None else head
    check_output_stride(output_stride)
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}; received {head!r}")
    blocks, contracts = spec.build(
        output_stride=output_stride, sync_batch_norm=sync_batch_norm, **options
    )
    blocks.append(
        build_head(head, contracts[-1].channels, num_classes, head_filters, sync_batch_norm)
    )
    contracts.append(BlockContract(num_classes, contracts[-1].stride, contracts[-1].dilation))
    return blocks, contracts


def load_imagenet_weights(name, blocks, weights="imagenet"):
    """Loads published ImageNet weights into a registered backbone's blocks B1-B5.

    Args:
        name: the backbone's registry name.
        blocks: its blocks (at least B1-B5; the head is left alone).
        weights: "imagenet" (downloaded by Keras or keras-hub, needs internet once) or a local
            path: the Keras weights file of the source model without its top (`*_notop.h5`,
            `.weights.h5`), or for a `hub_*` backbone a keras-hub preset folder. Where each
            backbone's weights come from: docs/BACKBONES.md.

    Returns:
        The number of layers filled.
    """
    spec = get_backbone_spec(name)
    if spec.imagenet_model is None:
        raise ValueError(
            f"no ImageNet weights are published for backbone {name!r} in keras.applications; "
            "train from scratch or load your own with model.load_weights()"
        )
    if weights != "imagenet" and not os.path.exists(weights):
        raise ValueError(f"backbone weights file not found: {weights!r}")
    try:
        if spec.load_weights is not None:
            return spec.load_weights(blocks, weights)
        source = spec.imagenet_model(
            include_top=False, weights=weights, input_shape=(None, None, 3)
        )
    except Exception as error:
        if weights == "imagenet" and _is_fetch_failure(error):
            reason = " ".join(str(error).split())
            reason = reason if len(reason) <= 160 else reason[:160] + "..."
            where = spec.weights_from or "docs/BACKBONES.md"
            raise WeightsDownloadError(
                f"could not download the published weights of backbone {name!r} ({reason}); "
                f"they come from {where}: offline, fetch them on a machine with internet and "
                "pass the local file (or keras-hub preset folder) as backbone_weights"
            ) from None
        if weights != "imagenet":
            raise _foreign_weights_error(name, weights, error) from None
        raise
    try:
        return transfer_weights_by_name(source, blocks[:5])
    except Exception as error:  # noqa: BLE001  (the source model's layers do not fit)
        if weights == "imagenet":
            raise
        raise _foreign_weights_error(name, weights, error) from None


def _foreign_weights_error(name, path, error):
    """One line naming a weights file that does not load into backbone `name`."""
    reason = " ".join(str(error).split())
    if len(reason) > 160:
        reason = reason[:160] + "..."
    return ValueError(
        f"backbone weights {path!r} do not load into backbone {name!r} (not its weights file, "
        f"or damaged: {reason}); docs/BACKBONES.md names the file each backbone takes"
    )


class WeightsDownloadError(ValueError):
    """Published weights could not be downloaded; the message names the URL and the local-file
    alternative."""


def _is_fetch_failure(error):
    """Whether `error` is a failed download: Keras' `get_file` re-raises network errors as a plain
    `Exception` whose message starts "URL fetch failure"; keras-hub's loaders raise `OSError`s."""
    return isinstance(error, OSError) or "URL fetch failure" in str(error)


__all__ = [
    "ASPP_RATES",
    "BACKBONES",
    "HEADS",
    "OUTPUT_STRIDES",
    "BackboneSpec",
    "BlockContract",
    "WeightsDownloadError",
    "SplitBackbone",
    "build_blocks",
    "get_backbone_spec",
    "input_of",
    "load_imagenet_weights",
    "mobilenet_v2_blocks",
    "resnet_blocks",
    "split_backbone",
    "split_model",
    "transfer_weights_by_name",
]
