"""Face cropping speed and found rate: the paper's way against ``maskedu.crop.crop_faces``, side by side.

Usage::

    .venv/bin/python benchmarks/crop_speed.py [FOLDER] [--limit N] [--no-fp] [--only-ours]

FOLDER holds class folders (``with_mask/``, ``without_mask/``); the default is ``../shared/realfaces``.

Both pipelines run in this one process on the same images, in alternating chunks so a busy machine slows
both alike:

* **paper's way**: one MTCNN at full resolution with its default settings, image by image, each file
  freshly decoded and converted, the most confident box cut out and resized to 50x50.
* **crop_faces**: ``crop_faces(dataset, fallback="center", cache=False)`` with the default
  :class:`~maskedu.crop.FaceDetector` (large photos shrunk, small ones enlarged, a second look when the
  first finds nothing).

Found rates count the detector's finds only (never the fallback). Two false-positive rates are measured:

* ``false_positive_rate``: the share of face-free pictures (``maskedu.crop.background_images()``:
  scikit-image's sample pictures, whole and as random crops) where the detector reports any face; also
  counted on 420 other random crops of them (``background_images(crops_per_image=20, seed=1)``), the set
  the close-up look's agreement threshold was chosen on (``tuning_false_positives``);
* ``strip_false_positive_rate``: the share of *strips* of the photos themselves, cut at least half a
  face-width away from the one face both detectors agree on (photos with a single face only, strips at
  least 80 pixels on each side), where the detector reports a face. A strip can hold a real face the
  detectors missed, so this over-counts; it is compared between the two ways, not read on its own.

``--only-ours`` times ``crop_faces`` alone (no paper's way, no false positives), e.g. to compare two
versions of the code: run it with ``PYTHONPATH=<other checkout>`` and without, alternately.

The last line printed is one JSON object with the numbers.
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

from maskedu.annotations import CLASS_NAMES, Dataset, ImageRecord, LoadReport
from maskedu.common import realfaces_dir
from maskedu.crop import FaceDetector, background_images, crop_faces
from maskedu.imaging import IMAGE_SUFFIXES

CHUNK = 100


def class_folder_dataset(root: Path) -> Dataset:
    records = []
    for label in CLASS_NAMES:
        folder = root / label
        if not folder.is_dir():
            raise SystemExit(f"{root} has no {label}/ folder; pass a folder holding with_mask/ and without_mask/.")
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                records.append(ImageRecord(path=path, label=label))
    return Dataset(root=root, layout="folders", images=records, class_map={c: c for c in CLASS_NAMES},
                   report=LoadReport(images_kept=len(records)))


def paper_way(records: list[ImageRecord], mtcnn) -> tuple[list[float], list[bool]]:
    """MTCNN at full resolution, defaults, one image at a time, as the paper's notebook did."""
    import cv2
    from PIL import Image

    seconds, found = [], []
    for rec in records:
        t0 = time.perf_counter()
        try:
            with Image.open(rec.path) as im:
                img = np.array(im.convert("RGB"))
        except Exception:  # the paper's code would crash; count it as not found
            seconds.append(time.perf_counter() - t0)
            found.append(False)
            continue
        faces = mtcnn.detect_faces(img)
        if faces:
            x, y, w, h = max(faces, key=lambda f: f["confidence"])["box"]
            x, y = max(0, x), max(0, y)
            face = img[y : y + h, x : x + w]
            if face.size:
                cv2.resize(face, (50, 50))
        seconds.append(time.perf_counter() - t0)
        found.append(bool(faces))
    return seconds, found


