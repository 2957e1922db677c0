"""An attack on the whole photo-to-label pipeline: change few pixels of the *photo* so that
:func:`maskedu.detect.detect_masks` says something else about one face.

Notebooks 04-05 attack the 50 x 50 crop the classifier sees. A user gives ``detect_masks`` a photo: the
detector finds the face, the crop is cut with a margin and resized to 50 x 50, and only then does the
classifier judge it. :func:`photo_attack` puts all of that in the loop, black-box:

* ``goal="flip"``: the face is still found, with another label;
* ``goal="evade"``: the face is no longer found (no detection with IoU >= 0.4 with its box).

One *query* is one run of the whole pipeline on one photo. The search is one of the crop attacks, reused
as they are: :func:`~maskedu.attack.one_pixel_attack` (scipy's differential evolution, ``method="de"``) or
:func:`~maskedu.attack.sparse_attack` (greedy random search, ``method="sparse"``), given a scoring
function that runs the pipeline instead of the bare classifier.

Where the pixels may go: inside the face's crop region (its box grown by the crop margin, made square),
the only pixels the classifier ever sees. A pixel further away reaches the label only by moving the
detector's box, so the search does not spend queries there. Each query runs the detector on the whole photo
(or, with ``context=``, on the face's neighbourhood only: faster, approximate) and crops exactly as
``detect_masks`` does, all the queries of a step in one batch; the final photo is then judged by
``detect_masks`` itself, and the result says whether the two verdicts agreed (``agreed``). Success is
``detect_masks``'s verdict.

A resize to 50 x 50 averages neighbouring photo pixels together, so a face larger than its crop needs
more changed photo pixels than the crop attack needs crop pixels: ``benchmarks/photo_attack.py`` measures
how many.

>>> from maskedu.attack import photo_attack                                  # doctest: +SKIP
>>> r = photo_attack("photo.jpg", model, face=0, pixels=20, budget=2000)    # doctest: +SKIP
>>> r.success, r.label_before, r.label_after, r.queries                      # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..common import MaskeduError, ParameterError, ParameterTypeError, check_choice, check_int
from ..oracle import needs_access
from .run import AttackResult, check_unseen_faces

__all__ = ["photo_attack", "PhotoAttackResult", "held_out_photos", "plot_photo_attack", "PHOTO_GOALS", "PHOTO_METHODS",
           "FOUND_IOU"]

PHOTO_GOALS = ("flip", "evade")
PHOTO_METHODS = ("sparse", "de")
#: A detection is the same face when its box overlaps the original with at least this IoU.
FOUND_IOU = 0.4


@dataclass
class PhotoAttackResult:
    """The outcome of :func:`photo_attack`.

    ``pixels`` are the photo pixels the attack changed, one row ``(x, y, r, g, b)`` each (the new colour),
    and ``original_values`` their colours before (``(k, 3)``): the adversarial photo differs from the
    original there and nowhere else. ``label_after`` is None when the face is no longer found.
    ``queries`` counts whole-pipeline runs on one photo each, the two ``detect_masks`` checks (before and
    after) included; ``budget`` is the most that were allowed. ``agreed`` is True when the search's own
    pipeline run on the final photo gave the same verdict as ``detect_masks``. ``crop_before`` and ``crop_after``
    are the face's crops as the classifier saw them (``crop_after`` None when the face is lost); ``rounds`` how many searches
    ran (a flip the search found but ``detect_masks`` did not confirm starts another, with a wider margin);
    ``block`` the side of the squares it changed (1: single pixels).
    """

    success: bool
    goal: str
    method: str
    box: tuple[int, int, int, int]
    box_after: tuple[int, int, int, int] | None
    label_before: str
    label_after: str | None
    confidence_before: float
    confidence_after: float | None
    pixels: np.ndarray
    original_values: np.ndarray
    queries: int
    budget: int
    agreed: bool
    stop_reason: str
    seconds: float
    original: np.ndarray = field(repr=False)
    adversarial: np.ndarray = field(repr=False)
    region: tuple[int, int, int, int] = (0, 0, 0, 0)
    crop_before: np.ndarray | None = field(default=None, repr=False)
    crop_after: np.ndarray | None = field(default=None, repr=False)
    search: AttackResult | None = field(default=None, repr=False)
    rounds: int = 1
    block: int = 1

    @property
    def n_pixels(self) -> int:
        """How many photo pixels really changed."""
        return len(self.pixels)

    def summary(self) -> str:
        verdict = "SUCCESS" if self.success else "no success"
        after = "not found" if self.label_after is None else f"{self.label_after} {self.confidence_after:.4f}"
        return (f"{verdict} ({self.goal}): {self.label_before} {self.confidence_before:.4f} -> {after} with "
                f"{self.n_pixels} photo pixel(s), {self.queries:,} of {self.budget:,} pipeline queries, "
                f"{self.seconds:.1f} s ({self.stop_reason}{'' if self.agreed else '; the search and detect_masks disagreed'}).")


class _PhotoPipeline:
    """The scoring function the crop attacks query: search-region images in, two class scores per image out.

    Each image is pasted into the face's neighbourhood, the detector runs on all of them in one batch, the
    face is the detection overlapping the original box most (IoU >= :data:`FOUND_IOU`), and it is cropped
    exactly as ``detect_masks`` crops (from the whole photo where the crop reaches past the neighbourhood).

    ``goal="flip"``: the classifier's logits for that crop (a face that is no longer found scores as the
    clean face: it has no label to flip). ``goal="evade"``: scores (found, not found), found leading by
    the best matching detection's score as a logit, and losing (-1) when none matches.
    """

    def __init__(self, photo, box, region, window, classifier, detector, size, margin, goal, clean_logits):
        self.photo, self.box, self.region, self.window = photo, box, region, window
        self.classifier, self.detector, self.size, self.margin, self.goal = classifier, detector, size, margin, goal
        self.clean_logits = clean_logits
        wx0, wy0, wx1, wy1 = window
        self.base = photo[wy0:wy1, wx0:wx1]
        self.queries = 0
        self.lost = 0  # pipeline runs in which the face was not found
        self.label = int(np.argmax(clean_logits))
        self.kappa = 0.0  # "flip": the true class's logit is raised by this much (a margin past the boundary)

    def windows(self, batch: np.ndarray) -> np.ndarray:
        rx0, ry0, rx1, ry1 = self.region
        wx0, wy0 = self.window[:2]
        out = np.repeat(self.base[None], len(batch), axis=0)
        out[:, ry0 - wy0:ry1 - wy0, rx0 - wx0:rx1 - wx0] = batch
        return out

    def matched(self, faces) -> tuple[Any, float]:
        """The detection (window coordinates) overlapping the original box most, and that IoU."""
        from ..imaging import iou

        wx0, wy0 = self.window[:2]
        best, best_iou = None, 0.0
        for d in faces:
            x1, y1, x2, y2 = d.box
            o = iou((x1 + wx0, y1 + wy0, x2 + wx0, y2 + wy0), self.box)
            if o > best_iou:
                best, best_iou = d, o
        return (best, best_iou) if best_iou >= FOUND_IOU else (None, best_iou)

    def crop(self, window_image: np.ndarray, box) -> np.ndarray:
        from ..imaging import crop_box

        wx0, wy0, wx1, wy1 = self.window
        h, w = self.photo.shape[:2]
        x1, y1, x2, y2 = (float(v) for v in box)
        side = max(x2 - x1, y2 - y1) * (1 + 2 * self.margin) / 2 + 2
        cx, cy = (x1 + x2) / 2 + wx0, (y1 + y2) / 2 + wy0
        inside = ((cx - side >= wx0 or wx0 == 0) and (cy - side >= wy0 or wy0 == 0)
                  and (cx + side <= wx1 or wx1 == w) and (cy + side <= wy1 or wy1 == h))
        if inside:
            return crop_box(window_image, box, size=self.size, margin=self.margin)
        whole = self.photo.copy()
        whole[wy0:wy1, wx0:wx1] = window_image
        return crop_box(whole, (x1 + wx0, y1 + wy0, x2 + wx0, y2 + wy0), size=self.size, margin=self.margin)

    def both(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = np.asarray(batch, dtype=np.uint8)
        self.queries += len(batch)
        wins = self.windows(batch)
        found = [r.detections for r in self.detector.detect_many(list(wins))]
        # flip: one logit per class of the model (two, or three with MASKEDU_CLASSES=3); evade: face / no face
        logits = np.empty((len(batch), len(self.clean_logits) if self.goal == "flip" else 2), np.float64)
        crops, rows = [], []
        for i, faces in enumerate(found):
            d, _ = self.matched(faces)
            if d is None:
                self.lost += 1
                logits[i] = self.clean_logits if self.goal == "flip" else (-1.0, 0.0)
            elif self.goal == "flip":
                crops.append(self.crop(wins[i], d.box))
                rows.append(i)
            else:
                s = min(max(float(d.score), 1e-7), 1 - 1e-7)
                logits[i] = (max(np.log(s / (1 - s)), 0.0) + 1.0, 0.0)
        if crops:
            logits[rows] = self.classifier(np.stack(crops), what="face crops")[1]
        if self.goal == "flip":
            logits[:, self.label] += self.kappa
        z = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        return probs, logits

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.both(batch)[1]


def _square_region(box, margin: float, grow: float, width: int, height: int) -> tuple[int, int, int, int]:
    """The square crop region of ``box`` (as crop_box cuts it with ``margin``), grown by ``grow`` of its side
    on each side, clipped to the photo: (x0, y0, x1, y1) with x1, y1 exclusive."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1) * (1 + 2 * margin) * (1 + 2 * grow)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    x0, y0 = int(np.floor(cx - side / 2)) - 1, int(np.floor(cy - side / 2)) - 1
    xe, ye = int(np.ceil(cx + side / 2)) + 1, int(np.ceil(cy + side / 2)) + 1
    return max(0, x0), max(0, y0), min(width, xe), min(height, ye)


