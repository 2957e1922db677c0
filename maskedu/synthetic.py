"""Synthetic masked faces for training: paint a mask on unmasked training photos (the MaskTheFace technique).

A classifier trained on a few hundred web photos can learn *photo style* (studio portraits without
masks, phone snapshots with masks) instead of *a mask over nose and mouth*. Painting a mask, placed
from MTCNN's five landmarks by :func:`maskedu.sample.draw_mask`, on each unmasked training face and
adding the result as an extra ``with_mask`` crop gives pairs of crops that differ only in the mask.

Use it on the TRAINING crops only, after the train/test split: a synthetic crop of a test photo would
leak that photo into training. Each synthetic crop keeps its photo's path, so :func:`maskedu.model.train`
(``group_by_photo=True``) keeps it on the same side of its validation split as its unmasked original.

>>> from maskedu.model import train, build_resnet               # doctest: +SKIP
>>> more = add_synthetic_masks(train_crops, seed=0)             # doctest: +SKIP
>>> result = train(build_resnet(), more)                        # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .common import check_choice, check_int, check_number
from .imaging import box_is_valid, crop_box, iou_matrix, load_image
from .sample import _MASK_COLOURS, MASK_STYLES, draw_mask

__all__ = ["masked_face_crop", "add_synthetic_masks"]


def masked_face_crop(
    image: np.ndarray,
    box,
    keypoints,
    *,
    style: str = "surgical",
    color: tuple[int, int, int] | None = None,
    size: int = 50,
    margin: float = 0.1,
) -> np.ndarray:
    """One face's crop with a mask painted over its nose and mouth.

    ``box`` (x1, y1, x2, y2) and ``keypoints`` (MTCNN's dict or a (5, 2) array) come from a
    :class:`maskedu.crop.Detection`; the mask is drawn on the whole photo by :func:`maskedu.sample.draw_mask`
    (``style``, ``color``), then cut out with :func:`maskedu.imaging.crop_box` exactly like the crop stage
    does (``size`` px square, grown by ``margin``), so the crop matches the unmasked one except for the mask.

    >>> from skimage import data                                   # doctest: +SKIP
    >>> face = FaceDetector().detect(data.astronaut())[0]          # doctest: +SKIP
    >>> masked_face_crop(data.astronaut(), face.box, face.keypoints, style="cloth").shape  # doctest: +SKIP
    (50, 50, 3)
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be an H x W x 3 RGB array, got shape {img.shape}.")
    if not box_is_valid(box):
        raise ValueError(f"box must be (x1, y1, x2, y2) with x2 > x1 and y2 > y1, got {box!r}.")
    size = check_int("size", size, minimum=8)
    margin = check_number("margin", margin, minimum=0.0, maximum=1.0)
    masked = draw_mask(img, keypoints, style=style, color=color)
    return crop_box(masked, box, size=size, margin=margin)


def add_synthetic_masks(
    crops,
    *,
    from_class: str = "without_mask",
    to_class: str = "with_mask",
    styles=MASK_STYLES,
    seed: int = 0,
    margin: float = 0.1,
    detector=None,
):
    """The training ``crops`` plus one synthetic ``to_class`` crop per ``from_class`` photo the detector finds.

    ``crops`` is a :class:`maskedu.crop.Crops` of TRAINING photos only (never pass test photos). For every
    photo with a detector crop of class ``from_class``, the photo is loaded again, MTCNN
    (``detector``, default a new :class:`maskedu.crop.FaceDetector`) gives the face's five landmarks -- the
    detection that overlaps the existing crop's box most -- and :func:`masked_face_crop` paints a mask in a
    random style from ``styles`` and a random usual colour of that style (``seed``). Crop size and
    ``margin`` (0.1, the crop stage's default) match the existing crops. Fallback crops (no face found) and
    photos where the detector now finds nothing get no synthetic crop.

    Returns a new ``Crops``: the originals first (unchanged, unmasked ones stay ``from_class``), then the
    synthetic ones, labelled ``to_class``, with the same path as their photo and ``origin == "synthetic"``.

    >>> more = add_synthetic_masks(train_crops, seed=0)            # doctest: +SKIP
    >>> more.class_counts(), (more.origin == "synthetic").sum()    # doctest: +SKIP
    """
    if not all(hasattr(crops, a) for a in ("images", "labels", "paths", "boxes", "origin", "class_names")):
        raise TypeError(f"crops must be a maskedu.crop.Crops (with paths and boxes), got {type(crops).__name__}.")
    names = tuple(crops.class_names)
    check_choice("from_class", from_class, names)
    check_choice("to_class", to_class, names)
    if from_class == to_class:
        raise ValueError("from_class and to_class must differ.")
    styles = tuple([styles] if isinstance(styles, str) else styles)
    if not styles:
        raise ValueError("styles must name at least one mask style.")
    for s in styles:
        check_choice("styles", s, MASK_STYLES)
    seed = check_int("seed", seed, minimum=0)
    margin = check_number("margin", margin, minimum=0.0, maximum=1.0)
    if detector is None:
        from .crop import FaceDetector

        detector = FaceDetector()

    src, dst = names.index(from_class), names.index(to_class)
    size = int(crops.images.shape[1]) if len(crops) else 50
    chosen: dict[str, int] = {}  # one crop per photo: its most confident detector crop
    for i in np.flatnonzero((np.asarray(crops.labels) == src) & (np.asarray(crops.origin) == "detector")):
        p = str(crops.paths[i])
        j = chosen.get(p)
        if j is None or float(np.nan_to_num(crops.scores[i], nan=-1)) > float(np.nan_to_num(crops.scores[j], nan=-1)):
            chosen[p] = int(i)
    rng = np.random.default_rng(seed)
    images, paths, boxes, scores = [], [], [], []
    for p, i in chosen.items():
        style = styles[int(rng.integers(len(styles)))]
        colours = _MASK_COLOURS[style]
        colour = colours[int(rng.integers(len(colours)))]
        image = load_image(p)
        found = detector.detect(image)
        if not found:
            continue
        box = np.asarray(crops.boxes[i], dtype=np.float64)
        overlap = iou_matrix(box[None], np.array([d.box for d in found], dtype=np.float64))[0]
        face = found[int(np.argmax(overlap))]
        images.append(masked_face_crop(image, face.box, face.keypoints, style=style, color=colour, size=size,
                                       margin=margin))
        paths.append(p)
        boxes.append(face.box)
        scores.append(face.score)
    n = len(images)
    if n == 0:
        return replace(crops, images=crops.images.copy())
    return replace(
        crops,
        images=np.concatenate([crops.images, np.stack(images).astype(crops.images.dtype)]),
        labels=np.concatenate([crops.labels, np.full(n, dst, dtype=np.asarray(crops.labels).dtype)]),
        paths=np.concatenate([np.asarray(crops.paths), np.array(paths, dtype=np.asarray(crops.paths).dtype)]),
        boxes=np.concatenate([crops.boxes, np.array(boxes).astype(crops.boxes.dtype).reshape(n, 4)]),
        scores=np.concatenate([crops.scores, np.array(scores).astype(crops.scores.dtype)]),
        ious=np.concatenate([crops.ious, np.full(n, np.nan, dtype=crops.ious.dtype)]),
        origin=np.concatenate([np.asarray(crops.origin), np.full(n, "synthetic")]),
    )
