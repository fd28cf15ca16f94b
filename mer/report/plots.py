"""Figures every notebook shows: examples, training curves, confusion matrix, per-class F1,
ablation chart. Each function returns the matplotlib Figure; ``save`` writes it as PNG."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from mer.paths import replace_atomic


STAMP_DEVICE = None  # the device results are computed on (set by the run helper); the stamp names its GPU


def add_stamp(fig, text: str | None = None):
    """Writes the date and the machine (:func:`mer.machine.stamp`) into the figure's bottom
    right corner, once; returns the figure."""
    from mer import machine
    if not getattr(fig, "_mer_stamped", False):
        fig.text(0.995, 0.005, text or machine.stamp(STAMP_DEVICE), ha="right", va="bottom", fontsize=6,
                 color="#777", transform=fig.transFigure)
        fig._mer_stamped = True
    return fig


def save(fig, out_dir: str | Path, name: str) -> Path:
    """``<out_dir>/figures/<name>.png``, stamped with the date and the machine."""
    path = Path(out_dir) / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    add_stamp(fig)
    replace_atomic(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png"))
    return path


def confusion_matrix(cm, labels, title: str = "Confusion matrix (pooled over folds)"):
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(1.1 * len(labels) + 2, 1.0 * len(labels) + 1.5))
    sns.heatmap(cm, annot=True, fmt="d", cmap="Blues", xticklabels=labels, yticklabels=labels, cbar=False, ax=ax)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def training_curves(curves: pd.DataFrame, title: str = "Training curves (one line per fold)"):
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for fold, g in curves.groupby("fold", sort=False):
        axes[0].plot(g["epoch"], g["loss"], alpha=0.5, lw=1)
        axes[1].plot(g["epoch"], g["train_acc"], alpha=0.5, lw=1)
    mean = curves.groupby("epoch")[["loss", "train_acc"]].mean()
    axes[0].plot(mean.index, mean["loss"], color="k", lw=2, label="mean")
    axes[1].plot(mean.index, mean["train_acc"], color="k", lw=2, label="mean")
    axes[0].set(xlabel="epoch", ylabel="training loss")
    axes[1].set(xlabel="epoch", ylabel="training accuracy", ylim=(0, 1.02))
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def per_class_f1(metrics: dict, title: str = "Per-class F1 and recall (pooled)"):
    pc = pd.DataFrame(metrics["per_class"]).T[["f1", "recall"]]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    pc.plot.bar(ax=ax, rot=0)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def per_class_accuracy(table: pd.DataFrame, title: str = "Per-class accuracy"):
    """Grouped bars: one group per class (``table``'s index), one bar per column (a run)."""
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(table)), 3.4))
    table.plot.bar(ax=ax, rot=0)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (recall)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def ablation_chart(table: pd.DataFrame, title: str = "Ablations"):
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(table)), 3.4))
    table.set_index("variant")[["acc", "uf1", "uar"]].plot.bar(ax=ax, rot=15)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def examples(clips: pd.DataFrame, classes, read, n: int = 4, seed: int = 0, gain: float = 8.0):
    """Onset, apex and amplified difference for ``n`` clips of different classes."""
    first = [g.sample(1, random_state=seed).index[0] for _, g in clips.groupby("label", sort=True)]
    picks = clips.loc[first].head(n)
    fig, axes = plt.subplots(len(picks), 3, figsize=(7.5, 2.6 * len(picks)), squeeze=False)
    for ax_row, (_, row) in zip(axes, picks.iterrows()):
        onset = read(row, row["onset"]).astype(np.float32)
        apex = read(row, row["apex"]).astype(np.float32)
        diff = np.clip((apex - onset) * gain + 128, 0, 255).astype(np.uint8)
        for ax, img, name in zip(ax_row, (onset.astype(np.uint8), apex.astype(np.uint8), diff),
                                 ("onset", "apex", f"difference x{gain:g}")):
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
            ax.set_title(f"{row['subject']}/{row['clip']} {classes[row['label']]}\n{name}" if name == "onset" else name,
                          fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    return fig


def attention_overlays(frames: np.ndarray, maps: np.ndarray, titles, cols_title=None,
                       title: str = "Attention maps (first CA block, each scaled to its own range)"):
    """Rows = clips, columns = frames of the clip; each map resized onto its frame.

    ``frames``: (clips, k, H, W) or (clips, k, H, W, 3) images in [0, 1];
    ``maps``: (clips, k, h, w) attention; each is shown scaled to its own min..max.
    """
    import cv2
    n, k = maps.shape[:2]
    fig, axes = plt.subplots(n, k, figsize=(1.8 * k, 1.9 * n), squeeze=False)
    for i in range(n):
        for j in range(k):
            ax = axes[i][j]
            img = frames[i, j]
            h, w = img.shape[:2]
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
            a = cv2.resize(maps[i, j].astype(np.float32), (w, h))
            a = (a - a.min()) / (a.max() - a.min() + 1e-8)  # each map scaled to its own range
            ax.imshow(a, cmap="jet", alpha=0.45, vmin=0, vmax=1)
            ax.axis("off")
            if j == 0:
                ax.set_title(titles[i], fontsize=7, loc="left")
            elif i == 0 and cols_title is not None:
                ax.set_title(cols_title[j], fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def magnifier_training(curve: list[dict], title: str = "ST-MEMM training"):
    """Left: loss terms against steps (log scale). Right, when the curve has them: the
    measured magnification on held-out pairs (``ratio_a<alpha>``: measured / requested
    motion) with the band within 25% of 1 shaded."""
    frame = pd.DataFrame(curve)
    ratios = [c for c in frame.columns if c.startswith("ratio_a")]
    fig, axes = plt.subplots(1, 2 if ratios else 1, figsize=(10 if ratios else 5.5, 3.2), squeeze=False)
    ax = axes[0][0]
    for k in ("l1", "texture", "shape"):
        if k in frame:
            ax.plot(frame["step"], frame[k], label=k)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (mean over 25 steps)")
    ax.legend()
    ax.set_title("loss")
    if ratios:
        ax = axes[0][1]
        checked = frame.dropna(subset=ratios)
        for k in ratios:
            ax.plot(checked["step"], checked[k], marker="o", label=f"alpha {k[len('ratio_a'):]}")
        ax.axhspan(0.75, 1.25, color="green", alpha=0.12, label="within 25%")
        ax.set_ylim(0, 1.5)
        ax.set_xlabel("step")
        ax.set_ylabel("measured / (alpha * d), median")
        ax.legend()
        ax.set_title("magnification on held-out pairs")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def image_grid(rows: list[list[np.ndarray]], row_titles=None, col_titles=None, title: str = "", scale: float = 1.7):
    """Images (uint8 RGB/gray or float in [0, 1]) in a grid; ``None`` cells stay empty."""
    n, k = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n, k, figsize=(scale * k, scale * n + 0.4), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(k):
            ax = axes[i][j]
            ax.axis("off")
            img = row[j] if j < len(row) else None
            if img is None:
                continue
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
            if i == 0 and col_titles is not None:
                ax.set_title(col_titles[j], fontsize=8)
            if j == 0 and row_titles is not None:
                ax.text(-0.06, 0.5, row_titles[i], transform=ax.transAxes, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def pretraining_curve(curve: list[dict], title: str = "Pre-training"):
    """Loss and accuracy per epoch on the training clips and on held-out subjects."""
    df = pd.DataFrame(curve)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    axes[0].plot(df["epoch"], df["loss"], label="training")
    axes[1].plot(df["epoch"], df["train_acc"], label="training (augmented, while training)")
    if "val_loss" in df:
        axes[0].plot(df["epoch"], df["val_loss"], label="held-out subjects")
        axes[1].plot(df["epoch"], df["val_acc"], label="held-out subjects")
    axes[0].set(xlabel="epoch", ylabel="loss")
    axes[1].set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
    axes[1].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def pixel_graph(neighbours: np.ndarray, side: int, p: int, nodes, title: str = ""):
    """The p fixed (orange) and stochastic (blue) neighbours of a few reference nodes
    (green) of a side x side pixel graph; ``neighbours`` is (N, p + q), -1 where short."""
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.scatter(*np.divmod(np.arange(side * side), side)[::-1], s=3, c="0.8")
    for node in nodes:
        r, c = divmod(int(node), side)
        for k, j in enumerate(neighbours[node]):
            if j < 0:
                continue
            rj, cj = divmod(int(j), side)
            ax.plot([c, cj], [r, rj], color="tab:orange" if k < p else "tab:blue", lw=1.2)
            ax.scatter([cj], [rj], s=14, color="tab:orange" if k < p else "tab:blue", zorder=3)
        ax.scatter([c], [r], s=40, color="tab:green", zorder=4)
    ax.set(xlim=(-1, side), ylim=(side, -1), aspect="equal", xticks=[], yticks=[])
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def flow_mean_variance(stats: dict, title: str = ""):
    """The paper's Fig. 8: per set of clips (``stats``: name -> :func:`~mer.models.tdsgcn.flow_statistics`),
    the mean and the variance over clips of the optical-flow magnitude at each pixel."""
    fig, axes = plt.subplots(len(stats), 2, figsize=(6.4, 3.0 * len(stats)), squeeze=False)
    for (name, st), (left, right) in zip(stats.items(), axes):
        for ax, key, what in ((left, "mean", "mean"), (right, "var", "variance")):
            im = ax.imshow(st[key], cmap="magma")
            fig.colorbar(im, ax=ax, fraction=0.046)
            ax.set(xticks=[], yticks=[])
            ax.set_title(f"{name}: {what} over {st['clips']} clips" + (f"\n(mean variance {st['spread']:.3g})"
                                                                      if key == "var" else ""), fontsize=8)
    fig.suptitle(title or "Optical-flow magnitude over clips", fontsize=10)
    fig.tight_layout()
    return fig


def grid_heatmap(table: pd.DataFrame, rows: str, cols: str, value: str = "uf1", title: str = ""):
    """A value over a two-parameter grid (e.g. focal alpha x gamma)."""
    pivot = table.pivot(index=rows, columns=cols, values=value)
    fig, ax = plt.subplots(figsize=(1.2 * pivot.shape[1] + 2.5, 0.9 * pivot.shape[0] + 1.5))
    sns.heatmap(pivot, annot=True, fmt=".3f", cmap="viridis", cbar=False, ax=ax)
    ax.set_title(title or f"{value} over {rows} x {cols}")
    fig.tight_layout()
    return fig


def au_cooccurrence(matrix: np.ndarray, aus, title: str = ""):
    """P(column AU | row AU) as a heat map (e.g. averaged over folds)."""
    names = [f"AU{a}" for a in aus]
    fig, ax = plt.subplots(figsize=(0.42 * len(names) + 2.2, 0.38 * len(names) + 1.6))
    sns.heatmap(pd.DataFrame(matrix, index=names, columns=names), vmin=0, vmax=1, cmap="viridis", square=True,
                annot=len(names) <= 20, fmt=".2f", annot_kws={"fontsize": 6}, cbar_kws={"shrink": 0.7}, ax=ax)
    ax.set(xlabel="j (co-occurring AU)", ylabel="i (given AU)")
    ax.set_title(title or "AU co-occurrence P(j | i)", fontsize=10)
    fig.tight_layout()
    return fig


def au_graph(positions: np.ndarray, subsets: np.ndarray, aus, distances: np.ndarray, face: np.ndarray | None = None,
             title: str = "", distance_name: str = "distance to the centre"):
    """Left: the AU nodes at their positions (the mean of their region's landmarks; bilateral
    regions average onto the midline) on ``face``. Right: the graph in a circle, nodes in
    face order from the top, an arrow j -> i for each neighbour j of root i coloured by its
    subset (centripetal blue, centrifugal orange, same distance grey) and as wide as its
    weight; the red number is each node's distance to the centre, as the partition measured
    it (``distance_name``: hops from the anchor, or px to the mean position)."""
    n = len(aus)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 5.2))
    if face is not None:
        left.imshow(face, cmap="gray" if face.ndim == 2 else None, alpha=0.6)
    left.scatter(positions[:, 0], positions[:, 1], s=14, c="tab:red", zorder=3)
    for k, ((x, y), a) in enumerate(zip(positions, aus)):  # labels alternate sides: midline nodes crowd
        left.annotate(f"AU{a}", (x, y), xytext=(14 if k % 2 else -14, 0), textcoords="offset points", fontsize=6,
                      ha="left" if k % 2 else "right", va="center", arrowprops=dict(arrowstyle="-", lw=0.4))
    left.set(xticks=[], yticks=[], aspect="equal")
    if face is None:
        left.invert_yaxis()
    left.set_title("node positions", fontsize=9)
    order = np.lexsort((positions[:, 0], positions[:, 1]))
    angle = np.empty(n)
    angle[order] = np.pi / 2 - 2 * np.pi * np.arange(n) / n
    xy = np.c_[np.cos(angle), np.sin(angle)]
    colours = ("0.55", "tab:blue", "tab:orange")
    off = ~np.eye(n, dtype=bool)
    top = max(float(subsets[:, off].max(initial=0.0)), 1e-9)
    for k, colour in enumerate(colours):
        for i, j in zip(*np.nonzero(subsets[k] * off)):
            right.annotate("", xy=xy[i], xytext=xy[j],
                           arrowprops=dict(arrowstyle="-|>", color=colour, lw=0.4 + 2.6 * subsets[k, i, j] / top,
                                           alpha=0.8, shrinkA=9, shrinkB=9, connectionstyle="arc3,rad=0.1"))
    right.scatter(xy[:, 0], xy[:, 1], s=320, c="white", edgecolors="k", zorder=3)
    for (x, y), a, h in zip(xy, aus, distances):
        right.text(x, y, f"{a}", ha="center", va="center", fontsize=7, zorder=4)
        right.text(1.18 * x, 1.18 * y, f"{h:.0f}", ha="center", va="center", fontsize=7, color="tab:red")
    handles = [plt.Line2D([], [], color=c, lw=2, label=l)
               for c, l in zip(colours, ("same distance (root subset)", "centripetal", "centrifugal"))]
    right.legend(handles=handles, fontsize=7, loc="lower left", bbox_to_anchor=(-0.05, -0.08))
    right.set(xlim=(-1.35, 1.35), ylim=(-1.35, 1.35), xticks=[], yticks=[], aspect="equal")
    right.set_title(f"edges j -> i by subset (red: {distance_name})", fontsize=9)
    fig.suptitle(title or "AU graph", fontsize=10)
    fig.tight_layout()
    return fig


def _minus(img: np.ndarray, base: np.ndarray, gain: float) -> np.ndarray:
    return np.clip((img.astype(np.float32) - base) * gain + 128, 0, 255).astype(np.uint8)


def magnified_pair(pair: dict, outputs: dict, alpha: float, gain: float = 4):
    """A held-out magnification pair (``A``, ``B``, ``target``, ``motion``): the frames and
    each magnifier's output at ``alpha``, with their change from A (times ``gain``)."""
    cols = ["A", "B", f"target (alpha {alpha:g})", *[f"{k} (alpha {alpha:g})" for k in outputs]]
    frames = [pair["A"], pair["B"], pair["target"], *outputs.values()]
    return image_grid([frames, [None, *[_minus(f, pair["A"], gain) for f in frames[1:]]]],
                      ["frame", f"minus A, x{gain:g}"], cols, f"A held-out pair: d = {np.round(pair['motion'][0], 2)} px")


def magnified_frames(onset: np.ndarray, apex: np.ndarray, magnifiers: dict, alphas, title: str, gain: float = 4):
    """One clip's apex magnified from its onset by each magnifier at each factor (p2's Fig. 9),
    each row followed by its change from the onset (times ``gain``)."""
    grid, names = [], []
    for name, fn in magnifiers.items():
        mags = [fn(onset, apex, a) for a in alphas]
        grid += [[onset, apex, *mags], [None, _minus(apex, onset, gain), *[_minus(m, onset, gain) for m in mags]]]
        names += [name, f"{name}: minus onset x{gain:g}"]
    return image_grid(grid, names, ["onset", "apex", *[f"alpha {a:g}" for a in alphas]], title)


def test_selection(sel: dict, title: str = "Test-fold UF1 after each epoch"):
    """The pooled test UF1 after every epoch (the test-epoch diagnostic), the honest score at
    the fixed last epoch, the best single epoch and the per-fold best epochs' score: what
    test-fold selection would have reported."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    epochs = np.arange(1, len(sel["uf1_by_epoch"]) + 1)
    ax.plot(epochs, sel["uf1_by_epoch"], color="#555", lw=1.2, label="pooled test UF1 after the epoch")
    ax.axhline(sel["honest_uf1"], color="tab:blue", lw=1.5, label=f"honest (fixed epochs): {sel['honest_uf1']:.3f}")
    ax.scatter([sel["best_epoch"]], [sel["epoch_best_uf1"]], color="tab:orange", zorder=3,
               label=f"best single epoch ({sel['best_epoch']}): {sel['epoch_best_uf1']:.3f}")
    ax.axhline(sel["fold_best_uf1"], color="tab:red", ls="--", lw=1.2,
               label=f"best epoch per test fold: {sel['fold_best_uf1']:.3f}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("UF1")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def amplitude_sweep(table: pd.DataFrame, title: str = "UF1 against motion amplitude (SynthME, synthetic)"):
    """One line per method: pooled UF1 at each amplitude with its 95% interval (the sweep's
    ``sweep.csv``: amplitude_px, method, uf1, uf1_low, uf1_high), amplitudes on a log axis."""
    fig, ax = plt.subplots(figsize=(8, 4.2))
    methods = list(dict.fromkeys(table["method"]))
    offsets = np.linspace(-0.06, 0.06, len(methods)) if len(methods) > 1 else [0.0]
    for off, (m, g) in zip(offsets, ((m, table[table["method"] == m]) for m in methods)):
        x = g["amplitude_px"].to_numpy(dtype=float) * 2 ** off  # spread the bars a little on the log axis
        y = g["uf1"].to_numpy(dtype=float)
        err = np.vstack([y - g["uf1_low"].to_numpy(dtype=float), g["uf1_high"].to_numpy(dtype=float) - y])
        ax.errorbar(x, y, yerr=err, marker="o", ms=4, capsize=2, lw=1.3, label=m)
    ax.set_xscale("log", base=2)
    amps = sorted(set(table["amplitude_px"].astype(float)))
    ax.set_xticks(amps)
    ax.set_xticklabels([f"{a:g}" for a in amps])
    ax.set_xlabel("apex displacement (px at 224 px)")
    ax.set_ylabel("pooled UF1 (95% interval)")
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig
