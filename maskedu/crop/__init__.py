"""Stage 02: find the faces with MTCNN and cut them out, fast, cached, and honest about what it misses.

One call does the sensible thing::

    from maskedu.crop import crop_faces
    crops = crop_faces(dataset)          # 50x50 face crops, labels, boxes, scores, where each came from
    crops.images.shape                   # (N, 50, 50, 3) uint8
    print(crops.report)                  # missed faces, unmatched detections, unreadable files, timing

The modules, in the order the notebook meets them:

==============================  ================================================================
``crop.faces``                  :class:`Face`, the package's one face type, and :data:`KEYPOINT_NAMES`
``crop.detector``               :class:`FaceDetector`: the three looks, the close-up vote, its settings
``crop.mtcnn_internals``        the only code that calls into the ``mtcnn`` package's internals
``crop.cropping``               :func:`crop_faces`, :func:`get_crops`, :func:`match_detections`, the cache
``crop.results``                :class:`Crops` and :class:`CropReport`
``crop.tradeoff``               :func:`threshold_tradeoff` on :func:`background_images`
``crop.plots``                  the figures
==============================  ================================================================

Imports run one way: ``faces`` and ``mtcnn_internals`` import nothing of the package's crop stage,
``detector`` imports them, ``cropping`` imports ``detector`` and ``results``, ``tradeoff`` and ``plots``
import those.
"""

from __future__ import annotations

from .cropping import (
    DEFAULT_MARGIN,
    Match,
    crop_faces,
    dataset_fingerprint,
    fallback_box,
    fallback_leak,
    get_crops,
    largest_face,
    match_detections,
    pair_crops,
    take_per_class,
)
from .detector import (
    CLOSE_UP_VIEWS,
    CloseUpLook,
    CloseUpSettings,
    Detection,
    DetectionResult,
    FaceDetector,
    NetworkSettings,
    RunSettings,
    SecondLookSettings,
    SizeSettings,
    View,
    close_up_of,
)
from .faces import KEYPOINT_NAMES, Face
from .mtcnn_internals import compile_mtcnn, run_pnet
from .plots import plot_close_up_look, plot_crop_gallery, plot_detections, plot_found_rates, plot_tradeoff
from .results import CACHE_VERSION, CropReport, Crops, image_hashes
from .tradeoff import BACKGROUND_NAMES, TradeOff, background_images, threshold_tradeoff

#: The old name of :func:`plot_crop_gallery` (notebook 02 calls it; ``maskedu.attack`` has its own
#: ``plot_gallery`` of attack results).
plot_gallery = plot_crop_gallery

__all__ = [
    "KEYPOINT_NAMES", "Face", "Detection", "DetectionResult", "FaceDetector", "View", "CloseUpLook",
    "CLOSE_UP_VIEWS", "NetworkSettings", "SizeSettings", "SecondLookSettings", "CloseUpSettings", "RunSettings",
    "close_up_of", "compile_mtcnn", "run_pnet", "match_detections", "Match", "largest_face", "CropReport", "Crops",
    "image_hashes", "crop_faces", "get_crops", "fallback_box", "background_images", "BACKGROUND_NAMES", "TradeOff",
    "threshold_tradeoff", "fallback_leak", "plot_detections", "plot_crop_gallery", "plot_gallery",
    "plot_found_rates", "plot_tradeoff", "plot_close_up_look", "pair_crops", "take_per_class",
    "dataset_fingerprint", "CACHE_VERSION", "DEFAULT_MARGIN",
]
