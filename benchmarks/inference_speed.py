"""End-to-end mask detection speed: ``detect_masks`` versus the paper's way, side by side on the same photos.

    .venv/bin/python benchmarks/inference_speed.py [FOLDER] [--limit N] [--model PATH]

* ours: :func:`maskedu.detect.detect_masks` with the default :class:`~maskedu.crop.FaceDetector` (MTCNN's
  networks traced into graphs, photos shrunk to at most 800 px and batched, the second and close-up looks
  where nothing was found), then one classifier call per batch of photos through the compiled prediction function;
* the paper's way: MTCNN as installed on the full-resolution image, one image at a time
  (``FaceDetector.paper()``), then one ``model.predict`` call per face.

Both run in this process on the same photos (default: ``../shared/realfaces``, a seeded sample of ``--limit``
photos from each class folder), after one warm-up photo each (and one blank crop through each way's classifier:
the photo may hold no face), twice each in the order ours, paper's, paper's,
ours, so that a change in the machine's load during the run affects both alike; each figure is the mean of its
two rounds. Prints images per second of both and the ratio; the last line is one JSON object.
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


def main(argv=None) -> int:
    from maskedu import common
    from maskedu.crop import FaceDetector
    from maskedu.detect import _crop_margin, detect_masks
    from maskedu.imaging import crop_box, is_image_file, load_image
    from maskedu.model import build_resnet, load_model, make_predict_fn

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", nargs="?", default=None, help="photos (searched recursively); default ../shared/realfaces")
    p.add_argument("--limit", type=int, default=40, help="photos per class folder (seeded sample; 0 = all)")
    p.add_argument("--model", default=None, help="a trained .keras model (default: data/models/resnet-realfaces.keras "
                                                 "when present, else an untrained build_resnet(): same speed)")
    args = p.parse_args(argv)
    common.setup(verbose=False)

    root = Path(args.folder) if args.folder else common.realfaces_dir()
    if root is None:
        print("../shared/realfaces is absent; pass a FOLDER of photos", file=sys.stderr)
        return 2
    rng = np.random.default_rng(0)
    files = []
    for sub in sorted({f.parent for f in root.rglob("*") if f.is_file() and is_image_file(f)}):
        group = sorted(f for f in sub.iterdir() if f.is_file() and is_image_file(f))
        if args.limit and len(group) > args.limit:
            group = [group[i] for i in sorted(rng.choice(len(group), args.limit, replace=False))]
        files.extend(group)
    model_path = Path(args.model) if args.model else common.artifact_path("models/resnet-realfaces.keras", fast=False)
    model = load_model(model_path) if model_path.is_file() else build_resnet()
    print(f"{len(files)} photos from {root}; model {model_path if model_path.is_file() else 'untrained default'}")

    margin = _crop_margin()
    paper_detector = FaceDetector.paper()

    def paper_way(path):
        image = load_image(path)
        faces = paper_detector.detect(image)
        out = []
        for d in faces:  # one model.predict call per face, as in the paper's code
            crop = crop_box(image, d.box, size=50, margin=margin)
            out.append(model.predict(crop[None], verbose=0)[0])
        return out

    # warm up both (graph tracing, MTCNN weights) on one photo, outside the timing; the photo may hold no face,
    # so each way's classifier also gets one blank crop (detect_masks' compiled function, and model.predict)
    detect_masks(files[:1], model)
    paper_way(files[0])
    blank = np.zeros((1, 50, 50, 3), np.uint8)
    make_predict_fn(model)(blank)  # the same cached function detect_masks uses
    model.predict(blank, verbose=0)

    # ours, paper's, paper's, ours (ABBA): a machine that gets busier or quieter during the run slows both
    # ways alike; each figure is the mean of its two rounds
    ours_runs, base_runs = [], []

    def run_ours():
        t0 = time.perf_counter()
        result = detect_masks(files, model)
        ours_runs.append(time.perf_counter() - t0)
        return result

    def run_base():
        t0 = time.perf_counter()
        result = [paper_way(f) for f in files]
        base_runs.append(time.perf_counter() - t0)
        return result

    ours = run_ours()
    base = run_base()
    run_base()
    run_ours()
    ours_s, base_s = float(np.mean(ours_runs)), float(np.mean(base_runs))
    print(f"rounds: ours {', '.join(f'{t:.1f}' for t in ours_runs)} s; paper's way {', '.join(f'{t:.1f}' for t in base_runs)} s")

    n = len(files)
    faces_ours, faces_base = sum(len(r) for r in ours), sum(len(b) for b in base)
    out = {
        "images": n,
        "images_per_s": round(n / ours_s, 2),
        "baseline_images_per_s": round(n / base_s, 2),
        "ratio": round(base_s / ours_s, 2),
        "mean_s_per_image": round(ours_s / n, 4),
    }
    print(f"ours (detect_masks):       {ours_s:7.1f} s  {out['images_per_s']:6.2f} images/s  {faces_ours} faces")
    print(f"paper's way (MTCNN + predict per face): {base_s:7.1f} s  {out['baseline_images_per_s']:6.2f} images/s  "
          f"{faces_base} faces")
    print(f"ratio {out['ratio']}x; {out['mean_s_per_image']:.3f} s per image (paper: about 10 s)")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
