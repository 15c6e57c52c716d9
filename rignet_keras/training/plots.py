"""Matplotlib for the project's figures, and the anytime plot (a score against ui).

Matplotlib is imported on first use, with the Agg backend (no display needed), so that importing
a module that draws costs nothing until it draws.
"""

import os

import numpy as np


def pyplot():
    """`matplotlib.pyplot`, with the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_anytime(curves, path, score="mIoU", title="mIoU against ui (anytime)"):
    """Plots {label: [(ui, value in [0, 1])]} as percent against ui; writes a PNG; returns path."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    for label, points in curves.items():
        points = [(k, v) for k, v in points if v is not None and np.isfinite(v)]
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, [100 * y for y in ys], marker="o", label=label)
    ax.set_xlabel("ui (iterations)")
    ax.set_ylabel(f"{score} (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    all_ui = sorted({k for points in curves.values() for k, _ in points})
    if all_ui:
        ax.set_xticks(all_ui)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
