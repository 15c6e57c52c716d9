"""What a run configuration's sections become: the model section as a network (`build_network`,
its normalisation) and the data section as datasets (the endless training stream, the
evaluation set, the export's quality source), through the data layer's `build_dataset`."""

import sys

from rignet_keras.config import resolved_model_kwargs


def data_layer():
    """The data layer's public functions (imported late: it is optional for the library)."""
    import rignet_keras.data as data

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


def class_names(data):
    """The names of the training dataset's classes, by label (its `DatasetInfo`)."""
    info = data_layer().get_info(
        data.source,
        label_convention=data.label_convention,
        data_dir=data.data_dir,
        synthetic_config=synthetic_config(data),
    )
    return tuple(info.class_names)


def build_size(data):
    """The square side the network is built at: the crop, or the synthetic image size."""
    if data.crop_size is not None:
        return data.crop_size
    if data.synthetic and data.synthetic.get("image_size"):
        return int(tuple(data.synthetic["image_size"])[0])
    return 321


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


def quality_source(data):
    """The `export_model(validation=...)` source of a data section's evaluation data: its
    `SyntheticConfig` for the in-memory "synthetic" set (whose val images depend on their index
    only, so the first N are the run's), else the VOC-layout folder ("voc", "voc_aug", or the
    synthetic set on disk); `config.check_export_quality` has refused the other sources."""
    source = data.eval_source or data.source
    if source == "synthetic" and data.data_dir is None:  # generated in memory, as the run's
        return data_layer().SyntheticConfig(**(data.synthetic or {}))
    return data.data_dir or data_layer().default_data_dir()  # a VOC-layout folder
