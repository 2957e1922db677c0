"""Everything that reaches into the ``mtcnn`` package's internals, in one file.

``mtcnn`` 1.0 runs its three networks (PNet, RNet, ONet) eagerly through ``MTCNN.detect_faces``. The
detector here calls the stages (``MTCNN().stages``) itself, with the networks traced into TensorFlow
graphs (:func:`compile_mtcnn`) and with PNet's largest pyramid levels left out where they cannot matter
(:func:`run_pnet`). When ``mtcnn`` changes how it keeps its stages, this is the file to update; the
detection policy (:mod:`maskedu.crop.detector`) only calls :func:`shared_mtcnn` and :func:`run_mtcnn`.

The rows every function here returns have 16 columns: image id, x1, y1, x2, y2, score, the five
landmarks' x, then their y (in the pixels of the image MTCNN was given).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["compile_mtcnn", "run_pnet", "run_mtcnn", "shared_mtcnn"]

#: One MTCNN per TensorFlow device (compiled or not), shared by every FaceDetector.
_SHARED_MTCNN: dict[tuple[str, bool], Any] = {}


def shared_mtcnn(device: str = "CPU:0", compiled: bool = True):
    """The one ``mtcnn.MTCNN`` instance for ``device`` (traced with :func:`compile_mtcnn` when ``compiled``),
    built on first use: loading its weights takes a few seconds. MTCNN keeps only its weights, so every
    detector shares it and passes its own settings on each call."""
    key = (device, compiled)
    if key not in _SHARED_MTCNN:
        from ..common import import_tensorflow

        import_tensorflow()  # quietly, before mtcnn imports it
        from mtcnn import MTCNN

        mtcnn = MTCNN(stages="face_and_landmarks_detection", device=device)
        if compiled:
            compile_mtcnn(mtcnn)
        _SHARED_MTCNN[key] = mtcnn
    return _SHARED_MTCNN[key]


def compile_mtcnn(mtcnn) -> None:
    """Trace the three networks of an ``mtcnn.MTCNN`` instance into TensorFlow graphs, in place.

    ``mtcnn`` 1.0 calls its Keras networks eagerly, layer by layer, for every level of the image pyramid:
    on a CPU that per-call overhead is most of the time spent on a small photo. Each network is wrapped
    in one ``tf.function`` with a fully flexible input shape (they are fully convolutional, or take a
    batch of fixed-size patches), so it is traced once and then reused for every size. Same weights,
    same arithmetic: the boxes are the same (to float rounding). Networks that are not where this
    version of ``mtcnn`` keeps them are left as they are.
    """
    import tensorflow as tf

    for stage in getattr(mtcnn, "stages", []):
        model = getattr(stage, "_model", None)
        if model is None or isinstance(model, tf.types.experimental.PolymorphicFunction):
            continue
        stage._model = tf.function(model, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
                                   reduce_retracing=True)


def run_pnet(stage, images, *, min_face_size: int = 20, scale_factor: float = 0.709, threshold_pnet: float = 0.6,
             nms_pnet1: float = 0.5, nms_pnet2: float = 0.7, skip_levels: int = 0, **_: Any) -> np.ndarray:
    """MTCNN's first stage, its proposal network (PNet) over the image pyramid, as ``mtcnn`` 1.0's PNet stage
    runs it, but able to leave out the pyramid's first ``skip_levels`` levels.

    ``stage`` is the ``mtcnn`` PNet stage (``MTCNN().stages[0]``), whose network and box utilities are used
    as they are; ``images`` an ``(N, H, W, 3)`` float32 batch normalised as MTCNN does it
    (``(pixel - 127.5) / 128``). The pyramid is MTCNN's own: level ``j`` shrinks the image by
    ``12 / min_face_size * scale_factor ** j`` and finds faces of about ``min_face_size / scale_factor ** j``
    pixels. The first levels are the largest images, so they cost most (the first alone about half of
    the stage), and they find only the smallest faces: :meth:`~maskedu.crop.FaceDetector.levels_to_skip` says how many
    may go where small faces cannot matter. The levels kept are exactly the levels MTCNN would use. Returns
    the stage's rows (image id, x1, y1, x2, y2, score), squared, for RNet.
    """
    from mtcnn.utils.bboxes import generate_bounding_box, resize_to_square, smart_nms_from_bboxes, upscale_bboxes
    from mtcnn.utils.images import build_scale_pyramid, scale_images

    n, h, w = (int(v) for v in images.shape[:3])
    scales = list(build_scale_pyramid(w, h, min_face_size=min_face_size, scale_factor=scale_factor))
    scales = scales[min(skip_levels, max(len(scales) - 1, 0)):]  # at least the last level
    found = []
    for scale in scales:
        reg, cls = stage._model(scale_images(images, scale))
        boxes = upscale_bboxes(generate_bounding_box(reg, cls, threshold_pnet), np.full(n, scale))
        found.append(smart_nms_from_bboxes(boxes, threshold=nms_pnet1, method="union", initial_sort=False))
    boxes = np.concatenate(found, axis=0) if found else np.empty((0, 6))
    boxes = smart_nms_from_bboxes(boxes, threshold=nms_pnet2, method="union", initial_sort=True)
    return resize_to_square(boxes)


def run_mtcnn(mtcnn, prepared: Sequence[np.ndarray], *, thresholds: Sequence[float], min_face_size: int,
              scale_factor: float, skip_levels: int = 0, staged: bool = True, device: str = "CPU:0") -> np.ndarray:
    """Run MTCNN on a list of uint8 images of one shape; the raw rows of all of them (see the module docstring).

    ``staged=True`` sends the batch straight to MTCNN's stages as one float32 tensor, normalised by
    TensorFlow from the uint8 batch with MTCNN's own arithmetic (``MTCNN.detect_faces`` would convert it
    to float64 numpy, which TensorFlow then copies again for every pyramid level), leaving out the
    pyramid's first ``skip_levels`` levels (:func:`run_pnet`). ``staged=False`` calls ``detect_faces``
    exactly as installed (it cannot leave out levels). Same stages, same settings, same boxes.
    """
    settings = dict(threshold_pnet=thresholds[0], threshold_rnet=thresholds[1], threshold_onet=thresholds[2],
                    min_face_size=min_face_size, scale_factor=scale_factor)
    if staged or skip_levels:
        import tensorflow as tf

        batch = np.stack(prepared)  # uint8: TensorFlow makes the float copy, in memory it keeps for reuse
        with tf.device(device):
            normalized = (tf.cast(batch, tf.float32) - 127.5) / 128.0  # MTCNN's own normalisation, in float32
            shapes = np.stack([p.shape for p in prepared])
            try:
                pnet, *later = mtcnn.stages
                rows = run_pnet(pnet, normalized, skip_levels=skip_levels, **settings)
                for stage in later:
                    rows = stage(bboxes_batch=rows, images_normalized=normalized, images_oshapes=shapes, **settings)
            except tf.errors.InvalidArgumentError:  # what MTCNN itself does when no face survives a stage
                rows = np.empty((0, 16))
    else:
        rows = mtcnn.detect_faces(
            list(prepared),
            box_format="xyxy",
            output_type="numpy",
            postprocess=False,  # the detector clips boxes itself, so clipping is seen and reported
            **settings,
        )
    return np.asarray(rows, dtype=np.float64)
