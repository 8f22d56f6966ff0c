"""The report's plots: matplotlib figures drawn with the Agg backend, returned as PNG data URIs.

Figures are made with `matplotlib.figure.Figure` and an Agg canvas, never pyplot: no global
state, no window, nothing that depends on the machine's display or default backend.
"""

import base64
import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DPI = 80
GOOD, BAD, BASE, MUTED = "#1f77b4", "#d62728", "#7f7f7f", "#c7c7c7"


def png_data_uri(figure) -> str:
    """The figure as a `data:image/png;base64,...` URI."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width, height):
    return Figure(figsize=(width, height), layout="constrained")


def history(hist, objective) -> str:
    """Score per trial (dots), best so far (line), failed trials (red crosses at the bottom)."""
    figure = _figure(11, 3.6)
    axes = figure.add_subplot()
    numbers = hist.numbers or np.arange(1, len(hist.scores) + 1)
    scored = [(n, s) for n, s in zip(numbers, hist.scores) if s is not None]
    if scored:
        xs, ys = zip(*scored)
        axes.scatter(xs, ys, s=18, color=GOOD, label="trial score", zorder=3)
        steps = [(n, b) for n, b in zip(numbers, hist.best_so_far) if b is not None]
        axes.step(*zip(*steps), where="post", color="black", lw=1.2, label="best so far")
    if hist.failures:
        bottom = min(ys) if scored else 0.0
        failed = [number for number, *_ in hist.failures]
        axes.scatter(failed, [bottom] * len(failed), marker="x", s=40, color=BAD,
                     label=f"failed ({len(failed)})", zorder=4)
    axes.set_xlabel("trial")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel(f"validation {objective}")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    return png_data_uri(figure)


def categories(panels, objective) -> str:
    """One strip plot per categorical dimension: each trial's score, and the mean per choice.

    Args:
        panels: (title, [(value, scores), ...]) per dimension.
    """
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    figure = _figure(4.6 * columns, 3.2 * rows)
    rng = np.random.default_rng(0)
    for index, (title, groups) in enumerate(panels):
        axes = figure.add_subplot(rows, columns, index + 1)
        for row, (_, scores) in enumerate(groups):
            jitter = rng.uniform(-0.15, 0.15, len(scores))
            axes.scatter(scores, row + jitter, s=14, color=GOOD, alpha=0.7)
            axes.plot([np.mean(scores)] * 2, [row - 0.3, row + 0.3], color="black", lw=2)
        axes.set_yticks(range(len(groups)),
                        _short([f"{value} ({len(s)})" for value, s in groups], limit=24))
        axes.invert_yaxis()
        axes.set_title(title, fontsize=10)
        axes.set_xlabel(f"validation {objective}")
        axes.grid(axis="x", alpha=0.3)
    return png_data_uri(figure)


def intensities(panels, objective, best) -> str:
    """Score against each numeric dimension (augmentation intensities), the best trial marked.

    Args:
        panels: (name, values, scores) per dimension.
        best: Index of the best trial in the rows, or None.
    """
    columns = min(4, len(panels))
    rows = -(-len(panels) // columns)
    figure = _figure(3.2 * columns, 2.6 * rows)
    for index, (name, values, scores) in enumerate(panels):
        axes = figure.add_subplot(rows, columns, index + 1)
        values, scores = np.asarray(values, float), np.asarray(scores, float)
        defined = ~np.isnan(values)  # e.g. beta exists only for some imbalance strategies
        axes.scatter(values[defined], scores[defined], s=14, color=GOOD, alpha=0.7)
        if best is not None and defined[best]:
            axes.scatter([values[best]], [scores[best]], s=60, facecolor="none",
                         edgecolor=BAD, lw=1.5, label="best")
        axes.set_title(name, fontsize=10)
        axes.grid(alpha=0.3)
        if index % columns == 0:
            axes.set_ylabel(objective, fontsize=8)
    return png_data_uri(figure)


def importance(ranking) -> str:
    """Horizontal bars of permutation importance with their standard deviation."""
    figure = _figure(7, 0.4 * len(ranking) + 1.0)
    axes = figure.add_subplot()
    names = [name for name, _, _ in ranking]
    axes.barh(range(len(ranking)), [m for _, m, _ in ranking], xerr=[s for _, _, s in ranking],
              color=GOOD, alpha=0.8)
    axes.set_yticks(range(len(ranking)), names)
    axes.invert_yaxis()
    axes.axvline(0, color="black", lw=0.8)
    axes.set_xlabel("permutation importance (drop in the forest's R² when shuffled)")
    axes.grid(axis="x", alpha=0.3)
    return png_data_uri(figure)


def test_scores(tuned, baseline, objective) -> str:
    """Each training's test score, tuned pipeline beside the baseline, with their means."""
    figure = _figure(6, 1.9)
    axes = figure.add_subplot()
    for row, (scores, color) in enumerate([(tuned, GOOD), (baseline, BASE)]):
        if scores:
            axes.scatter(scores, [row] * len(scores), s=40, color=color, alpha=0.8)
            axes.plot([np.mean(scores)] * 2, [row - 0.3, row + 0.3], color="black", lw=2)
    axes.set_yticks([0, 1], ["best pipeline", "raw-pixel baseline"])
    axes.set_ylim(1.6, -0.6)
    axes.set_xlabel(f"test {objective} (one dot per training; bar: mean)")
    axes.grid(axis="x", alpha=0.3)
    return png_data_uri(figure)


