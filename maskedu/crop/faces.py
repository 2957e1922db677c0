"""One face, as every stage sees it: a box, the detector's score, MTCNN's five landmarks and, once a
model has looked at it, a label and its probability.

The detector (:class:`maskedu.crop.FaceDetector`), :func:`maskedu.detect.detect_masks` and the mask
pattern stage (:func:`maskedu.pattern.find_faces`) all return :class:`Face` objects.

>>> face = Face(box=(10, 20, 60, 80), score=0.99)
>>> face.width, face.height, face.label is None
(50, 60, True)
>>> face.with_label("with_mask", (0.9, 0.1)).confidence
0.9
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from ..dataset import KEYPOINT_NAMES  # MTCNN's five landmarks, defined with the other shared names

__all__ = ["KEYPOINT_NAMES", "Face"]



@dataclass(frozen=True)
class Face:
    """One face in a photo's pixels.

    ``box`` is ``(x1, y1, x2, y2)``, whole pixels clipped to the image (x2/y2 exclusive); ``score`` the
    detector's confidence; ``keypoints`` maps each of :data:`KEYPOINT_NAMES` to ``(x, y)`` (empty for a
    detector without landmarks). From the detector: ``raw_box`` is MTCNN's box before clipping
    (``clipped`` tells whether clipping changed it) and ``attempt`` which look found it (1 the first
    pass, 2 the second look, 3 the close-up look, whose ``score`` is the views' agreement). From a
    classifier: ``label``, its probability ``confidence`` and every class's ``probs``.
    """

    box: tuple[int, int, int, int]
    score: float = float("nan")
    keypoints: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    raw_box: tuple[float, float, float, float] | None = None
    clipped: bool = False
    attempt: int = 1
    label: str | None = None
    confidence: float | None = None
    probs: tuple[float, ...] = ()

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def masked(self) -> bool:
        """True when a classifier labelled the face ``with_mask``."""
        return self.label == "with_mask"

    def point(self, name: str) -> tuple[float, float]:
        """One landmark by name (one of :data:`KEYPOINT_NAMES`)."""
        if name not in self.keypoints:
            raise KeyError(f"this face has no {name!r} landmark (it has {sorted(self.keypoints) or 'none'}); "
                           "faces from MTCNN have all five.")
        return self.keypoints[name]

    left_eye = property(lambda self: self.point("left_eye"))
    right_eye = property(lambda self: self.point("right_eye"))
    nose = property(lambda self: self.point("nose"))
    mouth_left = property(lambda self: self.point("mouth_left"))
    mouth_right = property(lambda self: self.point("mouth_right"))

    def with_label(self, label: str, probs: Sequence[float], class_names: Sequence[str] | None = None) -> "Face":
        """This face with a classifier's verdict: ``label``, its probability and all class ``probs``
        (in ``class_names`` order; by default the label's probability is the largest)."""
        probs = tuple(float(p) for p in probs)
        confidence = probs[list(class_names).index(label)] if class_names is not None else max(probs)
        return dataclasses.replace(self, label=label, confidence=confidence, probs=probs)

    @staticmethod
    def from_keypoints(box, keypoints: Mapping, score: float = float("nan")) -> "Face":
        """A face from a box and MTCNN's landmarks, with the eyes and mouth corners put in image-left,
        image-right order (MTCNN names them from the person's side, which a mirrored face swaps)."""
        missing = [k for k in KEYPOINT_NAMES if k not in keypoints]
        if missing:
            raise ValueError(f"keypoints lack {missing}; pass MTCNN's five landmarks ({', '.join(KEYPOINT_NAMES)}).")
        p = {k: (float(keypoints[k][0]), float(keypoints[k][1])) for k in KEYPOINT_NAMES}
        eyes = sorted([p["left_eye"], p["right_eye"]])
        mouth = sorted([p["mouth_left"], p["mouth_right"]])
        points = dict(zip(KEYPOINT_NAMES, (eyes[0], eyes[1], p["nose"], mouth[0], mouth[1])))
        return Face(box=tuple(int(v) for v in box), score=float(score), keypoints=points)

    def scaled(self, factor: float, offset: tuple[float, float] = (0.0, 0.0)) -> "Face":
        """This face after ``p -> (p - offset) * factor`` (a crop, then a resize): box and landmarks."""
        ox, oy = offset
        x1, y1, x2, y2 = self.box
        box = (int(round((x1 - ox) * factor)), int(round((y1 - oy) * factor)),
               int(round((x2 - ox) * factor)), int(round((y2 - oy) * factor)))
        points = {k: ((p[0] - ox) * factor, (p[1] - oy) * factor) for k, p in self.keypoints.items()}
        return dataclasses.replace(self, box=box, keypoints=points, raw_box=None)
