"""How often the one-pixel attack (and its many-pixel versions) flips a trained mask classifier.

Usage::

    .venv/bin/python benchmarks/attack_success.py --model PATH [--data FOLDER] [--faces 100]
        [--pixels 1,3,5,10,20] [--budget 400,75] [--no-strong] [--save FILE.json]

FOLDER holds class folders (``with_mask/``, ``without_mask/``; default ``../shared/realfaces``); its faces
are cut out with ``maskedu.crop.crop_faces`` (MTCNN, cached; the whole photo where no face is found), as
``benchmarks/train_accuracy.py`` does, and its held-out 20 % of photos are used: the first N of their faces
that the model classifies correctly (in a fixed shuffled order) are attacked:

* ``probability_1``: the paper's attack exactly (``**PAPER``: 1 pixel, 400 x 75, probability fitness);
* ``margin_K`` for each K in ``--pixels``: the same search with the margin fitness and K pixels;
* ``sparse_20``: our strongest search within the paper's 30,000 queries (``sparse_attack(**SPARSE)``:
  20 pixels, each colour channel 0 or 255, a sensitivity scan then greedy random search, margin fitness);
* ``de_extreme_20``: DE given the same 20 extreme-colour pixels (``**MANY_PIXELS``), to compare;
  both unless ``--no-strong``.

Every attack of a face uses the same seed. The table printed has success rate, mean queries to success and
the median drop of the true-class probability; the last line is one JSON object.
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

from maskedu.attack import MANY_PIXELS, PAPER, SPARSE, Scorer, one_pixel_attack, sparse_attack
from maskedu.common import artifact_path, realfaces_dir


# --------------------------------------------------------------------------- shared with attack_speed.py


def load_or_train_model(path: str | None, data: str | None):
    """The model to attack: ``path``, else the training benchmark's ``data/models/resnet-realfaces.keras``
    (``benchmarks/train_accuracy.py``), else one trained here on the training photos (``build_resnet()`` +
    ``train()``). The notebooks' ``data/models/resnet.keras`` is never used: it learned the embedded sample,
    not these photos, so its figures here would describe another model."""
    if path is None and data is None:
        default = artifact_path("models/resnet-realfaces.keras", fast=False)
        if default.is_file():
            path = str(default)
    from maskedu.model import build_resnet, count_flops, load_model, train

    if path is not None:
        model = load_model(path)
        note = path
    else:
        crops, in_test = _crops(data)
        result = train(build_resnet(), crops.subset(~in_test), test=0.0, validation=0.1, seed=0, live_plot=False,
                       verbose=False)
        model = result.model
        note = f"build_resnet() trained here on the {int((~in_test).sum())} training faces of {data or 'realfaces'}"
    try:
        note += f" ({count_flops(model) / 1e6:.1f} MFLOPs per face)"
    except Exception:  # pragma: no cover - counting is a nicety
        pass
    return model, note


def _crops(data: str | None, *, fallback: str = "whole", seed: int = 0):
    """Face crops of a class-folder set and a mask of those from the held-out photos.

    The same crops and the same held-out 20 % of photos as ``benchmarks/train_accuracy.py`` (stratified by
    class, ``seed`` 0), so a model it saved is attacked on faces it never trained on.
    """
    from maskedu.annotations import load_class_folders
    from maskedu.crop import crop_faces
    from maskedu.model import stratified_split

    folder = Path(data) if data else realfaces_dir()
    if folder is None:
        sys.exit("no --data FOLDER given and ../shared/realfaces is absent.")
    ds = load_class_folders(folder)
    crops = crop_faces(ds, fallback=fallback, verbose=False)
    photos = np.array([str(r.path) for r in ds.images])
    names = list(crops.class_names)
    plabels = np.array([names.index(r.label) if r.label in names else -1 for r in ds.images])
    split = stratified_split(plabels, validation=0.0, test=0.2, seed=seed)
    test_set = set(photos[split.test])
    in_test = np.array([str(p) in test_set for p in crops.paths])
    return crops, in_test


def load_faces(model, data: str | None, n: int, *, seed: int = 0):
    """N held-out faces the model classifies correctly, in a fixed shuffled order, with their labels."""
    crops, in_test = _crops(data)
    keep = (crops.labels >= 0) & in_test
    images, labels = crops.images[keep], crops.labels[keep]
    probs, _ = Scorer(model)(images)
    correct = np.flatnonzero(probs.argmax(axis=1) == labels)
    order = np.random.default_rng(seed).permutation(correct)[:n]
    note = (f"{len(order)} of the {len(correct)} correctly classified held-out faces ({len(images)} held-out faces, "
            f"accuracy {len(correct) / max(1, len(images)):.1%})")
    return images[order], labels[order], note


# --------------------------------------------------------------------------- the study


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="a saved Keras model (default: data/models/resnet-realfaces.keras from "
                    "benchmarks/train_accuracy.py --save, else data/models/resnet.keras, else one is trained)")
    ap.add_argument("--data", help="class folders of face photos (default ../shared/realfaces)")
    ap.add_argument("--faces", type=int, default=100)
    ap.add_argument("--pixels", default="1,3,5,10,20")
    ap.add_argument("--budget", default="400,75", help="population,generations (the paper: 400,75)")
    ap.add_argument("--no-strong", action="store_true")
    ap.add_argument("--save", help="also write the per-attack records as JSON here")
    args = ap.parse_args(argv)
    pixels = [int(p) for p in args.pixels.split(",") if p.strip()]
    popsize, maxiter = (int(v) for v in args.budget.split(","))

    model, model_note = load_or_train_model(args.model, args.data)
    faces, labels, data_note = load_faces(model, args.data, args.faces)
    print(f"model: {model_note}\nfaces: {data_note}\nbudget: {popsize} x ({maxiter} + 1) = {popsize * (maxiter + 1):,} candidates")
    scorer = Scorer(model)
    configs = {"probability_1": dict(PAPER, popsize=popsize, maxiter=maxiter)}
    for p in pixels:
        configs[f"margin_{p}"] = dict(PAPER, pixels=p, fitness="margin", popsize=popsize, maxiter=maxiter)
    if not args.no_strong:
        configs["de_extreme_20"] = dict(MANY_PIXELS, popsize=popsize, maxiter=maxiter)
        configs["sparse_20"] = dict(SPARSE, budget=min(SPARSE["budget"], popsize * (maxiter + 1)))
    records = {name: [] for name in configs}
    started = time.perf_counter()
    for i, (face, label) in enumerate(zip(faces, labels)):
        line = []
        for name, cfg in configs.items():
            run = sparse_attack if name.startswith("sparse") else one_pixel_attack
            r = run(scorer, face, int(label), seed=i, **cfg)
            records[name].append(dict(face=i, success=r.success, queries=r.queries, evaluations=r.evaluations,
                                      drop=r.confidence_drop, prior=r.prior_confidence, final=r.final_confidence,
                                      seconds=r.seconds))
            line.append(f"{name} {'Y' if r.success else '.'} {r.confidence_drop:.3f}")
        print(f"face {i:3d} p={records['probability_1'][-1]['prior']:.6f}: " + " | ".join(line), flush=True)
    print(f"\n{'attack':>14} {'success':>8} {'rate':>7} {'queries to success':>19} {'median drop':>12} {'s/attack':>9}")
    success, q_success, drops = {}, {}, {}
    for name, recs in records.items():
        wins = [r for r in recs if r["success"]]
        success[name] = round(len(wins) / len(recs), 4)
        q_success[name] = round(float(np.mean([r["queries"] for r in wins])), 1) if wins else None
        drops[name] = round(float(np.median([r["drop"] for r in recs])), 6)
        print(f"{name:>14} {len(wins):>4}/{len(recs):<3} {success[name]:>7.1%} "
              f"{q_success[name] if q_success[name] is not None else '-':>19} {drops[name]:>12.6f} "
              f"{np.mean([r['seconds'] for r in recs]):>9.2f}")
    prob_p = np.array([r["prior"] for r in records["probability_1"]])
    print(f"(the paper: 1.77% at 1 pixel) · true-class p exactly 1.0 on {int((prob_p == 1.0).sum())} of {len(prob_p)} "
          f"faces, above 0.9999 on {int((prob_p > 0.9999).sum())} · {time.perf_counter() - started:.0f} s in all")
    if args.save:
        Path(args.save).write_text(json.dumps(records))
    summary = {"faces": len(faces), "success": success, "mean_queries_to_success": q_success,
               "median_confidence_drop": drops}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
