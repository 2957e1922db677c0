"""Figures every notebook shares: boxes on an image, image grids, class bar charts, size histograms.

Every function returns a matplotlib :class:`~matplotlib.figure.Figure`. Pass ``ax=`` to draw into an
axes of your own figure instead. In a notebook a figure is shown once, as the value of the cell;
when it is not the cell's last line, show it with ``display(fig)``.

>>> import numpy as np
>>> fig = show_boxes(np.zeros((60, 80, 3), np.uint8), [(10, 10, 40, 50)], ["with_mask"])
>>> len(fig.axes)
1
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CLASS_COLOURS",
    "new_figure",
    "figure_and_axes",
    "colour_for",
    "show_boxes",
    "show_record",
    "image_grid",
    "dataset_grid",
    "class_bar_chart",
    "size_histogram",
    "show_column_quirk",
]

#: Colours of the two classes (and of unmapped boxes, ``None``), used by every figure.
CLASS_COLOURS: dict[str | None, str] = {"with_mask": "#0072b2", "without_mask": "#d55e00", None: "#9e9e9e"}
_KEYPOINT_COLOURS = ["#2196f3", "#2196f3", "#ff5722", "#9c27b0", "#9c27b0"]  # eyes, nose, mouth corners
_OTHER_COLOURS = ("#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#5d4037", "#827717")


def colour_for(label: str | None) -> str:
    """The colour of a class: blue for with_mask, vermillion for without_mask (Okabe-Ito colours, told apart with any colour vision), grey for None, a stable colour otherwise."""
    if label in CLASS_COLOURS:
        return CLASS_COLOURS[label]
    return _OTHER_COLOURS[sum(map(ord, str(label))) % len(_OTHER_COLOURS)]


# --------------------------------------------------------------------------- figure plumbing


def bare_figure(**kw):
    """A new :class:`matplotlib.figure.Figure` that pyplot does not know about.

    Returned as a cell's value it is shown once, never a second time when the cell ends. In a notebook
    pyplot's backend is loaded first: that is what teaches IPython to draw a Figure (without it the cell
    shows only ``<Figure size ...>``). Every plot function of maskedu builds its figure here.
    """
    from matplotlib.figure import Figure

    from .common import in_notebook

    if in_notebook():
        import matplotlib.pyplot

        matplotlib.pyplot._get_backend_mod()
    return Figure(**kw)


def new_figure(figsize: tuple[float, float], nrows: int = 1, ncols: int = 1, **subplot_kw):
    """``(figure, axes)``: a :func:`bare_figure` and its ``nrows`` x ``ncols`` axes as a 2-D array."""
    fig = bare_figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)


def figure_and_axes(ax, figsize: tuple[float, float]):
    """``(figure, ax, created)``: the given ``ax`` and its figure, or a new figure with one axes."""
    if ax is not None:
        return ax.figure, ax, False
    fig, axes = new_figure(figsize)
    return fig, axes[0, 0], True


_axes = figure_and_axes


def _finish(fig, created: bool):
    """Lay out a figure this module made (a figure passed in through ``ax=`` is the caller's to lay out)."""
    if created:
        fig.tight_layout()
    return fig


def _as_image(image) -> np.ndarray:
    from .imaging import load_image

    if hasattr(image, "path") and hasattr(image, "boxes"):  # an ImageRecord
        image = image.path
    if isinstance(image, (str, os.PathLike, bytes, np.ndarray)):
        return load_image(image)
    return load_image(np.asarray(image))


def _box_and_label(box, label, raw: bool):
    if hasattr(box, "xyxy"):  # a FaceBox
        text = box.raw_label if raw or box.label is None else box.label
        return box.xyxy, (text if label is None else label), box.label if label is None else label
    values = tuple(float(v) for v in box)
    if len(values) != 4:
        raise ValueError(f"a box must be (x1, y1, x2, y2), got {box!r}.")
    return values, label, label


# --------------------------------------------------------------------------- boxes on images


def show_boxes(
    image,
    boxes: Sequence = (),
    labels: Sequence[str | None] | None = None,
    *,
    ax=None,
    title: str | None = None,
    raw: bool = False,
    colors: Sequence[str] | None = None,
    linewidth: float = 2.0,
    figsize: tuple[float, float] = (6, 5),
    fontsize: float = 8,
    linestyles: Sequence[str] | None = None,
    keypoints: Sequence[Mapping[str, Sequence[float]] | None] | None = None,
):
    """Draw boxes on an image, each labelled and coloured by its class.

    ``image`` is an RGB array, a path, or an :class:`~maskedu.annotations.ImageRecord` (whose boxes
    are drawn when ``boxes`` is empty). ``boxes`` are ``(x1, y1, x2, y2)`` tuples or
    :class:`~maskedu.annotations.FaceBox` es (labelled by their mapped class, or their dataset class
    name when unmapped or ``raw=True``). ``labels`` overrides the text of each box (an empty string
    draws none) and ``colors`` the colour of each box (by default the colour of its class);
    ``linestyles`` each box's line style (``"--"`` for annotations beside detections) and ``keypoints``
    each face's landmarks (a mapping of name to ``(x, y)``, as :class:`maskedu.crop.Face` has them).
    This is the package's one way to draw boxes on a photo; ``maskedu.crop.plot_detections`` and
    ``maskedu.detect.draw_detections`` call it.
    """
    if hasattr(image, "boxes") and not len(boxes):
        boxes = image.boxes
        title = title if title is not None else image.path.name
    img = _as_image(image)
    if labels is not None and len(labels) != len(boxes):
        raise ValueError(f"got {len(labels)} labels for {len(boxes)} boxes; pass one label per box (or none).")
    if colors is not None and len(colors) != len(boxes):
        raise ValueError(f"got {len(colors)} colors for {len(boxes)} boxes; pass one colour per box (or none).")
    for name, seq in (("linestyles", linestyles), ("keypoints", keypoints)):
        if seq is not None and len(seq) != len(boxes):
            raise ValueError(f"got {len(seq)} {name} for {len(boxes)} boxes; pass one per box (or none).")
    from matplotlib.patches import Rectangle

    fig, ax, created = _axes(ax, figsize)
    ax.imshow(img)
    for i, box in enumerate(boxes):
        (x1, y1, x2, y2), text, cls = _box_and_label(box, None if labels is None else labels[i], raw)
        colour = colour_for(cls) if colors is None else colors[i]
        style = "-" if linestyles is None else linestyles[i]
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colour, linewidth=linewidth,
                               linestyle=style))
        points = None if keypoints is None else keypoints[i]
        if points:
            xs, ys = zip(*(points[k] for k in points))
            ax.scatter(xs, ys, s=14, c=_KEYPOINT_COLOURS[: len(xs)], edgecolors="white", linewidths=0.5, zorder=3)
        if text:
            ax.text(
                x1, y1, str(text), color="white", fontsize=fontsize, va="bottom", ha="left",
                bbox=dict(facecolor=colour, edgecolor="none", alpha=0.85, pad=1.0), clip_on=True,
            )
    ax.set_xlim(-0.5, img.shape[1] - 0.5)
    ax.set_ylim(img.shape[0] - 0.5, -0.5)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=fontsize + 2)
    return _finish(fig, created)


