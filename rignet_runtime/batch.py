"""Segmenting files: which graph to run (and why), then one mask (and overlay) per image.

`resolve_model` turns the runner's options into a plan: the file, the ui or step-wise mode,
and a sentence saying why that graph was chosen. `run` checks the chosen file against the
manifest, warms the graph up (so no image pays the cold start), and writes the outputs.
"""

import os
import time

import numpy as np

from .errors import RunnerError
from .images import (
    fit_image,
    list_images,
    load_image,
    output_paths,
    resize_mask,
    write_mask,
    write_overlay,
)
from .latency import measure_latency
from .litert_cache import DEFAULT_THREADS
from .manifest import (
    as_manifest,
    describe_quality,
    find_artifact,
    find_stepwise,
    latency_source,
    select_graph,
    select_ui,
    verify_artifact,
)
from .segmenters import AnytimeSegmenter, Segmenter, make_interpreter, ui_signatures
from .stopping import DEFAULT_STOPPING


def _precision_of(manifest, path):
    artifact = find_artifact(manifest, path)
    return None if artifact is None else artifact.get("precision")


def resolve_model(
    model=None,
    manifest=None,
    ui=None,
    budget_ms=None,
    deadline_ms=None,
    precision=None,
    quality_floor=None,
    min_miou=None,
):
    """Works out which file and signature to run from the runner's options.

    `quality_floor` / `min_miou` (mIoU points) choose by the manifest's quality figures,
    alone or with `budget_ms` (see `manifest.select_graph`).

    Returns:
        {"file": path, "mode": "ui", "stepwise" or "budget" (a bare file to time here),
        "ui": int or None, "signature": name or None, "precision": str or None,
        "latency_ms": float or None, "reason": why this graph, in words}.
    """
    if (model is None) == (manifest is None):
        raise RunnerError("give exactly one of a .tflite model and a manifest")
    chosen = [
        name
        for name, value in (
            ("--ui", ui),
            ("--budget-ms", budget_ms),
            ("--deadline-ms", deadline_ms),
        )
        if value is not None
    ]
    if len(chosen) > 1:
        raise RunnerError(f"choose one of --ui, --budget-ms, --deadline-ms; received {chosen}")
    by_quality = quality_floor is not None or min_miou is not None
    if by_quality:
        flag = "--quality-floor" if quality_floor is not None else "--min-miou"
        if manifest is None:
            raise RunnerError(
                f"{flag} chooses by a manifest's quality figures; it needs --manifest"
            )
        if ui is not None or deadline_ms is not None:
            other = "--ui" if ui is not None else "--deadline-ms"
            raise RunnerError(f"{flag} chooses a ui graph; it does not combine with {other}")
    plan = {"ui": None, "signature": None, "precision": None, "latency_ms": None}
    if manifest is not None:
        manifest = as_manifest(manifest)
    if deadline_ms is not None:
        path = find_stepwise(manifest, precision) if manifest is not None else os.fspath(model)
        plan.update(
            file=path,
            mode="stepwise",
            reason=f"--deadline-ms {deadline_ms:g}: the step-wise graph, one iteration at a time",
        )
        if manifest is not None:
            plan["precision"] = _precision_of(manifest, path)
        return plan
    if manifest is None:
        if budget_ms is not None:
            return dict(plan, file=os.fspath(model), mode="budget", reason=None)
        reason = f"--ui {ui}" if ui is not None else "the largest ui in the file"
        return dict(plan, file=os.fspath(model), mode="ui", ui=ui, reason=reason)
    if by_quality:
        choice = select_graph(
            manifest, budget_ms, precision, quality_floor=quality_floor, min_miou=min_miou
        )
        wanted = []
        if quality_floor is not None:
            wanted.append(
                f"within --quality-floor {quality_floor:g} mIoU points of the best "
                f"({100 * choice['best_miou']:.2f})"
            )
        if min_miou is not None:
            wanted.append(f"at least --min-miou {min_miou:g}")
        if budget_ms is not None:
            wanted.append(f"within --budget-ms {budget_ms:g}")
        latency = choice["latency_ms"]
        measured = (
            f"median latency {latency:.1f} ms, measured by {latency_source(manifest)}"
            if latency is not None
            else "no latency recorded"
        )
        reason = f"the cheapest graph {' and '.join(wanted)}: {measured}"
    elif budget_ms is not None:
        choice = select_graph(manifest, budget_ms, precision)
        reason = (
            f"the largest ui whose median latency ({choice['latency_ms']:.1f} ms) fits "
            f"--budget-ms {budget_ms:g}; latencies measured by {latency_source(manifest)}"
        )
    else:
        choice = select_ui(manifest, ui, precision)
        reason = f"--ui {ui}" if ui is not None else "the largest ui the manifest holds"
    expected = describe_quality(choice)
    if expected:
        reason += f"; {expected}"
    plan.update(
        file=choice["file"],
        mode="ui",
        ui=choice["ui"],
        signature=choice["signature"],
        precision=choice["precision"],
        latency_ms=choice["latency_ms"],
        quality=choice.get("quality"),
        reason=reason,
    )
    return plan


