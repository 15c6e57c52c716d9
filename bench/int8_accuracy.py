"""The accuracy cost of each TFLite precision on TRAINED weights: mIoU on held-out images.

Exports a trained RIGNet (`.keras`, e.g. a run of `bench.claims` on the synthetic task) to
TFLite float32 / float16 / dynamic-range int8 / int8 / int8 with float gates, calibrated on
training images of the same task, then evaluates every ui signature of every file on validation
images that neither training nor calibration saw, against the Keras model's own mIoU.

    python -m bench.claims ...      # trains the models (checkpoints under --work-dir)
    python -m bench.int8_accuracy \
        --model "/tmp/rignet-claims/r18-Pu<6..4>-ui4-avg-mul_sigmoid-s1/checkpoints/last.keras"
"""

import os
import sys
import tempfile

import numpy as np

from bench.common import RESULTS_DIR, bench_parser, command_line, machine, write_json

PRECISIONS = ["float32", "float16", "dynamic_int8", "int8", "int8_float_gates"]


def main(argv=None):
    p = bench_parser(
        __doc__,
        threads=2,
        out=os.path.join(RESULTS_DIR, "int8_accuracy.json"),
        helps={"threads": "threads of the conversion and of LiteRT (default: %(default)s)"},
    )
    p.add_argument("--model", required=True, help="a trained RIGNet .keras file")
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--num-classes", type=int, default=3)
    p.add_argument("--mark-size", type=int, default=10)
    p.add_argument("--num-val", type=int, default=128)
    p.add_argument("--num-calibration", type=int, default=32)
    p.add_argument("--precisions", nargs="+", default=PRECISIONS)
    args = p.parse_args(argv)

    import keras

    from rignet_keras.confusion import confusion_matrix, segmentation_scores
    from rignet_keras.data import SyntheticConfig
    from rignet_keras.data.synthetic import make_synthetic
    from rignet_keras.export import export_model
    from rignet_keras.preprocessing import normalize
    from rignet_keras.training.evaluate import logits_per_iteration
    from rignet_runtime import Segmenter, make_interpreter, ui_signatures

    if not os.path.isfile(args.model):
        raise SystemExit(f"model {args.model!r} does not exist")
    model = keras.models.load_model(args.model)
    size = (args.image_size, args.image_size)
    syn = SyntheticConfig(
        image_size=size,
        num_classes=args.num_classes,
        mark_size=args.mark_size,
        object_size=(0.4, 0.6),
        objects_per_image=(1, 2),
    )
    val_images, val_masks = make_synthetic(args.num_val, seed=0, config=syn, split="val")
    calib, _ = make_synthetic(args.num_calibration, seed=1, config=syn, split="train")
    uis = list(range(1, model.num_iterations + 1))

    # Every ui of a batch from one unroll at the largest (`logits_per_iteration`).
    matrices = {k: np.zeros((args.num_classes,) * 2, np.int64) for k in uis}
    for i in range(0, len(val_images), 16):
        x = normalize(val_images[i : i + 16].astype("float32"), model.preprocessing)
        for k, logits in logits_per_iteration(model, x, uis, training=False).items():
            predictions = keras.ops.convert_to_numpy(logits).argmax(-1)
            for pred, mask in zip(predictions, val_masks[i : i + 16], strict=True):
                matrices[k] += confusion_matrix(mask, pred, args.num_classes)
    scores = {"keras": {k: segmentation_scores(cm)["mIoU"] for k, cm in matrices.items()}}

    with tempfile.TemporaryDirectory() as work:
        manifest = export_model(
            model,
            os.path.join(work, "export"),
            input_size=size,
            uis=uis,
            formats=("tflite",),
            precisions=args.precisions,
            tflite_layouts=("multi",),
            stepwise=False,
            representative_data=list(calib),
            num_calibration_images=args.num_calibration,
            latency_runs=0,
            threads=args.threads,
            strict=False,
        )
        for artifact in manifest["artifacts"]:
            if artifact["format"] != "tflite":
                continue
            path = os.path.join(work, "export", artifact["file"])
            interpreter = make_interpreter(path, args.threads)
            scores[artifact["precision"]] = {}
            for k, name in ui_signatures(interpreter).items():
                seg = Segmenter(path, signature=name, interpreter=interpreter)
                cm = np.zeros((args.num_classes,) * 2, np.int64)
                for image, mask in zip(val_images, val_masks, strict=True):
                    cm += confusion_matrix(mask, seg(image)[0], args.num_classes)
                scores[artifact["precision"]][k] = segmentation_scores(cm)["mIoU"]

    print(f"{'precision':18s}" + "".join(f"{'ui=' + str(k):>9s}" for k in uis))
    for name, by_ui in scores.items():
        print(f"{name:18s}" + "".join(f"{100 * by_ui[k]:9.1f}" for k in uis))
    write_json(
        args.out,
        {
            "command": command_line("int8_accuracy", argv),
            "machine": machine(),
            "model": args.model,
            "num_val": args.num_val,
            "num_calibration": args.num_calibration,
            "miou": {n: {str(k): v for k, v in s.items()} for n, s in scores.items()},
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