def show_record(record, *, ax=None, raw: bool = False, **kw):
    """Draw one :class:`~maskedu.annotations.ImageRecord` with its boxes (or its folder label as title)."""
    title = kw.pop("title", None)
    if title is None:
        title = record.path.name if record.boxes or record.label is None else f"{record.path.name}: {record.label}"
    return show_boxes(record.path, record.boxes, ax=ax, raw=raw, title=title, **kw)


def image_grid(
    images: Sequence,
    titles: Sequence[str] | None = None,
    *,
    ncols: int = 4,
    boxes: Sequence[Sequence] | None = None,
    labels: Sequence[Sequence[str | None]] | None = None,
    size: float = 3.0,
    raw: bool = False,
    suptitle: str | None = None,
):
    """A grid of images (arrays, paths or ImageRecords), optionally with boxes drawn on each.

    ``boxes[i]`` (and ``labels[i]``) go with ``images[i]``; ImageRecords bring their own boxes.

    >>> import numpy as np
    >>> fig = image_grid([np.zeros((20, 20, 3), np.uint8)] * 5, ncols=3)
    >>> len([a for a in fig.axes if a.get_visible()])
    5
    """
    from .common import check_int

    images = list(images)
    if not images:
        raise ValueError("image_grid() needs at least one image.")
    ncols = check_int("ncols", ncols, minimum=1)
    for name, seq in (("titles", titles), ("boxes", boxes), ("labels", labels)):
        if seq is not None and len(seq) != len(images):
            raise ValueError(f"got {len(seq)} {name} for {len(images)} images; pass one per image.")
    ncols = min(ncols, len(images))
    nrows = math.ceil(len(images) / ncols)
    fig, axes = new_figure((size * ncols, size * nrows), nrows, ncols)
    for i, ax in enumerate(axes.flat):
        if i >= len(images):
            ax.set_visible(False)
            continue
        item = images[i]
        item_boxes = boxes[i] if boxes is not None else getattr(item, "boxes", ())
        title = titles[i] if titles is not None else None
        if title is None and hasattr(item, "path"):
            title = item.path.name if item.boxes or item.label is None else f"{item.path.name}: {item.label}"
        show_boxes(
            item, item_boxes, None if labels is None else labels[i], ax=ax, title=title, raw=raw,
            linewidth=1.5, fontsize=7,
        )
    if suptitle:
        fig.suptitle(suptitle)
    return _finish(fig, True)


