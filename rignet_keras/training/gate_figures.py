"""Pictures of what the gates do, from the maps of `gate_maps.gate_statistics`: one figure per
sample (`save_gate_figure`), each map as its own PNG (`save_gate_map_images`), and the grid of
channel means (`save_gate_maps`, from `gate_maps.gate_maps`)."""

import os

from rignet_keras.training.plots import pyplot


def _label(ax, text):
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=8, transform=ax.transAxes)


def _row(fig, axes, maps, titles, vmax, cmap, vmin=0.0):
    """Draws `maps` (h, w) into the first of `axes` (a whole row of panels) with one colour
    scale from `vmin` to `vmax`, and one colour bar at the row's right end."""
    image = None
    for ax, m, title in zip(axes, maps, titles, strict=False):
        if m is None:
            continue
        image = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=max(float(vmax), vmin + 1e-6))
        ax.set_title(title, fontsize=7)
    if image is not None:
        fig.colorbar(image, ax=list(axes), fraction=0.02, pad=0.01)


def save_gate_figure(stats, image_rgb, path, index=0, title=None):
    """One PNG of what the gates do on one sample (a row label on the left of every row):

    - the image, then the prediction's change from ui t - 1 to t (total-variation distance per
      pixel, scaled to its largest value; the share of labels that changed in the title);
    - per gated block: the spread of the gate across channels at ui 2..K (the channel mean, over
      the image, in the title: it stays near the middle of the range); the gate's change
      from ui t - 1 to t (mean |difference| over channels) at ui 3..K; and its `top_k` most
      selective channels at ui K, each on the gate's scale 0..1 (its variation over the image
      in the title).

    Args:
        stats: the output of `gate_statistics`.
        image_rgb: uint8 (H, W, 3) of the sample.
        path: the PNG to write (its folder is created).
        index: which sample of the batch.

    Returns:
        `path`.
    """
    plt = pyplot()
    k = stats["iterations"]
    steps = list(range(2, k + 1))
    top_k = max((s["channels"].shape[1] for s in stats["selective"].values()), default=0)
    rows = [("image", None)]
    for name in stats["blocks"]:
        rows.append(("spread", name))
        if k >= 3:
            rows.append(("change", name))
        rows.append(("selective", name))
    cols = 1 + max(len(steps), top_k, 1)
    fig, axes = plt.subplots(
        len(rows),
        cols,
        figsize=(1.9 * cols + 0.6, 1.8 * len(rows)),
        dpi=100,
        squeeze=False,
        layout="constrained",
    )
    for ax in axes.flat:
        ax.axis("off")
    for r, (kind, name) in enumerate(rows):
        head = axes[r][0]
        panels = axes[r][1:]
        if kind == "image":
            head.imshow(image_rgb)
            head.set_title("image", fontsize=7)
            maps = [stats["prediction_change"][t][index] for t in steps]
            titles = [
                f"prediction change {t - 1}->{t}\n"
                f"{100 * stats['labels_changed'][t][index]:.1f}% labels changed"
                for t in steps
            ]
            vmax = max([float(m.max()) for m in maps] + [1e-3])
            _row(fig, panels, maps, titles, vmax, "magma")
        elif kind == "spread":
            _label(head, f"{name}\nspread of the gate\nacross channels\n(std per pixel)")
            maps = [stats["spread"][(name, t)][index] for t in steps]
            vmax = max(float(m.max()) for m in maps)
            titles = [
                f"{name}, ui {t}\nchannel mean {stats['mean'][(name, t)][index].mean():.2f}"
                for t in steps
            ]
            _row(fig, panels, maps, titles, vmax, "viridis")
        elif kind == "change":
            _label(head, f"{name}\nchange of the gate\nfrom ui t-1 to t\n(mean |diff|)")
            maps = [stats["change"].get((name, t)) for t in steps]
            maps = [None if m is None else m[index] for m in maps]
            vmax = max((float(m.max()) for m in maps if m is not None), default=1.0)
            titles = [f"{name}, ui {t - 1}->{t}" for t in steps]
            _row(fig, panels, maps, titles, vmax, "inferno")
        else:
            sel = stats["selective"][name]
            _label(head, f"{name}\nmost selective\nchannels, ui {sel['iteration']}")
            channels, variation = sel["channels"][index], sel["variation"][index]
            maps = list(sel["maps"][index])
            titles = [f"ch {c}, std {v:.2f}" for c, v in zip(channels, variation, strict=True)]
            lo, hi = sel["range"]
            _row(fig, panels, maps, titles, hi, "viridis", vmin=lo)
    if title:
        fig.suptitle(title, fontsize=9)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def save_gate_maps(maps, image_rgb, path, index=0, title=None):
    """One PNG: the image, then a grid of channel-mean gate maps (rows: blocks, columns:
    iterations), from the output of `gate_maps`. `save_gate_figure` draws what varies."""
    plt = pyplot()
    blocks = sorted({name for name, _ in maps}, key=lambda n: (len(n), n))
    steps = sorted({t for _, t in maps})
    rows, cols = max(1, len(blocks)), len(steps) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows), dpi=100, squeeze=False)
    for r in range(rows):
        ax = axes[r][0]
        if r == 0:
            ax.imshow(image_rgb)
            ax.set_title("image", fontsize=8)
        ax.axis("off")
    for r, name in enumerate(blocks):
        for c, t in enumerate(steps, start=1):
            ax = axes[r][c]
            m = maps.get((name, t))
            ax.axis("off")
            if m is None:
                continue
            im = ax.imshow(m[index], cmap="viridis")
            ax.set_title(f"{name} gate, ui {t}\nmean {m[index].mean():.2f}", fontsize=7)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def gate_map_file_names(stats):
    """The maps of `gate_statistics` that `save_gate_map_images` writes one file each, in order:
    `{block}_ui{t}_spread.png` (t = 2..K), `{block}_ui{t}_change.png` (t = 3..K) and
    `prediction_ui{t}_change.png` (t = 2..K), as a list of (name, kind, key), key being the
    entry of `stats[kind]`. (The selective channels' files depend on the sample; that function
    names them itself.)"""
    names = []
    for name in stats["blocks"]:
        for t in range(2, stats["iterations"] + 1):
            if (name, t) in stats["spread"]:
                names.append((f"{name}_ui{t}_spread.png", "spread", (name, t)))
        for t in range(3, stats["iterations"] + 1):
            if (name, t) in stats["change"]:
                names.append((f"{name}_ui{t}_change.png", "change", (name, t)))
    for t in sorted(stats["prediction_change"]):
        names.append((f"prediction_ui{t}_change.png", "prediction_change", t))
    return names


def save_gate_map_images(stats, folder, index=0, prefix=""):
    """Writes each map of `gate_statistics` for sample `index` as its own PNG in `folder`
    (names: `gate_map_file_names`, plus `{block}_ui{K}_channel{c}.png` per selective channel),
    each on its own min-max scale (viridis); returns the paths."""
    plt = pyplot()
    os.makedirs(folder, exist_ok=True)
    paths = []
    for file_name, kind, key in gate_map_file_names(stats):
        path = os.path.join(folder, prefix + file_name)
        plt.imsave(path, stats[kind][key][index], cmap="viridis")
        paths.append(path)
    for name in stats["blocks"]:
        sel = stats["selective"][name]
        for j, c in enumerate(sel["channels"][index]):
            path = os.path.join(folder, f"{prefix}{name}_ui{sel['iteration']}_channel{c}.png")
            lo, hi = sel["range"]
            plt.imsave(path, sel["maps"][index][j], cmap="viridis", vmin=lo, vmax=hi)
            paths.append(path)
    return paths
