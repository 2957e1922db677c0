"""Faces found in annotated crowd scenes: ``detect_masks`` against the paper's way, scored on the annotations.

Usage::

    .venv/bin/python benchmarks/scene_recall.py [VOC_FOLDER] [--limit N] [--model PATH] [--detector JSON]

VOC_FOLDER is a PASCAL VOC set (``images/`` and ``annotations/*.xml``, every face annotated); the default is
``../shared/scenes`` (street and crowd photos of andrewmvd's Kaggle "Face Mask Detection").

Both ways run in this one process on the same photos, in alternating chunks so a busy machine slows both alike:

* **detect_masks**: :func:`maskedu.detect.detect_masks` on the chunk's files, with the default
  :class:`~maskedu.crop.FaceDetector` (or ``FaceDetector(**JSON)`` with ``--detector``);
* **paper's way**: MTCNN as installed at full resolution with its default settings
  (``FaceDetector.paper()``), one photo at a time, then one ``model.predict`` call per face.

Each detection is matched to at most one annotated face (greedy, best IoU first, IoU at least 0.4:
:func:`maskedu.scenes.match_faces`); a face's size is its annotated box's shorter side. Printed: found rate
(recall) by face size, per class, label accuracy on the found faces whose class the classifier knows
(``mask_weared_incorrect`` counts for finding only), detections that match no annotated face, and seconds per
scene. The classifier is ``--model``, else the training benchmark's ``data/models/resnet-realfaces.keras``
(``benchmarks/train_accuracy.py``), else ``data/models/resnet.keras``; with none of them an untrained one is
used and label accuracy is not reported. The last line printed is one JSON object with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MASKEDU_NO_PROGRESS", "1")

import numpy as np

CHUNK = 40
PAPER = "paper's way"


def find_model(path: str | None):
    """(model, path or None): the classifier to label faces with (None: an untrained stand-in)."""
    from maskedu.common import artifact_path
    from maskedu.model import build_resnet, load_model

    if path:
        return load_model(path), Path(path)
    for name in ("models/resnet-realfaces.keras", "models/resnet.keras"):
        candidate = artifact_path(name, fast=False)
        if candidate.is_file():
            return load_model(candidate), candidate
    return build_resnet(), None


def paper_way(files, detector, model, margin: float) -> tuple[list[list], list[float]]:
    """MTCNN as installed, full resolution, one photo at a time; one ``model.predict`` call per face."""
    from maskedu.imaging import crop_box, load_image
    from maskedu.model import class_names_of

    names = class_names_of(model)
    found, seconds = [], []
    for f in files:
        t0 = time.perf_counter()
        image = load_image(f)
        faces = []
        for d in detector.detect(image):
            p = model.predict(crop_box(image, d.box, size=50, margin=margin)[None], verbose=0)[0]
            faces.append((d.box, names[int(np.argmax(p))]))
        seconds.append(time.perf_counter() - t0)
        found.append(faces)
    return found, seconds


class _Face:  # what score_scenes reads from one detection: its box and label
    def __init__(self, box, label):
        self.box, self.label = box, label


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder", nargs="?", default=None, help="PASCAL VOC folder (default ../shared/scenes)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N scenes (by file name; 0 = all)")
    p.add_argument("--model", default=None, help="a trained .keras classifier (default: see above)")
    p.add_argument("--detector", default=None,
                   help='FaceDetector keyword arguments for detect_masks as JSON, e.g. \'{"min_face_size": 12}\'')
    p.add_argument("--crowd", action="store_true", help="detect_masks(crowd=True): FaceDetector.crowd()'s settings")
    p.add_argument("--no-baseline", action="store_true", help="skip the paper's way (its figures print as null)")
    args = p.parse_args(argv)
    if args.limit < 0:
        p.error("--limit must be 0 or more")

    from maskedu import common
    from maskedu.scenes import scenes_dir

    root = Path(args.folder) if args.folder else scenes_dir()
    if root is None:
        print("No folder given and ../shared/scenes is absent: nothing to measure. Pass a PASCAL VOC folder "
              "(images/ and annotations/*.xml).", file=sys.stderr)
        return 2
    if not root.is_dir():
        print(f"{root} is not a folder: pass a PASCAL VOC folder (images/ and annotations/*.xml).", file=sys.stderr)
        return 2

    common.setup(verbose=False)
    from maskedu.annotations import load_voc
    from maskedu.crop import FaceDetector
    from maskedu.crop import DEFAULT_MARGIN
    from maskedu.detect import detect_masks
    from maskedu.scenes import SIZE_BINS, score_scenes

    ds = load_voc(root)
    records = sorted(ds.images, key=lambda r: r.path.name)
    if args.limit:
        records = records[: args.limit]
    if not records:
        print(f"{root} holds no annotated photo.", file=sys.stderr)
        return 2
    files = [r.path for r in records]
    model, model_path = find_model(args.model)
    if args.crowd and args.detector:
        print("pass --crowd or --detector, not both.", file=sys.stderr)
        return 2
    if args.crowd:
        detector = FaceDetector.crowd()
    else:
        detector = FaceDetector(**json.loads(args.detector)) if args.detector else None
    paper = FaceDetector.paper()
    margin = DEFAULT_MARGIN
    n_faces = sum(len(r.boxes) for r in records)
    print(f"{len(records)} scenes, {n_faces} annotated faces, from {root}; model "
          f"{model_path or 'untrained (no trained model found: label accuracy left out)'}; detector "
          f"{detector if detector is not None else 'default'}", flush=True)

    # warm up both (graph tracing, MTCNN weights, TensorFlow's first batches), untimed
    warm = files[:4]
    detect_masks(warm, model, detector=detector)
    if not args.no_baseline:
        paper_way(warm[:2], paper, model, margin)

    ours, base, base_s = [], [], []
    for k, start in enumerate(range(0, len(files), CHUNK)):
        chunk = files[start : start + CHUNK]
        for way in (("ours", "paper") if k % 2 == 0 else ("paper", "ours")):
            if way == "ours":
                ours += detect_masks(chunk, model, detector=detector)
            elif not args.no_baseline:
                f, s = paper_way(chunk, paper, model, margin)
                base += [[_Face(b, lab) for b, lab in faces] for faces in f]
                base_s += s
        print(f"  {start + len(chunk):4d}/{len(files)} scenes", flush=True)

    sub = type(ds)(root=ds.root, layout=ds.layout, images=records, class_map=ds.class_map, report=ds.report)
    s_ours = score_scenes(sub, ours)
    s_base = score_scenes(sub, base) if base else None
    trained = model_path is not None

    def pct(v):
        return "   n/a" if v is None or not np.isfinite(v) else f"{100 * v:5.1f}%"

    sides, counts = s_ours.recall_by_side(), s_ours.faces_by_side()
    bsides = s_base.recall_by_side() if s_base else {}
    rows = [("all faces", n_faces, s_ours.recall(), s_base.recall() if s_base else None)]
    rows += [(f"{b} px", counts[b], sides[b], bsides.get(b)) for b in SIZE_BINS]
    rows.append(("32 px and up", int((s_ours.sides >= 32).sum()), s_ours.recall(32), s_base.recall(32) if s_base else None))
    bclass = s_base.recall_by_class() if s_base else {}
    for c, v in s_ours.recall_by_class().items():
        rows.append((c, int((s_ours.classes == c).sum()), v, bclass.get(c)))
    print(f"\n{'found (recall)':<24}{'faces':>6}  {'detect_masks':>12}  {PAPER:>12}")
    for name, n, a, b in rows:
        print(f"{name:<24}{n:>6}  {pct(a):>12}  {pct(b):>12}")
    acc = s_ours.label_accuracy_found() if trained else float("nan")
    bacc = s_base.label_accuracy_found() if (trained and s_base) else float("nan")
    print(f"{'label accuracy (found)':<30}  {pct(acc):>12}  {pct(bacc):>12}")
    print(f"{'unmatched detections':<30}  {s_ours.unmatched_detections:>12}  "
          f"{s_base.unmatched_detections if s_base else 'n/a':>12}")
    ours_sps = s_ours.s_per_scene()
    base_sps = float(np.mean(base_s)) if base_s else float("nan")
    print(f"{'seconds per scene':<30}  {ours_sps:>12.3f}  {base_sps:>12.3f}")
    if base_s:
        print(f"detect_masks is {base_sps / ours_sps:.2f}x as fast as the paper's way per scene")

    def r(v):
        return None if v is None or not np.isfinite(v) else round(float(v), 4)

    result = {
        "scenes": len(records),
        "faces": n_faces,
        "recall": r(s_ours.recall()),
        "recall_32up": r(s_ours.recall(32)),
        "recall_by_side": {k: r(v) for k, v in sides.items()},
        "label_accuracy_found": r(acc),
        "unmatched_detections": s_ours.unmatched_detections,
        "baseline_recall": r(s_base.recall()) if s_base else None,
        "baseline_recall_32up": r(s_base.recall(32)) if s_base else None,
        "s_per_scene": r(ours_sps),
        "baseline_s_per_scene": r(base_sps),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