def strip_away_from_face(image: np.ndarray, box, min_side: int = 80) -> np.ndarray | None:
    """The largest strip of the photo (left, right, above or below) that keeps half a face-width away from
    the face box, or None when no strip has both sides of at least ``min_side`` pixels."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    m = 0.5 * max(x2 - x1, y2 - y1)
    candidates = [
        (0, 0, int(x1 - m), h), (int(x2 + m), 0, w, h),  # left, right
        (0, 0, w, int(y1 - m)), (0, int(y2 + m), w, h),  # above, below
    ]
    best = None
    for a, b, c, d in candidates:
        a, b, c, d = max(0, a), max(0, b), min(w, c), min(h, d)
        if c - a >= min_side and d - b >= min_side and (best is None or (c - a) * (d - b) > (best[2] - best[0]) * (best[3] - best[1])):
            best = (a, b, c, d)
    if best is None:
        return None
    a, b, c, d = best
    return np.ascontiguousarray(image[b:d, a:c])


def rates(found: list[bool], labels: list[str]) -> dict[str, float]:
    f, lab = np.asarray(found), np.asarray(labels)
    return {c: round(float(f[lab == c].mean()), 4) if (lab == c).any() else float("nan") for c in CLASS_NAMES}


def only_ours(ds: Dataset, detector: FaceDetector) -> int:
    """``crop_faces`` alone on ``ds``, after one warm-up photo: seconds, images per second, found rates."""
    from skimage import data as skdata

    detector.detect(skdata.astronaut())
    t0 = time.perf_counter()
    crops = crop_faces(ds, detector=detector, fallback="center", cache=False, verbose=False)
    seconds = time.perf_counter() - t0
    missing = {p for p, _ in crops.report.no_face} | {p for p, _ in crops.report.unreadable}
    found = [str(r.path) not in missing for r in ds.images]
    result = {"images": len(ds), "seconds": round(seconds, 3), "images_per_s": round(len(ds) / seconds, 3),
              "found_rate": rates(found, [r.label for r in ds.images])}
    print(f"crop_faces: {result['images_per_s']:.2f} images/s ({seconds:.2f} s for {len(ds)} images)")
    print(json.dumps(result))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", nargs="?", help="folder with with_mask/ and without_mask/ (default ../shared/realfaces)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N images of each class")
    parser.add_argument("--no-fp", action="store_true", help="skip the false-positive measurement")
    parser.add_argument("--only-ours", action="store_true",
                        help="time crop_faces alone (no paper's way, no false positives): for comparing two versions")
    args = parser.parse_args(argv)
    root = Path(args.folder) if args.folder else realfaces_dir()
    if root is None:
        print("No folder given and ../shared/realfaces is absent: nothing to measure.", file=sys.stderr)
        return 2
    ds = class_folder_dataset(root)
    if args.limit:
        ds.images = [r for c in CLASS_NAMES for r in [r for r in ds.images if r.label == c][: args.limit]]
    print(f"{len(ds)} images from {root}")

    detector = FaceDetector()
    if args.only_ours:
        return only_ours(ds, detector)
    paper_mtcnn = FaceDetector.paper().mtcnn  # mtcnn as installed (eager); the same weights, used as the paper did
    from skimage import data as skdata

    warm = skdata.astronaut()
    paper_mtcnn.detect_faces(warm)
    detector.detect(warm)

    base_s, base_found, labels = [], [], []
    ours_s, ours_found, ours_fallback = [], [], []
    for start in range(0, len(ds), CHUNK):
        chunk = ds.images[start : start + CHUNK]
        s, f = paper_way(chunk, paper_mtcnn)
        base_s += s
        base_found += f
        labels += [r.label for r in chunk]
        sub = Dataset(root=ds.root, layout="folders", images=chunk, class_map=ds.class_map, report=LoadReport())
        t0 = time.perf_counter()
        crops = crop_faces(sub, detector=detector, fallback="center", cache=False, verbose=False)
        ours_s.append(time.perf_counter() - t0)
        rep = crops.report
        slow = rep.slowest[1]
        missing = {p for p, _ in rep.no_face} | {p for p, _ in rep.unreadable}
        fallback = set(crops.paths[crops.origin == "fallback"])
        ours_found += [str(r.path) not in missing for r in chunk]
        ours_fallback += [str(r.path) in fallback for r in chunk]
        ours_max = max(slow, ours_max) if start else slow
        print(f"  {start + len(chunk):4d}/{len(ds)} images", flush=True)

    n = len(ds)
    base_total, ours_total = float(np.sum(base_s)), float(np.sum(ours_s))
    result = {
        "images": n,
        "images_per_s": round(n / ours_total, 3),
        "baseline_images_per_s": round(n / base_total, 3),
        "ratio": round(base_total / ours_total, 3),
        "max_s_per_image": round(float(ours_max), 3),
        "baseline_max_s_per_image": round(float(np.max(base_s)), 3),
        "found_rate": rates(ours_found, labels),
        "baseline_found_rate": rates(base_found, labels),
        "fallback_rate": rates(ours_fallback, labels),
    }
    print(f"paper's way : {result['baseline_images_per_s']:.2f} images/s "
          f"({base_total / n:.3f} s per image, slowest {result['baseline_max_s_per_image']:.2f} s)")
    print(f"crop_faces  : {result['images_per_s']:.2f} images/s "
          f"({ours_total / n:.3f} s per image, slowest {result['max_s_per_image']:.2f} s)")
    print(f"speed-up    : {result['ratio']:.2f}x   (the paper reports about 10 s per image)")
    for c in CLASS_NAMES:
        print(f"found rate {c:>12}: paper's way {100 * result['baseline_found_rate'][c]:.1f}%  "
              f"crop_faces {100 * result['found_rate'][c]:.1f}%  (+ fallback {100 * result['fallback_rate'][c]:.1f}%)")

    if not args.no_fp:
        backgrounds = background_images()
        fp_base = [bool(paper_mtcnn.detect_faces(img)) for _, img in backgrounds]
        fp_ours = [r.found for r in detector.detect_many([img for _, img in backgrounds])]
        result["false_positive_rate"] = round(float(np.mean(fp_ours)), 4)
        result["baseline_false_positive_rate"] = round(float(np.mean(fp_base)), 4)
        result["background_images"] = len(backgrounds)
        print(f"false positives on {len(backgrounds)} face-free pictures: paper's way "
              f"{100 * result['baseline_false_positive_rate']:.1f}%  crop_faces {100 * result['false_positive_rate']:.1f}%")
        # 420 more (other random crops): the set the close-up look's agreement threshold was chosen on
        tuning = background_images(crops_per_image=20, seed=1)
        tb = [bool(paper_mtcnn.detect_faces(img)) for _, img in tuning]
        to = [r.found for r in detector.detect_many([img for _, img in tuning])]
        result["tuning_false_positives"] = int(np.sum(to))
        result["baseline_tuning_false_positives"] = int(np.sum(tb))
        result["tuning_background_images"] = len(tuning)
        print(f"false positives on {len(tuning)} other face-free pictures (the close-up look was tuned on them): "
              f"paper's way {int(np.sum(tb))}  crop_faces {int(np.sum(to))}")
        # strips of the photos themselves, far from the face both detectors agree on
        from maskedu.imaging import iou, load_image

        strips = []
        for rec in ds.images:
            try:
                img = load_image(rec.path)
            except Exception:
                continue
            faces = paper_mtcnn.detect_faces(img, box_format="xyxy")
            if len(faces) != 1:
                continue
            box = faces[0]["box"]
            ours = detector.detect(img)
            if len(ours) != 1 or iou(ours[0].box, box) < 0.3:
                continue
            strip = strip_away_from_face(img, box)
            if strip is not None:
                strips.append(strip)
        if strips:
            s_base = [bool(paper_mtcnn.detect_faces(x)) for x in strips]
            s_ours = [r.found for r in detector.detect_many(strips)]
            result["strip_false_positive_rate"] = round(float(np.mean(s_ours)), 4)
            result["baseline_strip_false_positive_rate"] = round(float(np.mean(s_base)), 4)
            result["strips"] = len(strips)
            print(f"detections in {len(strips)} strips of the photos away from their one face: paper's way "
                  f"{100 * np.mean(s_base):.1f}%  crop_faces {100 * np.mean(s_ours):.1f}%")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