def _check_photo_unseen(model: Any, photo: Any) -> None:
    """Refuse a photo (given by its path) that the model's split record lists among its training or validation
    photos: the crop check alone misses a face cut from a training photo by another box (the annotated one)."""
    import os
    import sys
    from pathlib import Path

    if not isinstance(photo, (str, os.PathLike)):
        return
    model_module = sys.modules.get("maskedu.model")
    record_of = getattr(model_module, "_record_of", None)
    if record_of is None:
        return
    record = None
    for candidate in (model, getattr(model, "model", None)):
        if candidate is not None and record is None:
            record = record_of(candidate)
    if record is None:
        return
    photo_id = "/".join(Path(str(photo)).parts[-2:])
    parts = [part for pid, part in zip(record.photos, record.parts) if pid == photo_id]
    learned = [part for part in parts if part != "test"]
    if learned:
        from ..model import SeenFaceError

        raise SeenFaceError(f"the photo {photo_id} holds {len(learned)} face(s) the model learned from ({learned.count('train')} "
                            f"in its training part, {learned.count('validation')} in its validation part): an attack on it "
                            "is not a held-out result. Attack a photo of its test part (maskedu.model.held_out).")


def _find(faces, box):
    """(index, face) of the detection overlapping ``box`` most with IoU >= FOUND_IOU, else (None, None)."""
    from ..imaging import iou

    best, best_iou = None, FOUND_IOU
    for i, f in enumerate(faces):
        o = iou(f.box, box)
        if o >= best_iou:
            best, best_iou = i, o
    return (best, faces[best]) if best is not None else (None, None)


