"""The crop stage's figures: detections on a photo, the close-up look's views, a gallery of crops, the
found rates of several runs and the second look's trade-off.

Each returns a :class:`matplotlib.figure.Figure` built without pyplot (so a cell that returns it shows it
once), or, given ``ax=``, draws into that axes and returns its figure. Boxes are drawn by
:func:`maskedu.plotting.show_boxes`, the package's one box-drawing function.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..annotations import CLASS_NAMES
from ..imaging import load_image
from ..plotting import colour_for, figure_and_axes, new_figure, show_boxes
from .detector import CloseUpLook, DetectionResult
from .faces import Face
from .results import CropReport, Crops

__all__ = ["plot_detections", "plot_close_up_look", "plot_crop_gallery", "plot_found_rates", "plot_tradeoff"]

_LOOK = {1: "", 2: " (2nd look)", 3: " (close-up look)"}


def plot_detections(image, detections: Sequence[Face] | DetectionResult, *, annotations: Sequence = (), ax=None,
                    title: str | None = None):
    """Draw detections (yellow boxes, scores and the five keypoints) and, dashed in their class colour, any
    annotated boxes (:class:`~maskedu.annotations.FaceBox` es or ``(x1, y1, x2, y2)`` tuples)."""
    if isinstance(detections, DetectionResult):
        detections = detections.detections
    img = load_image(image)
    boxes, labels, colours, styles, points = [], [], [], [], []
    for box in annotations:
        boxes.append(box.xyxy if hasattr(box, "xyxy") else tuple(box))
        labels.append("")
        colours.append(colour_for(getattr(box, "label", None)))
        styles.append("--")
        points.append(None)
    for d in detections:
        boxes.append(d.box)
        labels.append(f"{d.score:.2f}" + _LOOK.get(d.attempt, ""))
        colours.append("#ffeb3b")
        styles.append("-")
        points.append(d.keypoints)
    return show_boxes(img, boxes, labels, ax=ax, title=title, colors=colours, linestyles=styles, keypoints=points,
                      fontsize=7)


def plot_close_up_look(look: CloseUpLook, *, image=None, size: float = 1.9):
    """Draw a :class:`~maskedu.crop.CloseUpLook`: every view as MTCNN saw it with its boxes and ONet scores,
    then the photo with the accepted box and its agreement (pass the photo as ``image`` for the last panel).

    >>> look = FaceDetector().close_up_look(photo)      # doctest: +SKIP
    >>> plot_close_up_look(look, image=photo)            # doctest: +SKIP
    """
    n = len(look.pictures) + (image is not None)
    fig, axes = new_figure((size * n, size * 1.25), 1, n)
    for ax, view, picture, boxes, scores in zip(axes[0], look.views, look.pictures, look.view_boxes, look.view_scores):
        colours = ["#0072B2" if sc >= 0.8 else "#E69F00" if sc >= 0.5 else "#D55E00" for sc in scores]
        frame = f"frame {view.top:g}/{view.sides:g}/{view.bottom:g}" + (", mirrored" if view.mirror else "")
        show_boxes(picture, [tuple(b) for b in boxes], [f"{sc:.2f}" for sc in scores], ax=ax, colors=colours,
                   linewidth=1.2, fontsize=6,
                   title=f"{frame}\n{view.side}px, best {scores.max() if len(scores) else 0:.2f}")
        ax.title.set_fontsize(7)
    if image is not None:
        ax = axes[0][-1]
        d = look.detection
        if d is not None:
            title = f"accepted: agreement {d.score:.2f}\n(needs {look.min_agreement:.2f})"
        else:
            best = float(look.agreement.max()) if len(look.agreement) else 0.0
            title = f"nothing accepted: best agreement {best:.2f}\n(needs {look.min_agreement:.2f})"
        show_boxes(load_image(image), [] if d is None else [d.box], None if d is None else [""], ax=ax,
                   colors=None if d is None else ["#1565c0"], title=title)
        ax.title.set_fontsize(7)
    fig.tight_layout()
    return fig


def plot_crop_gallery(crops: Crops, *, per_class: int = 8, seed: int = 0, size: float = 1.2):
    """A row of random crops per class, each titled by where it came from (detector score, annotation or fallback)."""
    rng = np.random.default_rng(seed)
    rows = [(i, c) for i, c in enumerate(crops.class_names) if (crops.labels == i).any()]
    if not rows:
        raise ValueError("there are no labelled crops to show; print(crops.report) says why.")
    fig, axes = new_figure((size * per_class, size * 1.25 * len(rows)), len(rows), per_class)
    for r, (i, c) in enumerate(rows):
        idx = np.flatnonzero(crops.labels == i)
        pick = rng.choice(idx, size=min(per_class, len(idx)), replace=False)
        for k, ax in enumerate(axes[r]):
            ax.set_axis_off()
            if k >= len(pick):
                continue
            j = pick[k]
            ax.imshow(crops.images[j])
            what = crops.origin[j]
            ax.set_title(f"{crops.scores[j]:.2f}" if what == "detector" else what, fontsize=7)
        axes[r][0].text(-0.1, 0.5, c, transform=axes[r][0].transAxes, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def plot_found_rates(reports: dict[str, CropReport], *, ax=None):
    """Bars of the detector's found rate per class for several runs (e.g. the paper's MTCNN and ours)."""
    fig, ax, created = figure_and_axes(ax, (7, 3.6))
    names = list(reports)
    # the paper's two classes, then any other the runs counted (the third with classes=3), in label order
    classes = list(dict.fromkeys([*CLASS_NAMES, *(c for r in reports.values() for c in r.per_class)]))
    width = 0.8 / max(1, len(names))
    palette = ["#90a4ae", "#1565c0", "#ef6c00", "#6a1b9a"]
    for j, name in enumerate(names):
        rates = reports[name].found_rate()
        values = [100 * rates.get(c, float("nan")) for c in classes]
        bars = ax.bar(np.arange(len(classes)) + (j - (len(names) - 1) / 2) * width, values, width,
                      label=name, color=palette[j % len(palette)])
        ax.bar_label(bars, labels=[f"{v:.0f}%" for v in values], fontsize=8, padding=2)
    ax.set_xticks(np.arange(len(classes)), classes)
    ax.set_ylabel("found by the detector (%)")
    ax.set_ylim(0, 110)
    ax.legend(fontsize=8, loc="lower right")
    if created:
        fig.tight_layout()
    return fig


def plot_tradeoff(tradeoff, *, budget: float | None = None, ax=None):
    """A :class:`~maskedu.crop.TradeOff`'s curves against the second look's ONet threshold, with the
    detector's setting and an optional false-alarm ``budget``."""
    fig, ax, created = figure_and_axes(ax, (7, 4))
    for c, rate in tradeoff.found_rate.items():
        ax.plot(tradeoff.thresholds, 100 * rate, "o-", color=colour_for(c), label=f"found: {c} (n={tradeoff.counts.get(c, 0)})")
    ax.plot(tradeoff.thresholds, 100 * tradeoff.false_positive_rate, "s--", color="#455a64",
            label=f"false alarms on face-free pictures (n={tradeoff.counts.get('background', 0)})")
    ax.axvline(tradeoff.current, color="#9e9e9e", linestyle=":", label=f"FaceDetector() default ({tradeoff.current:.2f})")
    if budget is not None:
        ax.axhline(100 * budget, color="#ef6c00", linestyle="-.", label=f"false-alarm budget {100 * budget:.0f}%")
    ax.set_xlabel("ONet threshold of the second look")
    ax.set_ylabel("%")
    ax.set_ylim(-2, 102)
    ax.legend(fontsize=8, loc="center left")
    ax.grid(alpha=0.3)
    if created:
        fig.tight_layout()
    return fig
