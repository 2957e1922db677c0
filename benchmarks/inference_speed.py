"""End-to-end mask detection speed: ``detect_masks`` versus the paper's way, side by side on the same photos.

    .venv/bin/python benchmarks/inference_speed.py [FOLDER] [--limit N] [--rounds R] [--warmup W] [--model PATH]

* ours: :func:`maskedu.detect.detect_masks` with the default :class:`~maskedu.crop.FaceDetector` (MTCNN's
  networks traced into graphs, photos shrunk to at most 800 px and batched, the second and close-up looks
  where nothing was found), then one classifier call per batch of photos through the compiled prediction function;
* the paper's way: MTCNN as installed on the full-resolution image, one image at a time
  (``FaceDetector.paper()``), then one ``model.predict`` call per face.

Both run in this process on the same photos (default: ``../shared/realfaces``, a seeded sample of ``--limit``
photos from each class folder), ``--rounds`` times each (default 2) in the order ours, paper's, paper's, ours
(more rounds go on: ours, paper's, ...), so that a change in the machine's load during the run affects both
alike; each figure is the mean of its rounds. Prints images per second of both and the ratio, then the ratio of
the first rounds alone; the last line is one JSON object.

Why both figures: ours' first round is also where TensorFlow grows its memory to what batches of many photos
need, a cost paid once per process (its page faults are kernel time). On a 2-core machine,
``FaceDetector.detect_many`` on 80 new photos after the small warm-up: 94,000-118,000 page faults and 0.9-2.1 s
of kernel time; again on the same photos: 3,000-15,000 and 0.2-0.3 s. Once the memory has grown, photos it has
never seen cost only a little more than seen ones (80 new photos after 80 others: 2.0-2.8 s, then 1.9-2.1 s for
the same photos again).
The first-round ratio is the one for photos nobody has seen, in a process whose memory has not yet grown.

Before the timed rounds both ways warm up, untimed, on the same ``--warmup`` other photos of each class folder
(seeded; where a folder has none left over, its first timed ones), and each way's classifier gets one blank
crop. One photo is too little for ours: the first batches of many photos cost TensorFlow extra once per process
(``detect_many`` on the same 80 photos: 4.4 s after one warm-up photo, 3.3 s after eight other photos).
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
    from maskedu.crop import DEFAULT_MARGIN, FaceDetector
    from maskedu.detect import detect_masks
    from maskedu.imaging import crop_box, is_image_file, load_image
    from maskedu.model import build_resnet, load_model, make_predict_fn

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", nargs="?", default=None, help="photos (searched recursively); default ../shared/realfaces")
    p.add_argument("--limit", type=int, default=40, help="photos per class folder (seeded sample; 0 = all)")
    p.add_argument("--rounds", type=int, default=2, help="timed rounds of each way (default 2), in alternating order")
    p.add_argument("--warmup", type=int, default=4, help="untimed warm-up photos per class folder, not among the "
                                                         "timed ones where the folder has more (default 4)")
    p.add_argument("--model", default=None, help="a trained .keras model (default: data/models/resnet-realfaces.keras "
                                                 "when present, else an untrained build_resnet(): same speed)")
    args = p.parse_args(argv)
    common.setup(verbose=False)

    root = Path(args.folder) if args.folder else common.realfaces_dir()
    if root is None:
        print("../shared/realfaces is absent; pass a FOLDER of photos", file=sys.stderr)
        return 2
    if args.limit < 0 or args.warmup < 0:
        p.error("--limit and --warmup must be 0 or more")
    if args.rounds < 1:
        p.error("--rounds must be 1 or more")
    rng, spare_rng = np.random.default_rng(0), np.random.default_rng(1)
    files, warm = [], []
    for sub in sorted({f.parent for f in root.rglob("*") if f.is_file() and is_image_file(f)}):
        group = sorted(f for f in sub.iterdir() if f.is_file() and is_image_file(f))
        timed = group
        if args.limit and len(group) > args.limit:
            timed = [group[i] for i in sorted(rng.choice(len(group), args.limit, replace=False))]
        chosen = set(timed)
        rest = [f for f in group if f not in chosen]
        if rest:
            warm.extend(rest[i] for i in sorted(spare_rng.choice(len(rest), min(args.warmup, len(rest)), replace=False)))
        else:
            warm.extend(timed[:args.warmup])
        files.extend(timed)
    if not files:
        print(f"no photos under {root}", file=sys.stderr)
        return 2
    model_path = Path(args.model) if args.model else common.artifact_path("models/resnet-realfaces.keras", fast=False)
    model = load_model(model_path) if model_path.is_file() else build_resnet()
    reused = len(set(warm) & set(files))
    print(f"{len(files)} photos from {root}; model {model_path if model_path.is_file() else 'untrained default'}; "
          f"warm-up on {len(warm)} photos" + (f" ({reused} of them timed too: no others left)" if reused else " (not timed)"))

    margin = DEFAULT_MARGIN
    paper_detector = FaceDetector.paper()

    def paper_way(path):
        image = load_image(path)
        faces = paper_detector.detect(image)
        out = []
        for d in faces:  # one model.predict call per face, as in the paper's code
            crop = crop_box(image, d.box, size=50, margin=margin)
            out.append(model.predict(crop[None], verbose=0)[0])
        return out

    # warm up both (graph tracing, MTCNN weights, TensorFlow's first large batches) on the same untimed photos; they
    # may hold no face, so each way's classifier also gets one blank crop (detect_masks' compiled function, and
    # model.predict)
    detect_masks(warm or files[:1], model)
    for f in warm or files[:1]:
        paper_way(f)
    blank = np.zeros((1, 50, 50, 3), np.uint8)
    make_predict_fn(model)(blank)  # the same cached function detect_masks uses
    model.predict(blank, verbose=0)

    # ours, paper's, paper's, ours (ABBA; more rounds continue the pattern): a machine that gets busier or quieter
    # during the run slows both ways alike; each figure is the mean of its rounds
    runs: dict[str, list[float]] = {"ours": [], "paper": []}
    first: dict[str, list] = {}

    def run(way: str) -> None:
        t0 = time.perf_counter()
        result = detect_masks(files, model) if way == "ours" else [paper_way(f) for f in files]
        runs[way].append(time.perf_counter() - t0)
        first.setdefault(way, result)

    for k in range(args.rounds):
        for way in (("ours", "paper") if k % 2 == 0 else ("paper", "ours")):
            run(way)
    ours_s, base_s = float(np.mean(runs["ours"])), float(np.mean(runs["paper"]))
    print(f"rounds: ours {', '.join(f'{t:.1f}' for t in runs['ours'])} s; "
          f"paper's way {', '.join(f'{t:.1f}' for t in runs['paper'])} s")
    ours, base = first["ours"], first["paper"]

    n = len(files)
    faces_ours, faces_base = sum(len(r) for r in ours), sum(len(b) for b in base)
    out = {
        "images": n,
        "images_per_s": round(n / ours_s, 2),
        "baseline_images_per_s": round(n / base_s, 2),
        "ratio": round(base_s / ours_s, 2),
        "mean_s_per_image": round(ours_s / n, 4),
        "first_round_ratio": round(runs["paper"][0] / runs["ours"][0], 2),
    }
    print(f"ours (detect_masks):       {ours_s:7.1f} s  {out['images_per_s']:6.2f} images/s  {faces_ours} faces")
    print(f"paper's way (MTCNN + predict per face): {base_s:7.1f} s  {out['baseline_images_per_s']:6.2f} images/s  "
          f"{faces_base} faces")
    print(f"ratio {out['ratio']}x; {out['mean_s_per_image']:.3f} s per image (paper: about 10 s)")
    if args.rounds > 1:  # later rounds see photos the first has already shown, and memory TensorFlow has grown
        print(f"first round only (photos new to both ways): ratio {out['first_round_ratio']}x "
              f"({runs['paper'][0]:.1f} s against {runs['ours'][0]:.1f} s)")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
