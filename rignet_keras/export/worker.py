"""Conversion jobs (TFLite, ONNX), run in this process or in a fresh one.

A TFLite conversion of a ResNet-50 RIGNet peaks at several GB and tf2onnx keeps copies of the
weights; a subprocess per conversion returns that memory to the system after each one. A job is
a JSON-able dict:
    {"kind": "tflite", "saved_model": dir, "signature_keys": [...], "precision": str,
     "samples": .npz path or None, "output": path}
    {"kind": "onnx", "keras_model": .keras path, "ui": int, "input_size": [H, W] or None,
     "opset": int, "output": path}

Run one from the shell: `python -m rignet_keras.export.worker job.json`. On Linux an isolated
job's process is killed with the export's (`PR_SET_PDEATHSIG`): an export killed partway leaves
no conversion running on.
"""

import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import time

import numpy as np


def save_samples(path, samples):
    """Writes calibration samples [(signature, {input: array})] to an .npz file."""
    arrays = {}
    for i, (signature, inputs) in enumerate(samples):
        for name, value in inputs.items():
            arrays[f"{i:06d}/{signature}/{name}"] = np.asarray(value)
    np.savez(path, **arrays)
    return path


def load_samples(path):
    """Reads the samples `save_samples` wrote, in their order."""
    samples = {}
    with np.load(path) as data:
        for key in sorted(data.files):
            index, signature, name = key.split("/", 2)
            samples.setdefault(index, (signature, {}))[1][name] = data[key]
    return [samples[k] for k in sorted(samples)]


def run_job(job, model=None, samples=None):
    """Runs one conversion job in this process and writes its output file.

    Args:
        job: the job dict (see the module docstring).
        model: for ONNX jobs, the `RIGNet` already in memory (else loaded from the job's .keras).
        samples: for TFLite jobs, calibration samples already in memory.

    Returns:
        {"seconds": float}.
    """
    from rignet_keras.export.files import atomic_write_bytes

    start = time.perf_counter()
    if job["kind"] == "tflite":
        from rignet_keras.export.tflite import check_builtin_only, convert_tflite

        if samples is None and job.get("samples"):
            samples = load_samples(job["samples"])
        content = convert_tflite(
            job["saved_model"], job["signature_keys"], job["precision"], samples
        )
        check_builtin_only(content, os.path.basename(job["output"]))
        atomic_write_bytes(job["output"], content)
    elif job["kind"] == "onnx":
        from rignet_keras.export.onnx import convert_onnx

        if model is None:
            from rignet_keras.models.loading import load_rignet

            model = load_rignet(job["keras_model"])
        size = tuple(job["input_size"]) if job.get("input_size") else None
        proto = convert_onnx(model, job["ui"], size, opset=job["opset"])
        atomic_write_bytes(job["output"], proto.SerializeToString())
    else:
        raise ValueError(f"unknown job kind {job['kind']!r}")
    return {"seconds": round(time.perf_counter() - start, 2)}


def _die_with_parent():
    """In the child, before `exec`: asks Linux to SIGKILL it when its parent dies."""
    pr_set_pdeathsig = 1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def run_isolated(job, job_path):
    """Runs a job in a fresh Python process; returns {"seconds", "peak_rss_mb"}.

    Raises:
        RuntimeError: the process failed; the message holds the end of its error output.
    """
    with open(job_path, "w", encoding="utf-8") as f:
        json.dump(job, f)
    start = time.perf_counter()
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    process = subprocess.run(
        [sys.executable, "-m", "rignet_keras.export.worker", job_path],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    if process.returncode != 0:
        tail = "\n".join(process.stderr.strip().splitlines()[-15:])
        raise RuntimeError(
            f"the {job['kind']} conversion to {job['output']!r} failed (exit status "
            f"{process.returncode}):\n{tail}"
        )
    report = json.loads(process.stdout.strip().splitlines()[-1])
    report["wall_seconds"] = round(time.perf_counter() - start, 2)
    return report


def main(argv=None):
    """Runs the job in the JSON file named on the command line; prints a JSON report."""
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0], encoding="utf-8") as f:
        job = json.load(f)
    report = run_job(job)
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
