"""03: the whole job: a photo in, every face out with its box, mask label and confidence.

>>> from maskedu.detect import detect_masks, draw_detections     # doctest: +SKIP
>>> result = detect_masks("photo.jpg", model)                       # doctest: +SKIP
>>> result[0].label, result[0].confidence, result[0].box            # doctest: +SKIP
('with_mask', 0.98, (120, 40, 210, 150))
>>> draw_detections("photo.jpg", result)                            # doctest: +SKIP

The rule for what comes back: one :class:`ImageResult` per image. Pass one image and get its
``ImageResult`` (a list-like of its faces); pass a folder or a list and get a list of them, in order.

Faces are found by :class:`maskedu.crop.FaceDetector` (MTCNN, photos shrunk to a sensible size first),
cropped exactly as the training crops were (:func:`maskedu.imaging.crop_box` with the crop stage's
margin), and classified together: one model call per batch of photos, not one per face.

In a folder or a list, a file that cannot be read costs only its own result: it comes back with its
``error`` and no faces, and one warning names every such file. A single image that cannot be read raises.
"""

from __future__ import annotations

import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .common import ParameterError, ParameterTypeError, check_int, check_number
from .crop.cropping import DEFAULT_MARGIN
from .crop.faces import Face
from .imaging import ImageError, crop_box, is_image_file, load_image

__all__ = ["Face", "FaceResult", "ImageResult", "detect_masks", "draw_detections"]

#: A labelled face: the package's one face type (:class:`maskedu.crop.Face`) with ``label``,
#: ``confidence`` and ``probs`` set. The name is kept for code written before the face types were merged.
FaceResult = Face


