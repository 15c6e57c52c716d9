"""Named configurations of the paper's models (data only), for `RIGNet.from_preset`-style use.

Each entry is the keyword arguments of `RIGNet` less `num_classes`: exactly a run
configuration's model section (`rignet_keras.config.RunConfig(model=PRESETS[name])`, checked
against RIGNet's signature like any other). The "_fcn"/plain entries are the feed-forward
baselines (no gates); the others are the best RIGNet rows of the paper's Tables 3, 7 and 8 for
that network.
"""

PRESETS = {
    # Table 1 / 7: ResNet-FCN at output stride 32.
    "resnet50_fcn": dict(backbone="resnet50", feedback_blocks=None, num_iterations=1),
    "resnet101_fcn": dict(backbone="resnet101", feedback_blocks=None, num_iterations=1),
    # Table 7: ResNet50-RIGNet Pu<6..4>, ui=6 (68.9 mIoU on VOC val).
    "resnet50_rignet": dict(
        backbone="resnet50", unroll_mode="parallel", feedback_blocks=(4, 6), num_iterations=6
    ),
    # Table 3: ResNet50-RIGNet Pf_u<6..1>, ui=6.
    "resnet50_rignet_multi_range": dict(
        backbone="resnet50", unroll_mode="multi_range", feedback_blocks=(1, 6), num_iterations=6
    ),
    # Table 7: ResNet101-RIGNet Pf_u<6..1>, ui=6 (71.6).
    "resnet101_rignet": dict(
        backbone="resnet101", unroll_mode="multi_range", feedback_blocks=(1, 6), num_iterations=6
    ),
    # Table 7: ResNet101 (8s) and ResNet101-RIGNet (8s) Pu<6..4>, ui=4 (71.3 / 74.9).
    "resnet101_os8_fcn": dict(
        backbone="resnet101", output_stride=8, feedback_blocks=None, num_iterations=1
    ),
    "resnet101_os8_rignet": dict(
        backbone="resnet101",
        output_stride=8,
        unroll_mode="parallel",
        feedback_blocks=(4, 6),
        num_iterations=4,
    ),
    # Table 7: DeepLabV2 and DeepLabV2-RIGNet Pu<6..4>, ui=2 (74.9 / 75.9).
    "deeplabv2": dict(backbone="deeplabv2", feedback_blocks=None, num_iterations=1),
    "deeplabv2_rignet": dict(
        backbone="deeplabv2", unroll_mode="parallel", feedback_blocks=(4, 6), num_iterations=2
    ),
    # Beyond the paper: a mobile network with gates and bottlenecked gate convolutions.
    "mobilenetv2_fcn": dict(
        backbone="mobilenetv2", head_filters=256, feedback_blocks=None, num_iterations=1
    ),
    "mobilenetv2_rignet": dict(
        backbone="mobilenetv2",
        head_filters=256,
        unroll_mode="parallel",
        feedback_blocks=(4, 6),
        num_iterations=3,
        gate_bottleneck=128,
    ),
    # Beyond the paper: a small ResNet-18 RIGNet Pu<6..4>, ui=3 (a quick start on a CPU).
    "resnet18_rignet": dict(
        backbone="resnet18", unroll_mode="parallel", feedback_blocks=(4, 6), num_iterations=3
    ),
    # Beyond the paper: ResNet-18/34 RIGNet Pu<6..4>, ui=3 on keras-hub's ImageNet weights
    # ("resnet_18_imagenet", "resnet_vd_34_imagenet"; keras-hub installed, downloaded once).
    "resnet18_hub_rignet": dict(
        backbone="hub_resnet18",
        backbone_weights="imagenet",
        unroll_mode="parallel",
        feedback_blocks=(4, 6),
        num_iterations=3,
    ),
    "resnet34_hub_rignet": dict(
        backbone="hub_resnet_vd34",
        backbone_weights="imagenet",
        unroll_mode="parallel",
        feedback_blocks=(4, 6),
        num_iterations=3,
    ),
}


def preset_kwargs(name, **overrides):
    """The `RIGNet` keyword arguments of preset `name`, updated with `overrides`."""
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}; received {name!r}")
    return {**PRESETS[name], **overrides}