def dataset_grid(dataset, n: int = 8, *, ncols: int = 4, seed: int = 0, raw: bool = False, size: float = 3.0):
    """A grid of ``n`` random images of a Dataset with their boxes, preferring images with mapped faces.

    >>> fig = dataset_grid(ds, n=8)                                  # doctest: +SKIP
    """
    from .common import check_int

    n = check_int("n", n, minimum=1)
    records = list(dataset.images)
    if not records:
        raise ValueError("the dataset holds no images to show; print(dataset.report) says why.")
    rng = np.random.default_rng(seed)
    mapped = [r for r in records if (any(b.label is not None for b in r.boxes) if r.boxes else r.label is not None)]
    pool = mapped if len(mapped) >= min(n, len(records)) else records
    pick = rng.choice(len(pool), size=min(n, len(pool)), replace=False)
    chosen = [pool[i] for i in sorted(pick)]
    return image_grid(chosen, ncols=ncols, raw=raw, size=size)


# --------------------------------------------------------------------------- counts and sizes


def class_bar_chart(
    counts: Mapping[Any, int],
    *,
    reference: Mapping[Any, int] | None = None,
    names: tuple[str, str] = ("ours", "reference"),
    class_map: Mapping[str, str | None] | None = None,
    unit: str = "faces",
    ax=None,
    title: str | None = None,
    sort: bool = True,
    horizontal: bool | None = None,
    figsize: tuple[float, float] | None = None,
):
    """Bars of how many faces each class has, with the count written on each bar.

    ``counts`` is a mapping such as ``dataset.class_counts()`` or ``dataset.raw_class_counts()``.
    ``reference`` (another mapping, e.g. the paper's numbers) is drawn beside it as a second bar per
    class, labelled by ``names``. With ``class_map`` (e.g. ``dataset.class_map``) the dataset's own class
    names are coloured by the class they map to (grey when unmapped). Many classes (more than 6) are drawn as horizontal bars.

    >>> fig = class_bar_chart({"with_mask": 12, "without_mask": 9})
    """
    if not isinstance(counts, Mapping):
        raise TypeError(f"counts must be a mapping class -> count (e.g. dataset.class_counts()), got {type(counts).__name__}.")
    keys = list(counts)
    if reference is not None:
        keys += [k for k in reference if k not in counts]
    if sort:
        keys.sort(key=lambda k: (-counts.get(k, 0), str(k)))
    if not keys:
        raise ValueError("no classes to draw: counts is empty.")
    from matplotlib.ticker import MaxNLocator

    horizontal = len(keys) > 6 if horizontal is None else horizontal
    if figsize is None:
        figsize = (7, max(2.5, 0.32 * len(keys) + 1)) if horizontal else (max(4, 1.1 * len(keys) + 2), 3.6)
    fig, ax, created = _axes(ax, figsize)
    positions = np.arange(len(keys))
    series = [(names[0], [counts.get(k, 0) for k in keys])]
    if reference is not None:
        series.append((names[1], [reference.get(k, 0) for k in keys]))
    width = 0.8 / len(series)
    for j, (name, values) in enumerate(series):
        offset = (j - (len(series) - 1) / 2) * width
        if j == 0:
            colours = [colour_for(class_map.get(k) if class_map is not None else k) for k in keys]
        else:
            colours = "#90a4ae"
        draw = ax.barh if horizontal else ax.bar
        bars = draw(positions + offset, values, width, color=colours, label=name if reference is not None else None)
        ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=2, fontsize=8)
    labels = ["(unmapped)" if k is None else str(k) for k in keys]
    if horizontal:
        ax.set_yticks(positions, labels)
        ax.invert_yaxis()
        ax.set_xlabel(unit)
        ax.margins(x=0.15)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax.set_xticks(positions, labels)
        ax.set_ylabel(unit)
        ax.margins(y=0.15)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if reference is not None:
        ax.legend()
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title)
    return _finish(fig, created)