def choose_by_measurement(
    model_path, budget_ms, threads=DEFAULT_THREADS, runs=3, weight_cache=None
):
    """Without a manifest: times every ui signature of a file and picks the largest that fits.

    Returns:
        (ui, the interpreter, its median latency in ms).
    """
    interpreter = make_interpreter(model_path, threads, weight_cache)
    rows = []
    for ui in ui_signatures(interpreter):
        segmenter = Segmenter(model_path, ui=ui, interpreter=interpreter)
        image = np.zeros(segmenter.input_size + (3,), np.uint8)
        rows.append((ui, measure_latency(lambda s=segmenter, x=image: s(x), runs=runs)))
    fitting = [(ui, lat["median_ms"]) for ui, lat in rows if lat["median_ms"] <= budget_ms]
    if not fitting:
        measured = ", ".join(f"ui {u}: {lat['median_ms']:.1f} ms" for u, lat in rows)
        raise RunnerError(
            f"no ui of {os.fspath(model_path)!r} fits a budget of {budget_ms} ms "
            f"(measured: {measured})"
        )
    ui, latency = max(fitting)
    return ui, interpreter, latency


def describe_plan(plan, threads):
    """One line: which file, precision and ui the runner chose, and why."""
    if plan["mode"] == "stepwise":
        what = "signatures init/step"
    else:
        what = f"signature {plan['signature']}"
    precision = plan["precision"] or "precision not recorded"
    return f"running {plan['file']} ({precision}, {what}, {threads} threads): {plan['reason']}"