@needs_access("probabilities", uses="logits")
def photo_attack(
    photo: Any,
    model: Any,
    *,
    face: int | Sequence[int] = 0,
    pixels: int = 20,
    budget: int = 2000,
    goal: str = "flip",
    method: str = "sparse",
    colors: str = "extreme",
    block: int | str = 1,
    context: float | None = None,
    detector: Any = None,
    seed: int | None = 0,
) -> PhotoAttackResult:
    """Change at most ``pixels`` pixels of ``photo`` so that ``detect_masks`` flips one face's label, or
    (``goal="evade"``) no longer finds it, within ``budget`` whole-pipeline queries.

    Parameters
    ----------
    photo : anything :func:`maskedu.imaging.load_image` reads (a path, bytes, an RGB array).
    model : the classifier ``detect_masks`` uses (a Keras model or a ``maskedu.model.PredictFn``).
    face : which face: an index into ``detect_masks(photo, model)`` (most confident first) or a box
        ``(x1, y1, x2, y2)`` (the detection overlapping it most, IoU >= 0.4).
    pixels : the most photo pixels that may change (k).
    budget : the most whole-pipeline queries (one query = detector, crop, resize and classifier on one
        photo; the ``detect_masks`` checks before and after count too). A few thousand per photo.
    goal : "flip" (another label) or "evade" (the face is not found any more).
    method : "sparse" (:func:`~maskedu.attack.sparse_attack`) or "de" (:func:`~maskedu.attack.one_pixel_attack`).
    colors : "extreme" (each channel 0 or 255) or "any".
    block : change squares of ``block`` x ``block`` photo pixels instead of single pixels (``pixels`` still
        counts photo pixels: 200 pixels in 3 x 3 squares are 22 squares). ``"auto"``: the square one pixel of
        the classifier's input covers in the photo (the crop region's side over the input's side, rounded),
        so the search changes whole crop pixels, which the resize cannot average away.
    context : None (default): every query runs the detector on the whole photo, exactly as ``detect_masks``
        does. A number: only the face's neighbourhood, the crop region grown by that fraction of its side on
        each side, much faster on a large photo but approximate (MTCNN's box can move by a pixel or two), so
        ``detect_masks`` confirms each flip found and the search goes on, with a wider margin, when it does not.
    detector : the :class:`maskedu.crop.FaceDetector` (default: the one ``detect_masks`` uses).
    seed : makes the attack reproducible.

    What it reads (``photo_attack.ACCESS``, listed in :data:`maskedu.oracle.ATTACK_ACCESS`): what
    ``detect_masks`` gives, the faces' boxes and detector scores and the class probabilities; the margin is
    taken from the classifier's logits where the model has them (``USES``), as the crop searches do.

    A face the model trained or validated on is refused (:class:`maskedu.model.SeenFaceError`), checked on
    the face's crop before the first query. Returns a :class:`PhotoAttackResult`.
    """
    from ..crop.cropping import DEFAULT_MARGIN
    from ..detect import _default_detector, detect_masks
    from ..imaging import crop_box, load_image
    from ..model import class_names_of, make_predict_fn
    from .de import one_pixel_attack
    from .pixels import BlockImage, perturb
    from .scoring import Scorer
    from .settings import COLOR_CHOICES
    from .sparse import sparse_attack

    started = time.perf_counter()
    goal = check_choice("goal", goal, PHOTO_GOALS)
    method = check_choice("method", method, PHOTO_METHODS)
    colors = check_choice("colors", colors, COLOR_CHOICES)
    pixels = check_int("pixels", pixels, minimum=1)
    budget = check_int("budget", budget, minimum=10)
    if seed is not None:
        seed = check_int("seed", seed, minimum=0)
    if context is not None and (isinstance(context, bool) or not isinstance(context, (int, float))
                                or not 0 <= context <= 10):
        raise ParameterError(f"context must be a number from 0 to 10 (a fraction of the face's crop region on each "
                             f"side), got {context!r}.")
    _check_photo_unseen(model, photo)
    image = load_image(photo)
    height, width = image.shape[:2]
    detector = _default_detector() if detector is None else detector
    predict = make_predict_fn(model)
    size = predict.input_shape[:2]
    before = detect_masks(image, predict, detector=detector)
    if isinstance(face, (int, np.integer)) and not isinstance(face, bool):
        if not before.faces:
            raise MaskeduError("detect_masks finds no face in this photo, so there is no label to attack; pick a "
                               "photo in which it finds one.")
        index = check_int("face", face, minimum=0, maximum=len(before.faces) - 1)
        target_face = before.faces[index]
    elif isinstance(face, (tuple, list, np.ndarray)) and len(face) == 4:
        index, target_face = _find(before.faces, tuple(float(v) for v in face))
        if target_face is None:
            raise MaskeduError(f"detect_masks finds no face overlapping the box {tuple(face)} (IoU >= {FOUND_IOU}); "
                               f"the faces it finds are at {[f.box for f in before.faces]}.")
    else:
        raise ParameterTypeError(f"face must be an index into detect_masks's faces or a box (x1, y1, x2, y2); "
                                 f"got {face!r}.")
    box = tuple(int(v) for v in target_face.box)
    clean_crop = crop_box(image, box, size=(size[1], size[0]), margin=DEFAULT_MARGIN)
    check_unseen_faces(predict, clean_crop[None])  # before the first query of the search
    names = class_names_of(predict)  # the model's classes: two, or three (MASKEDU_CLASSES=3)
    classifier = Scorer(predict)
    clean_logits = classifier(clean_crop[None], what="the clean face crop")[1][0]
    label_index = names.index(target_face.label)
    region = _square_region(box, DEFAULT_MARGIN, 0.0, width, height)
    rx0, ry0, rx1, ry1 = region
    if isinstance(block, str) and block == "auto":
        block = max(1, int(round((rx1 - rx0) / size[1])))
    elif isinstance(block, bool) or not isinstance(block, (int, np.integer)):
        raise ParameterError(f"block must be a whole number of photo pixels (1 for single pixels) or 'auto', "
                             f"got {block!r}.")
    block = check_int("block", block, minimum=1, maximum=max(1, min(rx1 - rx0, ry1 - ry0) // 2))
    if pixels < block * block:
        raise ParameterError(f"pixels={pixels} is fewer than one {block} x {block} square; give at least "
                             f"{block * block} pixels or a smaller block.")
    if pixels > (rx1 - rx0) * (ry1 - ry0):
        raise ParameterError(f"pixels={pixels} is more than the face's crop region has ({rx1 - rx0} x {ry1 - ry0}); "
                             "use fewer.")
    used = 1  # detect_masks on the clean photo

    def pipeline_for(grow: float) -> _PhotoPipeline:
        window = _square_region(box, DEFAULT_MARGIN, grow, width, height)
        return _PhotoPipeline(image, box, region, window, classifier, detector, (size[1], size[0]), DEFAULT_MARGIN,
                              goal, clean_logits)

    # the search's pipeline must agree with detect_masks on the clean photo; if the neighbourhood alone does
    # not, the detector sees the whole photo in every query
    pipe = pipeline_for(10.0 if context is None else float(context))
    clean_region = image[ry0:ry1, rx0:rx1]
    wanted = label_index if goal == "flip" else 0
    z = pipe.both(clean_region[None])[1][0]
    if int(np.argmax(z)) != wanted and pipe.window != (0, 0, width, height):
        used += pipe.queries
        pipe = pipeline_for(10.0)
        z = pipe.both(clean_region[None])[1][0]
    used += pipe.queries
    pipe.queries = 0
    if int(np.argmax(z)) != wanted:
        raise MaskeduError(f"the attack's pipeline and detect_masks disagree on the clean photo (face {box}): "
                           "nothing it finds could be trusted. Try another detector setting or face.")

    label_arg = label_index if goal == "flip" else 0
    class_names = names if goal == "flip" else ("found", "not found")
    if budget - used - 1 < 20:
        raise ParameterError(f"budget={budget} leaves fewer than 20 queries for the search after the {used + 1} "
                             "detect_masks checks; give a few hundred or more.")

    def search_round(queries: int, round_seed) -> AttackResult:
        # with block > 1 the search sees one pixel per square (BlockImage paints it back as the square)
        target = pipe if block == 1 else BlockImage(pipe, clean_region, block)
        start = clean_region if block == 1 else target.coarse
        k = pixels // (block * block)
        if method == "sparse":
            return sparse_attack(target, start, label_arg, pixels=k, budget=queries,
                                 batch=min(50, max(1, queries // 4)), colors=colors, seed=round_seed,
                                 class_names=class_names)
        popsize = min(40, max(4, queries // 4))
        return one_pixel_attack(target, start, label_arg, pixels=k, popsize=popsize,
                                maxiter=max(0, (queries - 1) // popsize - 1), colors=colors, seed=round_seed,
                                class_names=class_names)

    # Rounds: a search, then detect_masks on the whole photo. When detect_masks does not confirm a flip the
    # search found (its detector saw only the neighbourhood, so its box, and the crop, can differ by a pixel or
    # two), search again with the rest of the budget, now asking for a wider logit margin past the boundary.
    round_ = 0
    while True:
        pipe.queries = 0
        search = search_round(budget - used - 1, None if seed is None else seed + round_)
        used += pipe.queries
        cand = np.asarray(search.pixels, dtype=np.int64).reshape(-1, 5)
        cand = (cand if block == 1 else BlockImage(pipe, clean_region, block).full_pixels(cand)).copy()
        cand[:, 0] += rx0
        cand[:, 1] += ry0
        adversarial = perturb(image, cand.reshape(1, -1))[0] if len(cand) else image.copy()
        after = detect_masks(adversarial, predict, detector=detector)
        used += 1
        _, face_after = _find(after.faces, box)
        if goal == "flip":
            success = face_after is not None and face_after.label != target_face.label
        else:
            success = face_after is None
        round_ += 1
        if success or not search.success or budget - used - 1 < 40:
            break
        pipe.kappa = max(1.0, 2 * pipe.kappa)

    # the changes really made, in photo coordinates (a pixel set to its own colour is no change)
    ys, xs = np.nonzero((adversarial != image).any(axis=2))
    changed = np.concatenate([xs[:, None], ys[:, None], adversarial[ys, xs].astype(np.int64)], axis=1)
    original_values = image[ys, xs].astype(np.int64)
    agreed = bool(search.success) == bool(success)
    if goal == "flip" and face_after is not None and success:
        agreed = agreed and search.name(search.predicted_after) == face_after.label
    reason = "success" if success else ("not confirmed by detect_masks" if search.success else search.stop_reason)
    return PhotoAttackResult(
        success=bool(success), goal=goal, method=method, box=box,
        box_after=None if face_after is None else tuple(int(v) for v in face_after.box),
        label_before=target_face.label, label_after=None if face_after is None else face_after.label,
        confidence_before=float(target_face.confidence),
        confidence_after=None if face_after is None else float(face_after.confidence),
        pixels=changed, original_values=original_values, queries=int(used), budget=budget, agreed=agreed,
        stop_reason=reason, seconds=time.perf_counter() - started, original=image, adversarial=adversarial,
        region=region, crop_before=clean_crop,
        crop_after=None if face_after is None else crop_box(adversarial, face_after.box, size=(size[1], size[0]),
                                                            margin=DEFAULT_MARGIN),
        search=search, rounds=round_, block=block)


def held_out_photos(crops: Any, model: Any) -> list[tuple[str, tuple[int, int, int, int], str]]:
    """The photos none of whose faces ``model`` learned from, one ``(path, box, label)`` per face in them.

    A photo is held out only when every face of it is in the model's test part
    (:func:`maskedu.model.held_out`): :func:`photo_attack` refuses a photo that holds any training face, since
    which detected face is which cannot be told from the photo alone.

    >>> photos = held_out_photos(crops, model)      # doctest: +SKIP
    >>> path, box, label = photos[0]                # doctest: +SKIP
    """
    from ..model import held_out

    test = held_out(crops, model)
    all_paths = [str(p) for p in crops.paths]
    test_paths = [str(p) for p in test.paths]
    whole = {p for p in set(test_paths) if test_paths.count(p) == all_paths.count(p)}
    names = list(crops.class_names)
    return [(p, tuple(int(v) for v in b), names[int(lab)]) for p, b, lab in zip(test_paths, test.boxes, test.labels)
            if p in whole and int(lab) >= 0]


def plot_photo_attack(result: PhotoAttackResult, crop_result: AttackResult | None = None):
    """The photo attack in pictures: the face's neighbourhood before and after (changed pixels circled), the
    50 x 50 crops the classifier saw before and after, and, given ``crop_result``, the crop-level attack's
    adversarial crop beside them. Returns the figure."""
    from ..plotting import new_figure

    x0, y0, x1, y1 = result.region
    panels = [("photo, around the face", result.original[y0:y1, x0:x1], None, (0, 0)),
              (f"after: {result.n_pixels} photo px", result.adversarial[y0:y1, x0:x1], result.pixels, (x0, y0)),
              (f"crop seen: {result.label_before}", result.crop_before, None, (0, 0)),
              ("crop seen after: " + (result.label_after or "face not found"), result.crop_after, None, (0, 0))]
    if crop_result is not None:
        panels.append((f"crop attack: {crop_result.name(crop_result.predicted_after)}, {len(crop_result.pixels)} px",
                       crop_result.adversarial, crop_result.pixels, (0, 0)))
    fig, axes = new_figure((2.6 * len(panels), 2.9), 1, len(panels))
    for ax, (title, img, px, (dx, dy)) in zip(axes[0], panels):
        ax.axis("off")
        ax.set_title(title, fontsize=9)
        if img is None:
            continue
        ax.imshow(img)
        if px is not None and len(px):
            ax.scatter(px[:, 0] - dx, px[:, 1] - dy, s=60, facecolors="none", edgecolors="#E69F00", linewidths=1.2)
    fig.suptitle(("SUCCESS: " if result.success else "no success: ") + f"{result.goal}, {result.queries:,} pipeline "
                 "queries", fontsize=10)
    fig.tight_layout()
    return fig

