"""The attack on the whole photo against the attack on the crop, on the same held-out faces.

Usage::

    .venv/bin/python benchmarks/photo_attack.py [--photos FOLDER] [--model M] [--faces N] [--budget Q]
        [--pixels 20,80] [--blocks 1,auto] [--max-side 640]

FOLDER holds class folders (default ``../shared/realfaces``); its held-out 20 % of photos are the ones
``benchmarks/attack_success.py`` and ``benchmarks/train_accuracy.py`` keep out of training (stratified by
class, seed 0), and the model is the one ``attack_success.py`` attacks (``--model``, else
``data/models/resnet-realfaces.keras``, ...). In a fixed shuffled order, the first N photos of at most
``--max-side`` pixels (every query runs MTCNN on the whole photo) whose first face ``detect_masks`` labels
correctly are attacked, for each K in ``--pixels``, with the same Q queries and seed:

* ``photo_K``: :func:`maskedu.attack.photo_attack` (greedy random search, extreme colours): at most K photo
  pixels, detector, crop, resize and classifier in the loop, ``detect_masks``'s verdict on the final photo;
* ``photo_K_blocks``: the same with ``block="auto"``: the search changes squares of photo pixels, each the
  square one crop pixel covers (``--blocks`` lists the block settings to run: ``1`` gives ``photo_K``,
  ``auto`` ``photo_K_blocks``);
* ``crop_K``: :func:`maskedu.attack.sparse_attack` on that face's 50 x 50 crop as ``detect_masks`` cuts it
  (the same search on the classifier alone).

The resize to 50 x 50 averages photo pixels together: the table says how many photo pixels fall in one crop
pixel. Printed: per-face lines, the table (success with a 95% Wilson interval, pixels changed and queries
on success), and last one JSON object.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from attack_success import _crops, load_or_train_model  # noqa: E402  (the same held-out photos and model)

from maskedu.attack import photo_attack, sparse_attack  # noqa: E402
from maskedu.claims import wilson_interval  # noqa: E402


def held_out_photos(data: str | None, model, n: int, max_side: int, seed: int = 0):
    """The first ``n`` held-out photos (fixed shuffled order, at most ``max_side`` pixels) whose first face
    detect_masks finds and labels as the photo's folder says: (path, image, face, crop, label index)."""
    from maskedu.crop.cropping import DEFAULT_MARGIN
    from maskedu.detect import detect_masks
    from maskedu.imaging import crop_box, load_image
    from maskedu.model import check_unseen

    crops, in_test = _crops(data)
    names = list(crops.class_names)
    paths = sorted({str(p) for p, t, lab in zip(crops.paths, in_test, crops.labels) if t and lab >= 0})
    order = np.random.default_rng(seed).permutation(len(paths))
    chosen, looked, too_big = [], 0, 0
    for i in order:
        if len(chosen) == n:
            break
        path = paths[i]
        image = load_image(path)
        if max(image.shape[:2]) > max_side:
            too_big += 1
            continue
        looked += 1
        label = Path(path).parent.name
        result = detect_masks(image, model)
        if not result.faces or result.faces[0].label != label:
            continue
        face = result.faces[0]
        crop = crop_box(image, face.box, size=50, margin=DEFAULT_MARGIN)
        check_unseen(model, crop)
        chosen.append((path, image, face, crop, names.index(label)))
    note = (f"{len(chosen)} held-out photos of at most {max_side} px whose first face detect_masks labels "
            f"correctly ({looked} looked at, {too_big} larger ones passed over)")
    return chosen, note


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", help="class folders of face photos (default ../shared/realfaces)")
    ap.add_argument("--model", help="a saved Keras model (default as benchmarks/attack_success.py)")
    ap.add_argument("--faces", type=int, default=6)
    ap.add_argument("--budget", type=int, default=2000, help="queries per attack (one photo query = one "
                    "whole-pipeline run)")
    ap.add_argument("--pixels", default="20,80")
    ap.add_argument("--blocks", default="1,auto", help="photo attacks to run: 1 (single pixels), auto (squares "
                    "of one crop pixel's size), or both (default)")
    ap.add_argument("--max-side", type=int, default=640)
    args = ap.parse_args(argv)
    ks = [int(p) for p in args.pixels.split(",") if p.strip()]
    blocks = [b.strip() for b in args.blocks.split(",") if b.strip()]
    if not blocks or any(b not in ("1", "auto") for b in blocks) or len(set(blocks)) != len(blocks):
        ap.error(f"--blocks takes 1, auto or 1,auto, got {args.blocks!r}.")
    arms = {"1": "photo_{k}", "auto": "photo_{k}_blocks"}

    model, model_note = load_or_train_model(args.model, args.photos)
    photos, data_note = held_out_photos(args.photos, model, args.faces, args.max_side)
    print(f"model: {model_note}\nphotos: {data_note}\nbudget: {args.budget:,} queries per attack, pixels {ks}")
    records: dict[str, list[dict]] = {}
    for k in ks:
        for b in blocks:
            records[arms[b].format(k=k)] = []
        records[f"crop_{k}"] = []
    ratios = []
    started = time.perf_counter()
    for i, (path, image, face, crop, label) in enumerate(photos):
        side = max(face.box[2] - face.box[0], face.box[3] - face.box[1]) * 1.2
        ratios.append((side / 50) ** 2)
        line = []
        for k in ks:
            for b in blocks:
                p = photo_attack(image, model, face=face.box, pixels=k, budget=args.budget, seed=i,
                                 block=1 if b == "1" else "auto")
                records[arms[b].format(k=k)].append(dict(
                    face=i, success=p.success, pixels=p.n_pixels, queries=p.queries, block=p.block,
                    p_before=p.confidence_before, p_after=p.confidence_after, agreed=p.agreed, rounds=p.rounds,
                    seconds=round(p.seconds, 1)))
                after = "lost" if p.confidence_after is None else f"{p.confidence_after:.3f}"
                line.append(f"K={k} block {p.block}: photo {'Y' if p.success else '.'} {p.n_pixels}px {p.queries}q "
                            f"p {p.confidence_before:.3f}->{after}")
            c = sparse_attack(model, crop, label, pixels=k, budget=args.budget, seed=i)
            changed = int((c.adversarial != c.original).any(axis=2).sum())
            records[f"crop_{k}"].append(dict(face=i, success=c.success, pixels=changed, queries=c.queries,
                                             seconds=round(c.seconds, 1)))
            line.append(f"K={k}: crop {'Y' if c.success else '.'} {changed}px "
                        f"{c.queries}q p {c.prior_confidence:.3f}->{c.final_confidence:.3f}")
        print(f"face {i} {Path(path).parent.name}/{Path(path).name} {image.shape[1]}x{image.shape[0]} box side "
              f"{side / 1.2:.0f} px ({ratios[-1]:.1f} photo px per crop px): " + " || ".join(line), flush=True)

    print(f"\n{'attack':>16} {'success':>8} {'95% interval':>16} {'pixels on success':>18} {'queries on success':>19} "
          f"{'s/attack':>9}")
    summary_rates, summary_px, summary_q = {}, {}, {}
    for name, recs in records.items():
        wins = [r for r in recs if r["success"]]
        lo, hi = wilson_interval(len(wins), len(recs)) if recs else (0.0, 1.0)
        summary_rates[name] = [len(wins), len(recs), round(lo, 3), round(hi, 3)]
        summary_px[name] = round(float(np.mean([r["pixels"] for r in wins])), 1) if wins else None
        summary_q[name] = round(float(np.mean([r["queries"] for r in wins])), 1) if wins else None
        secs = np.mean([r["seconds"] for r in recs]) if recs else float("nan")
        print(f"{name:>16} {len(wins):>4}/{len(recs):<3} {f'{lo:.0%} to {hi:.0%}':>16} "
              f"{summary_px[name] if summary_px[name] is not None else '-':>18} "
              f"{summary_q[name] if summary_q[name] is not None else '-':>19} {secs:>9.1f}")
    disagreed = sum(not r["agreed"] for name, recs in records.items() if name.startswith("photo") for r in recs)
    ratio = float(np.mean(ratios)) if ratios else float("nan")
    print(f"one crop pixel averages {ratio:.1f} photo pixels on average (face box side x 1.2 margin, over 50, "
          f"squared); the search's pipeline and detect_masks disagreed on {disagreed} final photo(s); "
          f"{time.perf_counter() - started:.0f} s in all")
    summary = {"faces": len(photos), "budget": args.budget, "pixels": ks, "success": summary_rates,
               "mean_pixels_on_success": summary_px, "mean_queries_on_success": summary_q,
               "photo_pixels_per_crop_pixel": round(ratio, 2), "disagreed": disagreed,
               "blocks": {name: [r["block"] for r in recs] for name, recs in records.items() if name.endswith("_blocks")},
               "seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
