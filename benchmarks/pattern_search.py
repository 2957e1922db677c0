"""Benchmark for notebook 06: the adversarial mask pattern search.

1. Speed: fitness evaluations per second of the in-memory pipeline (OpenCV warps -> HOG detector)
   against the original's way (PIL paste -> PNG file on disk -> cv2.imread -> HOG detector), measured
   side by side in interleaved rounds on the same states. Target: at least 2x.
2. Quality: with the original's budget (1000 iterations, 6 copies of the HOG decoy, exponential
   cooling) against dlib's HOG detector, over 5 seeds: detections on the best pattern found by
   simulated annealing with the count-only fitness (the original's), with the smooth fitness, and by
   random search with the same number of evaluations. Targets: smooth >= count in every seed and more
   on average; annealing beats random search on average.

Run:  .venv/bin/python benchmarks/pattern_search.py            (about 5 minutes on 2 busy cores)
      .venv/bin/python benchmarks/pattern_search.py --iters 200 --seeds 0 1   (a quick look)
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from maskedu import pattern as P


def render_pil(space: P.PatternSpace, state: np.ndarray) -> Image.Image:
    """The original's rendering: resize, rotate and paste each copy of the tile with PIL."""
    w, h = space.canvas
    canvas = Image.new("RGB", (w, h), tuple(int(c) for c in space.background))
    rgba = np.dstack([space.decoy.rgb, np.round(space.decoy.alpha * 255).astype(np.uint8)])
    tile = Image.fromarray(rgba, "RGBA")
    tw, th = tile.size
    for x, y, rot, scale in state:
        t = tile.resize((max(1, round(tw * scale)), max(1, round(th * scale))), Image.Resampling.BILINEAR)
        t = t.rotate(float(rot), resample=Image.Resampling.BILINEAR, expand=True)
        canvas.paste(t, (int(round(x - t.width / 2)), int(round(y - t.height / 2))), t)
    return canvas


def original_fitness(space: P.PatternSpace, path: Path):
    """Render with PIL, write the PNG, read it back with OpenCV, count dlib's detections (as the original did)."""
    import dlib

    detector = dlib.get_frontal_face_detector()

    def fitness(state: np.ndarray) -> float:
        render_pil(space, state).save(path, "PNG")
        image = cv2.imread(str(path))
        return float(len(detector(image, 0)))

    return fitness


def measure_speed(space: P.PatternSpace, *, rounds: int = 6, per_round: int = 40, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    states = [space.random_state(rng) for _ in range(per_round)]
    ours = P.make_fitness(space, P.get_detector("hog"), "count")
    with tempfile.TemporaryDirectory() as tmp:
        theirs = original_fitness(space, Path(tmp) / "image.png")
        ours(states[0]), theirs(states[0])  # warm up
        t_ours = t_theirs = 0.0
        for _ in range(rounds):  # interleaved, so a busy machine slows both alike
            t = time.perf_counter()
            for s in states:
                ours(s)
            t_ours += time.perf_counter() - t
            t = time.perf_counter()
            for s in states:
                theirs(s)
            t_theirs += time.perf_counter() - t
    n = rounds * per_round
    return n / t_ours, n / t_theirs


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=1000, help="search budget per run (the original: 1000)")
    parser.add_argument("--copies", type=int, default=6, help="decoy copies (the original: 6)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--decoy", default="hog", choices=P.DECOYS)
    args = parser.parse_args(argv)
    os.environ.setdefault("MASKEDU_NO_PROGRESS", "1")

    space = P.PatternSpace(decoy=args.decoy, n_copies=args.copies)
    ours, theirs = measure_speed(space)
    print(f"speed: in-memory {ours:.1f} evals/s, original (PNG on disk + cv2.imread) {theirs:.1f} evals/s, ratio {ours / theirs:.2f}x")

    detector = P.get_detector("hog")
    rows = []
    for seed in args.seeds:
        row = {"seed": seed}
        for key, fitness, method in (("count", "count", "annealing"), ("smooth", "smooth", "annealing"), ("random", "smooth", "random")):
            t = time.perf_counter()
            r = P.search_pattern(detector, space=space, fitness=fitness, method=method, max_iters=args.iters, seed=seed)
            row[key] = r.n_detections
            row[key + "_s"] = time.perf_counter() - t
        rows.append(row)
        print(f"  seed {seed}: count {row['count']}  smooth {row['smooth']}  random {row['random']}", flush=True)

    count = [r["count"] for r in rows]
    smooth = [r["smooth"] for r in rows]
    rnd = [r["random"] for r in rows]
    print()
    print(f"Decoy pattern vs dlib HOG: {args.copies} copies of the '{args.decoy}' decoy, {args.iters} iterations, detections on the best pattern")
    print(f"{'seed':>6} | {'SA, count fitness':>17} | {'SA, smooth fitness':>18} | {'random search':>13}")
    print("-" * 64)
    for r in rows:
        print(f"{r['seed']:>6} | {r['count']:>17} | {r['smooth']:>18} | {r['random']:>13}")
    print("-" * 64)
    print(f"{'mean':>6} | {np.mean(count):>17.2f} | {np.mean(smooth):>18.2f} | {np.mean(rnd):>13.2f}")
    seconds = np.mean([r["smooth_s"] for r in rows])
    print(f"(one 1000-iteration search takes about {seconds:.0f} s here)" if args.iters == 1000 else f"(one search: {seconds:.1f} s)")
    checks = {
        "speed ratio >= 2": ours / theirs >= 2,
        "smooth >= count in every seed": all(s >= c for s, c in zip(smooth, count)),
        "smooth > count on average": np.mean(smooth) > np.mean(count),
        "annealing (smooth) > random search on average": np.mean(smooth) > np.mean(rnd),
    }
    for name, ok in checks.items():
        print(f"  [{'x' if ok else ' '}] {name}")
    result = {
        "evals_per_s": round(ours, 2),
        "baseline_evals_per_s": round(theirs, 2),
        "ratio": round(ours / theirs, 3),
        "seeds": list(args.seeds),
        "count_fitness_detections": count,
        "smooth_fitness_detections": smooth,
        "random_search_detections": rnd,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