def run(
    inputs,
    output_dir,
    model=None,
    manifest=None,
    ui=None,
    budget_ms=None,
    deadline_ms=None,
    precision=None,
    threads=DEFAULT_THREADS,
    resize=False,
    write_overlays=True,
    alpha=0.5,
    max_iterations=None,
    stopping=None,
    log=None,
    weight_cache=None,
    quality_floor=None,
    min_miou=None,
):
    """Segments an image or a folder of images and writes palette masks (and overlays).

    Args:
        inputs: an image file or a folder of images.
        output_dir: where the masks `<stem>.png` and overlays `<stem>_overlay.png` go (see
            `images.output_paths`: inputs with equal stems get distinct names, and an output
            that would overwrite an input is refused).
        model / manifest: a `.tflite` file, or a `manifest.json` (exactly one). A file chosen
            from a manifest is checked against its recorded size and SHA-256 first.
        ui: the ui to run. budget_ms: pick the largest ui that fits (from the manifest's
            latencies, or measured here for a bare file). deadline_ms: run the step-wise graph
            until the deadline. At most one of the three; none: the largest ui.
        precision: restrict a manifest's choice to one precision.
        quality_floor, min_miou: choose the cheapest ui graph within this many mIoU points of
            the manifest's best / of at least this mIoU (points), within `budget_ms` if given
            (the manifest's quality figures; see `manifest.select_graph`).
        threads: CPU threads. resize: resize images to the graph's size (else a size mismatch
            is an error); masks are resized back.
        write_overlays, alpha: write colour overlays blended with `alpha`.
        max_iterations: the step-wise runs' iteration limit (default: the manifest's).
        stopping: the step-wise runs' `StoppingRule` (None: `stopping.DEFAULT_STOPPING`).
        log: a callable taking a line of text (e.g. `print`), or None.
        weight_cache: a folder for the XNNPACK weight cache (see `make_interpreter`); None: none.

    Returns:
        A list of dicts, one per image: {"image", "mask", "overlay", "ui" or "iterations",
        "milliseconds", "stop_reason"}. Before the first image, `log` gets the line of
        `describe_plan` (which graph, and why).
    """
    if not 0.0 <= alpha <= 1.0:
        raise RunnerError(f"alpha (--alpha) must be in 0..1; received {alpha!r}")
    files = list_images(inputs)
    outputs = output_paths(files, output_dir, write_overlays)
    if manifest is not None:
        manifest = as_manifest(manifest)
    plan = resolve_model(
        model, manifest, ui, budget_ms, deadline_ms, precision, quality_floor, min_miou
    )
    if manifest is not None:
        verify_artifact(manifest, plan["file"])
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as error:
        raise RunnerError(
            f"--output-dir {os.fspath(output_dir)!r} cannot be created ({error.strerror})"
        ) from None
    interpreter = None
    if plan["mode"] == "budget":
        plan["ui"], interpreter, latency = choose_by_measurement(
            plan["file"], budget_ms, threads, weight_cache=weight_cache
        )
        plan.update(
            mode="ui",
            latency_ms=latency,
            reason=f"the largest ui whose median latency ({latency:.1f} ms) fits --budget-ms "
            f"{budget_ms:g}; latencies measured here",
        )
    if plan["mode"] == "stepwise":
        stopping = stopping or DEFAULT_STOPPING
        plan["reason"] += f"; {stopping.describe()}"
        graph = AnytimeSegmenter(plan["file"], threads, weight_cache=weight_cache)
        if max_iterations is None and manifest is not None:
            max_iterations = (manifest.get("stepwise") or {}).get("max_iterations")
    else:
        graph = Segmenter(
            plan["file"],
            ui=plan["ui"],
            signature=plan["signature"],
            threads=threads,
            interpreter=interpreter,
            weight_cache=weight_cache,
        )
        plan.update(ui=graph.ui, signature=graph.signature)
    if log is not None:
        log(describe_plan(plan, threads))
    graph.warm_up()
    name = os.path.basename(plan["file"])
    results = []
    for path, names in zip(files, outputs, strict=True):
        image = load_image(path)
        fitted = fit_image(image, graph.input_size, resize, name=repr(path), model_name=repr(name))
        start = time.perf_counter()
        record = {"image": path}
        if plan["mode"] == "stepwise":
            result = graph.run(fitted, deadline_ms, max_iterations, stopping)
            class_map = result.class_map
            record.update(
                iterations=result.iterations, stop_reason=result.stop_reason, step_ms=result.step_ms
            )
        else:
            class_map, _ = graph(fitted)
            record.update(ui=graph.ui)
        record["milliseconds"] = round((time.perf_counter() - start) * 1000.0, 3)
        class_map = resize_mask(class_map, image.shape[:2])
        record["mask"] = names["mask"]
        write_mask(record["mask"], class_map)
        if write_overlays:
            record["overlay"] = names["overlay"]
            write_overlay(record["overlay"], image, class_map, alpha)
        if log is not None:
            detail = (
                f"{record['iterations']} iterations ({record['stop_reason']})"
                if plan["mode"] == "stepwise"
                else f"ui {record['ui']}"
            )
            if plan["mode"] == "stepwise" and deadline_ms is not None:
                missed = result.elapsed_ms > deadline_ms
                record["deadline_missed"] = missed
                if missed:  # even the first pass did not fit: say so, never a silent overrun
                    detail += f", missed the {deadline_ms:g} ms deadline"
            log(f"{path}: {detail}, {record['milliseconds']:.1f} ms -> {record['mask']}")
        results.append(record)
    return results
