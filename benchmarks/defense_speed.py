"""Where the defense grid's time goes: each attack against each defense on the same faces, the attacks querying
Keras and TensorFlow Lite side by side; and the 3 x 3 median filter against scipy's.

Usage::

    .venv/bin/python benchmarks/defense_speed.py [--faces 1] [--attacks one_pixel,sparse_20,label_only,pgd]
        [--budget 30000] [--de 400,75] [--rounds 5]

Faces and model as ``benchmarks/defense_eval.py`` takes them (the first held-out faces of its fixed order, the
training benchmark's realfaces model). Defenses: median, jpeg, squeeze (adv_train is the plain network with other
weights: it costs what "none" costs). For each attack the engines take turns (keras, then tflite) on the same
faces with the same seeds; the table gives seconds per face for each defense (its adaptive variants included),
the ratio, and per defense whether the two runs reached the same verdicts and spent the same queries (the
engines agree to about 1e-6, which can still send a greedy search down another path). Then ``median3x3`` against
``scipy.ndimage.median_filter`` on a batch of 100 faces, alternating ``--rounds`` rounds, and the two equal.
Last, one JSON object.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))


def median_speed(faces: np.ndarray, rounds: int) -> dict:
    """Seconds per batch of ``median3x3`` and of scipy's median filter, median of alternating rounds."""
    from scipy.ndimage import median_filter

    from maskedu.defend import median3x3

    batch = np.resize(faces, (100, *faces.shape[1:])).astype(np.uint8)
    runs = {"scipy": lambda: median_filter(batch, size=(1, 3, 3, 1), mode="reflect"), "median3x3": lambda: median3x3(batch)}
    same = bool(np.array_equal(runs["scipy"](), runs["median3x3"]()))
    times = {k: [] for k in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    per = {k: float(np.median(v)) for k, v in times.items()}
    return {"scipy_ms": round(per["scipy"] * 1e3, 2), "median3x3_ms": round(per["median3x3"] * 1e3, 2),
            "ratio": round(per["scipy"] / per["median3x3"], 1), "equal": same}


def main(argv=None) -> dict | None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="a saved Keras model (as defense_eval.py)")
    ap.add_argument("--data", help="class folders of face photos (as defense_eval.py)")
    ap.add_argument("--faces", type=int, default=1)
    ap.add_argument("--attacks", default="one_pixel,sparse_20,label_only,pgd")
    ap.add_argument("--budget", type=int, default=30_000)
    ap.add_argument("--de", default="400,75")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    if args.faces < 1 or args.rounds < 1:
        ap.error("--faces and --rounds take a whole number of at least 1.")

    from maskedu.common import realfaces_dir

    if args.data is None and realfaces_dir() is None:
        message = "skipped: ../shared/realfaces is absent on this machine and no --data FOLDER was given."
        if os.environ.get("CI") == "true":
            sys.exit(message)
        print(message)
        return None

    from defense_eval import held_out_faces

    from maskedu.attack import PAPER
    from maskedu.defend import ATTACKS, BitDepth, JpegDefense, MedianFilter, evaluate_defenses

    attacks = [a.strip() for a in args.attacks.split(",") if a.strip()]
    wrong = [a for a in attacks if a not in ATTACKS]
    if wrong:
        ap.error(f"--attacks takes names from {', '.join(ATTACKS)}, got {', '.join(wrong)}.")
    popsize, maxiter = (int(v) for v in args.de.split(","))
    started = time.perf_counter()
    held = held_out_faces(args.model, args.data)
    order = np.random.default_rng(0).permutation(len(held.images))[: args.faces]  # defense_eval.py's first faces
    faces, labels = held.images[order], held.labels[order]
    model = held.model
    defenses = {"median": MedianFilter(model), "jpeg": JpegDefense(model), "squeeze": BitDepth(model)}
    print(f"model: {held.note}\n{len(faces)} held-out face(s); budgets {args.budget:,} queries, one_pixel "
          f"{popsize} x ({maxiter} + 1)", flush=True)
    settings = dict(one_pixel=dict(PAPER, popsize=popsize, maxiter=maxiter), sparse_budget=args.budget,
                    label_budget=args.budget)
    for engine in ("keras", "tflite"):  # convert and trace before the clock starts
        evaluate_defenses(model, faces[:1], labels[:1], defenses, attacks=("pgd",), engine=engine)

    rows = []
    for attack in attacks:
        seconds, records = {}, {}
        for engine in ("keras", "tflite"):
            clock = {"t": time.perf_counter()}
            spent = seconds[engine] = {}

            def tick(what, i, spent=spent, clock=clock):
                now = time.perf_counter()
                name = what.split(" vs ")[1] if " vs " in what else "none"
                spent[name] = spent.get(name, 0.0) + now - clock["t"]
                clock["t"] = now

            rep = evaluate_defenses(model, faces, labels, defenses, attacks=(attack,), engine=engine, on_face=tick,
                                    **settings)
            records[engine] = [(r["defense"], r["face"], r["adaptive"], r["success"], r["queries"]) for r in rep.records]
        for d in ("none", *defenses):
            k, t = seconds["keras"].get(d), seconds["tflite"].get(d)
            if k is None or t is None:
                continue
            rows.append(dict(attack=attack, defense=d, keras_s=round(k / len(faces), 2),
                             tflite_s=round(t / len(faces), 2), ratio=round(k / t, 2)))
        for row in rows:
            if row["attack"] == attack:  # per defense: a greedy search can take another path on a 1e-6 difference
                mine = {e: [r for r in records[e] if r[0] == row["defense"]] for e in records}
                row["same_verdicts"] = [r[:4] for r in mine["keras"]] == [r[:4] for r in mine["tflite"]]
                row["same_queries"] = [r[4] for r in mine["keras"]] == [r[4] for r in mine["tflite"]]
        print(f"  {attack} done, {time.perf_counter() - started:.0f} s", flush=True)

    print(f"\n{'attack':>11} {'defense':>8} {'keras s/face':>13} {'tflite s/face':>14} {'keras/tflite':>13}"
          f"  same verdicts  same queries")
    for r in rows:
        print(f"{r['attack']:>11} {r['defense']:>8} {r['keras_s']:>13.2f} {r['tflite_s']:>14.2f} {r['ratio']:>12.2f}x"
              f"  {'yes' if r['same_verdicts'] else 'NO':>13}  {'yes' if r['same_queries'] else 'NO':>12}")
    total = {e: sum(r[f"{e}_s"] for r in rows) for e in ("keras", "tflite")}
    print(f"{'all':>11} {'':>8} {total['keras']:>13.2f} {total['tflite']:>14.2f} "
          f"{total['keras'] / max(total['tflite'], 1e-9):>12.2f}x")
    med = median_speed(held.images, args.rounds)
    print(f"\n3x3 median of 100 faces: scipy {med['scipy_ms']:.2f} ms, median3x3 {med['median3x3_ms']:.2f} ms "
          f"({med['ratio']}x), equal: {med['equal']}")
    doc = dict(faces=len(faces), rows=rows, seconds_per_face={k: round(v, 2) for k, v in total.items()}, median=med,
               run_s=round(time.perf_counter() - started, 1),
               settings=dict(attacks=attacks, budget=args.budget, de=[popsize, maxiter], model=held.note))
    print(json.dumps(doc))
    return doc


if __name__ == "__main__":
    main()