def class_counts(class_names, before, after, after_label) -> str:
    """Grouped bars: images per class before and after the imbalance strategy."""
    figure = _figure(min(14.0, max(5.0, 0.55 * len(class_names) + 2)), 3.0)
    axes = figure.add_subplot()
    x = np.arange(len(class_names))
    axes.bar(x - 0.2, before, 0.4, color=MUTED, label="images in the folder")
    if after is not None:
        axes.bar(x + 0.2, after, 0.4, color=GOOD, label=after_label)
    many = len(class_names) > 8
    axes.set_xticks(x, _short(class_names), rotation=90 if many else 0,
                    fontsize=max(4, min(9, 400 // len(class_names))) if many else 9)
    axes.legend(fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    return png_data_uri(figure)


def confusions(panels, class_names) -> str:
    """Confusion matrices side by side, colored by row share (recall), counts written."""
    figure = _figure(4.2 * len(panels), 3.9)
    labels = _short(class_names)
    for index, (title, matrix) in enumerate(panels):
        matrix = np.asarray(matrix, float)
        shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        axes = figure.add_subplot(1, len(panels), index + 1)
        axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        if len(class_names) <= 15:
            for (i, j), count in np.ndenumerate(matrix):
                axes.text(j, i, f"{int(count)}", ha="center", va="center", fontsize=7,
                          color="white" if shares[i, j] > 0.6 else "black")
        if len(class_names) <= 30:
            ticks = range(len(class_names))
            axes.set_xticks(ticks, labels, rotation=90, fontsize=7)
            axes.set_yticks(ticks, labels, fontsize=7)
        else:  # too many to read: class indices only (the table names them)
            axes.tick_params(labelsize=6)
        axes.set_xlabel("predicted")
        axes.set_ylabel("true")
        axes.set_title(title, fontsize=10)
    return png_data_uri(figure)


def image_grid(rows, row_labels, column_labels, gray) -> str:
    """A grid of uint8 images: one row per example, one column per version (original, draws)."""
    columns = len(column_labels)
    figure = _figure(1.3 * columns, 1.35 * len(rows))
    for r, images in enumerate(rows):
        for c, image in enumerate(images):
            axes = figure.add_subplot(len(rows), columns, r * columns + c + 1)
            axes.imshow(image.squeeze(), cmap="gray" if gray else None, vmin=0, vmax=255,
                        interpolation="nearest")
            axes.set_xticks([])
            axes.set_yticks([])
            if r == 0:
                axes.set_title(column_labels[c], fontsize=8)
            if c == 0:
                axes.set_ylabel(_short([row_labels[r]])[0], fontsize=8)
    return png_data_uri(figure)


def thumbnails(images, captions, *, columns=6) -> str:
    """uint8 images of any sizes in a grid, `columns` a row, each with its caption below."""
    rows = -(-len(images) // columns)
    figure = _figure(1.7 * columns, 2.1 * rows)
    for index, (image, caption) in enumerate(zip(images, captions)):
        axes = figure.add_subplot(rows, columns, index + 1)
        gray = image.ndim == 2 or image.shape[-1] == 1
        axes.imshow(image.squeeze(), cmap="gray" if gray else None, vmin=0, vmax=255,
                    interpolation="nearest")
        axes.set_xticks([])
        axes.set_yticks([])
        axes.set_xlabel("\n".join(_middle(caption.split("\n"))), fontsize=7)
    return png_data_uri(figure)


def _middle(lines, limit=26) -> list:
    """Lines cut in the middle to `limit` characters (the ends of class and file names tell
    them apart), `$` escaped."""
    cut = [line if len(line) <= limit else line[:limit // 2] + "…" + line[-(limit - 1) // 2:]
           for line in lines]
    return [line.replace("$", r"\$") for line in cut]


def _short(names, limit=14) -> list:
    """Names cut to `limit` characters, `$` escaped (matplotlib would parse it as math)."""
    cut = [name if len(name) <= limit else name[: limit - 1] + "…" for name in names]
    return [name.replace("$", r"\$") for name in cut]