@dataclass
class ImageResult:
    """The faces of one photo (iterable like a list of :class:`~maskedu.crop.Face`), its source and size.

    ``error`` is None for a photo that was read. For one that could not be, it is the reason as a string
    (the :class:`~maskedu.imaging.ImageError`'s message, naming the file): a plain string prints, compares
    and pickles like the rest of the result. Such a result has no faces, size 0 x 0 and ``ok`` False.
    """

    source: str
    faces: list[Face]
    width: int
    height: int
    seconds: float = 0.0
    image: np.ndarray | None = field(default=None, repr=False)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the photo was read (whether or not it shows a face)."""
        return self.error is None

    def __iter__(self):
        return iter(self.faces)

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, i):
        return self.faces[i]


def _expand(image_or_paths) -> tuple[list[Any], bool]:
    """(items, single): a folder becomes its image files; a list stays a list; anything else is one image."""
    if isinstance(image_or_paths, (str, os.PathLike)):
        path = Path(image_or_paths)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p))
            if not files:
                raise ImageError(path, "is a folder with no image files in it.")
            return files, False
        return [image_or_paths], True
    if isinstance(image_or_paths, (bytes, bytearray, np.ndarray)):
        return [image_or_paths], True
    if isinstance(image_or_paths, Sequence) and not isinstance(image_or_paths, str):
        items = list(image_or_paths)
        for i, item in enumerate(items):  # a wrong type is a mistake in the call, not a bad file: raise now
            if not isinstance(item, (str, os.PathLike, bytes, bytearray, np.ndarray)):
                raise ParameterTypeError(f"detect_masks: item {i} of the list is a {type(item).__name__}; each "
                                         "must be an image path, the file's bytes or an RGB array.")
        return items, False
    raise ParameterTypeError(f"detect_masks takes an image (path, bytes or RGB array), a folder or a list of them; "
                             f"got {type(image_or_paths).__name__}.")


def _load(item) -> tuple[np.ndarray | None, ImageError | None]:
    """(image, None), or (None, the ImageError) for a file that cannot be read: one bad file costs only itself."""
    try:
        return load_image(item), None
    except ImageError as exc:
        return None, exc


def _name(item, i: int) -> str:
    if isinstance(item, (str, os.PathLike)):
        return str(item)
    if isinstance(item, np.ndarray):
        return f"<array {i} {item.shape}>"
    return f"<bytes {i}>"


def detect_masks(
    image_or_paths,
    model,
    *,
    detector=None,
    crowd: bool = False,
    margin: float | None = None,
    min_score: float = 0.0,
    batch_size: int = 64,
    class_names: Sequence[str] | None = None,
    keep_images: bool = False,
):
    """Find every face and say whether it wears a mask.

    ``image_or_paths``: one image (a path, the file's bytes, or an RGB/greyscale/RGBA array: anything
    :func:`maskedu.imaging.load_image` reads, with its clear :class:`~maskedu.imaging.ImageError` for a
    missing or corrupt file), a folder of images, or a list of those.

    Returns one :class:`ImageResult` per image: for one image its ``ImageResult`` (it iterates, indexes and
    has a length like the list of its :class:`~maskedu.crop.Face` s, most confident detection first); for a
    folder or a list, a list of them, in order. ``model`` is a Keras model from
    :func:`maskedu.model.build_resnet` or a :class:`maskedu.model.PredictFn`. ``detector`` defaults to a
    shared :class:`maskedu.crop.FaceDetector`, or with ``crowd=True`` to :meth:`~maskedu.crop.FaceDetector.crowd`
    (group photos: more of their small faces found, at more time and more boxes that match no face); ``margin`` to the crop stage's (:data:`maskedu.crop.DEFAULT_MARGIN`); faces the detector scores
    below ``min_score`` are left out. Photos go to the detector and the classifier ``batch_size`` at a time:
    one classifier call per batch for all its faces.

    A folder or list keeps going past a file that cannot be read: its result has ``error`` set (see
    :class:`ImageResult`) and one warning at the end names how many and which. A single image raises the
    :class:`~maskedu.imaging.ImageError` instead. A model with another number of outputs than
    ``class_names``, or one whose scores are NaN or infinite, raises :class:`maskedu.model.ModelError`.
    ``class_names`` defaults to the model's own (:func:`maskedu.model.class_names_of`: a three-class model,
    ``MASKEDU_CLASSES=3``, labels faces ``"mask_worn_incorrectly"`` too).
    """
    from .model import ModelError, class_names_of, make_predict_fn

    items, single = _expand(image_or_paths)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    min_score = check_number("min_score", min_score, minimum=0.0, maximum=1.0)
    margin = DEFAULT_MARGIN if margin is None else check_number("margin", margin, minimum=0.0, maximum=2.0)
    predict = make_predict_fn(model)
    class_names = class_names_of(predict) if class_names is None else tuple(class_names)
    n_out = getattr(predict, "n_classes", None)
    if n_out is not None and n_out != len(class_names):
        raise ModelError(f"the model {predict.model.name!r} gives {n_out} class scores per face but class_names has "
                         f"{len(class_names)} names {class_names}: pass class_names with one name per output.")
    if not isinstance(crowd, bool):
        raise ParameterTypeError(f"crowd must be True or False, got {crowd!r}.")
    if crowd and detector is not None:
        raise ParameterError("pass crowd=True or a detector, not both: crowd=True picks FaceDetector.crowd() "
                             "as the detector (pass detector=FaceDetector.crowd(...) to change its settings).")
    detector = _default_detector("crowd" if crowd else "default") if detector is None else detector
    size = predict.input_shape[:2]
    results: list[ImageResult] = []
    # photos are decoded two at a time: PIL decodes with Python's lock released (and load_image changes no
    # process-wide setting, so threads are safe)
    with ThreadPoolExecutor(2, thread_name_prefix="maskedu-load") as loader:
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            t0 = time.perf_counter()
            loaded = list(loader.map(_load, chunk))  # (image, None), or (None, why) for a file it cannot read
            if single and loaded[0][0] is None:
                raise loaded[0][1]
            images = [img for img, _ in loaded]
            readable = [img for img in images if img is not None]
            if not readable:
                found = []
            elif hasattr(detector, "detect_many"):
                found = [r.detections for r in detector.detect_many(readable)]
            else:
                found = [detector.detect(img) for img in readable]
            found_in_order = iter(found)
            crops, owners, dets = [], [], []
            for k, img in enumerate(images):
                if img is None:
                    continue
                for d in next(found_in_order):
                    if d.score < min_score:
                        continue
                    crops.append(crop_box(img, d.box, size=(size[1], size[0]), margin=margin))  # (width, height)
                    owners.append(k)
                    dets.append(d)
            probs = predict(np.stack(crops)) if crops else np.zeros((0, len(class_names)), np.float32)
            finite = np.isfinite(probs).all(axis=1)
            if not finite.all():
                where = sorted({_name(chunk[k], start + k) for k, ok in zip(owners, finite) if not ok})
                raise ModelError(f"the model {predict.model.name!r} gave NaN or infinite class scores for "
                                 f"{int((~finite).sum())} of {len(probs)} faces (in {', '.join(where[:5])}"
                                 f"{' ...' if len(where) > 5 else ''}): its weights are probably NaN, as after a "
                                 "training that diverged. Train it again or load a good copy.")
            per_image: list[list[Face]] = [[] for _ in chunk]
            for d, k, p in zip(dets, owners, probs):
                c = int(p.argmax())
                face = Face(box=tuple(int(v) for v in d.box), score=float(d.score), keypoints=dict(d.keypoints),
                            raw_box=d.raw_box, clipped=d.clipped, attempt=d.attempt)
                per_image[k].append(face.with_label(class_names[c], p, class_names))
            share = (time.perf_counter() - t0) / len(chunk)
            for k, (item, (img, problem)) in enumerate(zip(chunk, loaded)):
                height, width = img.shape[:2] if img is not None else (0, 0)
                results.append(ImageResult(_name(item, start + k), per_image[k], width, height, share,
                                           img if keep_images else None, None if problem is None else str(problem)))
    if single:
        return results[0]
    failed = [r.source for r in results if not r.ok]
    if failed:
        shown = ", ".join(failed[:10]) + (f" and {len(failed) - 10} more" if len(failed) > 10 else "")
        warnings.warn(f"detect_masks: {len(failed)} of {len(results)} images could not be read and have no faces "
                      f"(each result's .error says why): {shown}", stacklevel=2)
    return results


_DETECTOR: dict[str, Any] = {}


def _default_detector(kind: str = "default"):
    if kind not in _DETECTOR:
        from .crop import FaceDetector

        _DETECTOR[kind] = FaceDetector.crowd() if kind == "crowd" else FaceDetector()
    return _DETECTOR[kind]


def draw_detections(image, results, ax=None, *, title: str | None = None):
    """Draw each face's box on the photo in its class colour, labelled with its class and confidence;
    returns the figure (a new one, or ``ax``'s).

    ``image`` is anything :func:`~maskedu.imaging.load_image` reads; ``results`` what :func:`detect_masks`
    returned for it (an :class:`ImageResult`, or a list of labelled faces).
    """
    from .plotting import colour_for, show_boxes

    img = load_image(image)
    faces = list(results)
    lw = max(1.5, img.shape[1] / 300)
    title = title if title is not None else f"{len(faces)} face{'s' if len(faces) != 1 else ''}"
    return show_boxes(img, [f.box for f in faces], [f"{f.label} {f.confidence:.0%}" for f in faces], ax=ax,
                      title=title, colors=[colour_for(f.label) for f in faces], linewidth=lw,
                      figsize=(5, 5 * img.shape[0] / max(img.shape[1], 1)))