def size_histogram(
    sizes,
    *,
    bins: int | Sequence[float] = 30,
    threshold: float | None = None,
    log: bool = True,
    ax=None,
    title: str | None = None,
    xlabel: str = "face size (shorter side of the box, px)",
    figsize: tuple[float, float] = (7, 3.6),
):
    """A histogram of face sizes (e.g. ``dataset.face_sizes()``), with an optional threshold line.

    The threshold line is annotated with the fraction of faces strictly below it. ``log=True`` uses
    logarithmic bins, which suits sizes spanning 10 px to 2,000 px.

    >>> fig = size_histogram([20, 35, 50, 80, 400], threshold=50)
    """
    sizes = np.asarray(sizes, dtype=np.float64).ravel()
    if sizes.size == 0:
        raise ValueError("no sizes to draw (the dataset has no mapped faces?).")
    if not np.isfinite(sizes).all() or (sizes <= 0).any():
        raise ValueError("sizes must be positive, finite numbers of pixels.")
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    fig, ax, created = _axes(ax, figsize)
    if log and isinstance(bins, (int, np.integer)):
        lo, hi = sizes.min(), sizes.max()
        edges = np.geomspace(max(lo, 1.0) * 0.95, hi * 1.05 + 1e-9, int(bins) + 1)
        ax.hist(sizes, bins=edges, color="#607d8b")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if str(f"{v:g}")[0] in "25" else ""))
    else:
        ax.hist(sizes, bins=bins, color="#607d8b")
    if threshold is not None:
        below = float(np.mean(sizes < threshold))
        ax.axvline(threshold, color="#c62828", linestyle="--")
        ax.text(
            threshold, ax.get_ylim()[1] * 0.95, f" {below:.0%} below {threshold:g} px", color="#c62828",
            va="top", ha="left", fontsize=9,
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("faces")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title(title or f"{sizes.size:,} faces: median {np.median(sizes):.0f} px")
    return _finish(fig, created)


def show_column_quirk(quirk, *, size: float = 4.0):
    """Draw one ``train.csv`` row read two ways (see :func:`maskedu.annotations.csv_column_quirk`) on its image:
    the header's reading on the left, the positional reading on the right, the JSON box dashed on both.
    """
    if quirk.image_path is None:
        raise ValueError(f"the image of {quirk.csv_path.name} line {quirk.line} ({quirk.row[0]}) is not on disk; pick another line.")
    from matplotlib.patches import Rectangle

    image = _as_image(quirk.image_path)
    fig, axes = new_figure((2 * size * image.shape[1] / max(image.shape[0], 1) + 0.5, size), 1, 2)
    axes = axes[0]
    readings = (
        (axes[0], quirk.by_header, "read by the header's names", CLASS_COLOURS["without_mask"]),
        (axes[1], quirk.by_position, "read by position", CLASS_COLOURS["with_mask"]),
    )
    for ax, box, title, colour in readings:
        x1, y1, x2, y2 = box
        if x2 > x1 and y2 > y1:
            show_boxes(image, [box], [""], ax=ax, title=title, colors=[colour], linewidth=2.5)
        else:
            show_boxes(image, [], ax=ax, title=f"{title}: an inverted box, nothing to draw")
        if quirk.json_box is not None:
            jx1, jy1, jx2, jy2 = quirk.json_box
            ax.add_patch(Rectangle((jx1, jy1), jx2 - jx1, jy2 - jy1, fill=False, edgecolor="white", linestyle="--", linewidth=1.2))
    fig.suptitle(f"{quirk.row[0]}: dashed = the JSON BoundingBox", fontsize=10)
    return _finish(fig, True)
