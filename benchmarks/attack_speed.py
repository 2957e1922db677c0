"""One-pixel attack speed: ``one_pixel_attack`` against the seed's way, IBM ART and the model's own limit.

Usage::

    .venv/bin/python benchmarks/attack_speed.py [--model PATH] [--data FOLDER] [--faces 10] [--no-art]
    .venv/bin/python benchmarks/attack_speed.py --forward [--xla] [--model PATH]
    .venv/bin/python benchmarks/attack_speed.py --engine [--faces 3] [--rounds 2] [--model PATH]

Everything runs in this one process, on the same model and the same correctly classified faces, at the
paper's budget (1 pixel, population 400, 75 generations, recombination 1, probability fitness, stop as
soon as the label flips), face by face in turn so that a busy machine slows every method alike:

* **ours**: ``maskedu.attack.one_pixel_attack(model, face, label, **PAPER)``: scipy's DE with
  ``vectorized=True`` (one batched model call per generation), the population applied by array indexing,
  identical whole-pixel candidates answered from a cache instead of re-queried.
* **the seed's way**: a faithful re-implementation of the Hyperparticle/one-pixel-attack-keras code the
  paper followed: the population copied with ``np.tile``, a Python loop writing each candidate's pixel,
  ``model.predict`` with its default batch size (32) on the whole population each generation, and the
  early-stop callback predicting the best candidate once more per generation. The same scipy DE (the
  seed used a copy of it modified to score the population in one call, which is what ``vectorized=True``
  does). ``verbose=0``: the Keras of the seed printed nothing by default.
* **ART**: ``art.attacks.evasion.PixelAttack(classifier, th=1, es=1, max_iter=75)`` (DE), when the
  ``adversarial-robustness-toolbox`` package can be imported (it is not a maskedu dependency: install it
  into a throwaway folder and pass ``--art-path FOLDER``; skipped otherwise).
* **raw forward throughput**: the same model predicting batches of 400 different faces as fast as it can
  (the best of ``predict_on_batch`` and the prediction function ``one_pixel_attack`` uses), measured
  before the first face and again after each of our attacks (the mean is reported), so that a busy
  machine slows it as much as the attacks.

``--forward`` only compares ways of running the forward pass on batches of 100 uint8 faces, side by side
(:func:`forward_comparison`): the prediction function as it was, as it is, and with ``--xla`` compiled by XLA;
it prints their rates, the ratios and whether the outputs are identical.

``--engine`` only compares the two ways ``make_predict_fn`` can run the model (:func:`engine_comparison`):
``keras`` (TensorFlow, the default) and ``tflite`` (the same network converted to TensorFlow Lite), each
running whole attacks at the paper's budget with the margin fitness (notebook 05's study) on ``--faces``
faces, the order of the engines reversed every other round; it prints the median seconds per attack of
each, their ratio, and whether the two found the same pixels and verdicts.

``efficiency`` is our model queries per second of attack time divided by that raw throughput: how much
of the model's own speed the attack code keeps. The last line printed is one JSON object.
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

from attack_success import load_faces, load_or_train_model  # noqa: E402

from maskedu.attack import PAPER, Scorer, one_pixel_attack  # noqa: E402


# --------------------------------------------------------------------------- the seed's way, faithfully


def seed_perturb_image(xs: np.ndarray, img: np.ndarray) -> np.ndarray:
    """The seed's perturb_image: tile the image once per candidate, then a Python loop over candidates."""
    if xs.ndim < 2:
        xs = np.array([xs])
    tile = [len(xs)] + [1] * (xs.ndim + 1)
    imgs = np.tile(img, tile)
    xs = xs.astype(int)
    for x, im in zip(xs, imgs):
        pixels = np.split(x, len(x) // 5)
        for pixel in pixels:
            x_pos, y_pos, *rgb = pixel
            im[x_pos, y_pos] = rgb
    return imgs


def seed_attack(model, img: np.ndarray, label: int, *, pixel_count=1, maxiter=75, popsize=400, seed=0) -> dict:
    """The seed's attack(): scipy DE, popsize as a multiplier (400 // 5 = 80 -> 400 candidates)."""
    from scipy.optimize import differential_evolution

    h, w = img.shape[:2]
    bounds = [(0, h), (0, w), (0, 256), (0, 256), (0, 256)] * pixel_count  # the seed indexes img[x, y]
    popmul = max(1, popsize // len(bounds))
    queries = {"n": 0}

    def predict_classes(xs):
        imgs = seed_perturb_image(xs.T, img)  # vectorized: scipy passes (parameters, S)
        queries["n"] += len(imgs)
        return model.predict(imgs, verbose=0)[:, label]

    def attack_success(x, convergence):
        attack_image = seed_perturb_image(x, img)
        queries["n"] += 1
        confidence = model.predict(attack_image, verbose=0)[0]
        return bool(np.argmax(confidence) != label)

    start = time.perf_counter()
    res = differential_evolution(predict_classes, bounds, maxiter=maxiter, popsize=popmul, recombination=1,
                                 atol=-1, callback=attack_success, polish=False, vectorized=True,
                                 updating="deferred", rng=seed)
    adv = seed_perturb_image(res.x, img)[0]
    probs = model.predict(adv[None], verbose=0)[0]
    return dict(success=bool(np.argmax(probs) != label), seconds=time.perf_counter() - start, queries=queries["n"],
                generations=int(res.nit))


# --------------------------------------------------------------------------- ART


def art_attacks(model, faces: np.ndarray, labels: np.ndarray, art_path: str | None) -> dict | None:
    if art_path:
        sys.path.insert(0, art_path)
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from art.attacks.evasion import PixelAttack
            from art.estimators.classification import TensorFlowV2Classifier
    except Exception as exc:  # not installed, or a dependency missing
        print(f"ART: skipped ({type(exc).__name__}: {exc})")
        return None
    import keras
    import tensorflow as tf

    clf = TensorFlowV2Classifier(model=model, nb_classes=2, input_shape=faces.shape[1:], clip_values=(0, 255),
                                 loss_object=keras.losses.SparseCategoricalCrossentropy())
    attack = PixelAttack(clf, th=1, es=1, max_iter=75, targeted=False, verbose=False)
    out = []
    for face, label in zip(faces, labels):
        start = time.perf_counter()
        try:  # y=None: ART attacks the predicted class, which is the label on these correctly classified faces
            adv = attack.generate(face[None].astype(np.float32), y=None)
        except Exception as exc:
            print(f"ART: failed ({type(exc).__name__}: {exc})")
            return None
        secs = time.perf_counter() - start
        pred = int(np.argmax(model.predict(np.clip(adv, 0, 255).astype(np.uint8), verbose=0)[0]))
        out.append(dict(seconds=secs, success=pred != label))
        print(f"  ART   face: {'flipped' if pred != label else 'held   '} {secs:6.1f} s", flush=True)
    del tf
    return dict(s_per_attack=float(np.mean([o["seconds"] for o in out])), success=int(sum(bool(o["success"]) for o in out)))


# --------------------------------------------------------------------------- raw throughput


def raw_throughput(model, faces: np.ndarray, seconds: float = 4.0, verbose: bool = True) -> float:
    """Images per second of the bare forward pass on batches of 400 different faces (best of two ways)."""
    rng = np.random.default_rng(0)
    batch = np.ascontiguousarray(faces[rng.integers(0, len(faces), 400)])
    batch = batch.copy()
    batch[:, 0, 0] = rng.integers(0, 256, (400, 3))  # 400 different images
    scorer = Scorer(model)
    best = 0.0
    for name, fn in [("predict_on_batch", lambda b: model.predict_on_batch(b)), ("attack's predict", scorer)]:
        fn(batch)  # warm up (trace)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 2:
            fn(batch)
            n += len(batch)
        rate = n / (time.perf_counter() - start)
        if verbose:
            print(f"raw forward ({name}): {rate:,.0f} images/s")
        best = max(best, rate)
    return best


def forward_comparison(model, *, xla: bool = False, batch: int = 100, calls: int = 10, rounds: int = 4) -> dict:
    """The attack's forward pass, ways side by side on the same ``batch`` different uint8 faces (the Scorer's
    chunk), ``calls`` calls per round, the order of the ways reversed every other round so that load changes
    hit them alike:

    * ``before``: what ``PredictFn`` did before: a ``tf.function`` taking float32, the batch converted in numpy,
      called through the function's argument binding;
    * ``now``: ``PredictFn`` (the uint8 batch cast inside the graph, the traced graph called directly);
    * ``xla`` (with ``xla=True``): the same forward pass compiled by XLA (``jit_compile=True``).
    """
    import tensorflow as tf

    from maskedu.model import PredictFn

    predict = PredictFn(model)
    sub = predict._sub
    spec = tf.TensorSpec((None, *predict.input_shape), tf.float32)

    def forward(x):
        z = sub(x, training=False)
        return tf.nn.softmax(z, axis=-1), z

    before = tf.function(forward, input_signature=[spec], reduce_retracing=True)
    ways = {"before": lambda b: tuple(t.numpy() for t in before(b.astype(np.float32))), "now": predict.both}
    if xla:
        compiled = tf.function(forward, input_signature=[spec], jit_compile=True)
        ways["xla"] = lambda b: tuple(t.numpy() for t in compiled(b.astype(np.float32)))
    x = np.random.default_rng(0).integers(0, 256, (batch, *predict.input_shape), dtype=np.uint8)
    out = {name: fn(x) for name, fn in ways.items()}  # trace / compile, untimed
    identical = all(np.array_equal(out["before"][k], out["now"][k]) for k in (0, 1))
    diff = {name: float(max(np.abs(out["before"][k] - o[k]).max() for k in (0, 1))) for name, o in out.items()}
    seconds = dict.fromkeys(ways, 0.0)
    order = list(ways)
    for r in range(rounds):
        for name in (order if r % 2 == 0 else order[::-1]):
            start = time.perf_counter()
            for _ in range(calls):
                ways[name](x)
            seconds[name] += time.perf_counter() - start
    n = rounds * calls * batch
    rates = {name: n / sec for name, sec in seconds.items()}
    print(" | ".join(f"{name}: {rate:,.0f} images/s" for name, rate in rates.items()))
    print(f"now/before {rates['now'] / rates['before']:.3f}x, outputs identical: {identical}"
          + (f"; xla/before {rates['xla'] / rates['before']:.3f}x, largest difference {diff['xla']:.2e}" if xla else ""))
    summary = {"batch": batch, **{f"{name}_per_s": round(rate, 1) for name, rate in rates.items()},
               "now_over_before": round(rates["now"] / rates["before"], 3), "identical": identical}
    if xla:
        summary.update(xla_over_before=round(rates["xla"] / rates["before"], 3), xla_max_abs_diff=diff["xla"])
    return summary


def engine_comparison(model, faces: np.ndarray, labels: np.ndarray, *, rounds: int = 2) -> dict:
    """Whole paper-budget attacks (margin fitness) through ``make_predict_fn(model)`` ("keras") and
    ``make_predict_fn(model, engine="tflite")``, face by face, ``rounds`` times each, alternating which engine
    goes first. Reports the median seconds per attack of each engine and the median of the per-attack ratios,
    and checks that both engines found the same pixels, and the same verdict once Keras re-scores TFLite's image."""
    from maskedu.model import make_predict_fn

    settings = {**PAPER, "fitness": "margin"}
    fns = {"keras": make_predict_fn(model), "tflite": make_predict_fn(model, engine="tflite")}
    for fn in fns.values():  # warm up: trace / convert and size the interpreter, untimed
        one_pixel_attack(fn, faces[0], int(labels[0]), **{**settings, "maxiter": 1}, seed=0)
    seconds = {name: [] for name in fns}
    same_pixels = same_verdict = 0
    for r in range(rounds):
        for i, (face, label) in enumerate(zip(faces, labels)):
            order = list(fns) if (r + i) % 2 == 0 else list(fns)[::-1]
            res = {}
            for name in order:
                res[name] = one_pixel_attack(fns[name], face, int(label), **settings, seed=i)
                seconds[name].append(res[name].seconds)
            keras_says = bool(fns["keras"](res["tflite"].adversarial).argmax() != label)
            same_pixels += bool(np.array_equal(res["keras"].pixels, res["tflite"].pixels))
            same_verdict += keras_says == res["keras"].success == res["tflite"].success
            print(f"round {r} face {i}: keras {res['keras'].seconds:6.2f} s ({'flipped' if res['keras'].success else 'held'}, "
                  f"{res['keras'].queries:,} queries) | tflite {res['tflite'].seconds:6.2f} s "
                  f"({'flipped' if res['tflite'].success else 'held'}, {res['tflite'].queries:,} queries)", flush=True)
    ratios = [k / t for k, t in zip(seconds["keras"], seconds["tflite"])]
    n = len(ratios)
    summary = {"faces": len(faces), "rounds": rounds,
               "keras_median_s": round(float(np.median(seconds["keras"])), 3),
               "tflite_median_s": round(float(np.median(seconds["tflite"])), 3),
               "ratio_median": round(float(np.median(ratios)), 3),
               "same_pixels": f"{same_pixels}/{n}", "same_verdict": f"{same_verdict}/{n}"}
    print(f"keras {summary['keras_median_s']:.2f} s, tflite {summary['tflite_median_s']:.2f} s per paper-budget attack "
          f"(medians of {n}): tflite is {summary['ratio_median']:.2f}x as fast (median of the per-attack ratios); "
          f"same pixels {same_pixels}/{n}, same verdict (Keras re-scoring TFLite's image) {same_verdict}/{n}")
    return summary


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="a saved Keras model (default: the training benchmark's data/models/"
                    "resnet-realfaces.keras, else data/models/resnet.keras, else one is trained)")
    ap.add_argument("--data", help="class folders of face photos (default ../shared/realfaces)")
    ap.add_argument("--faces", type=int, default=10)
    ap.add_argument("--no-art", action="store_true")
    ap.add_argument("--art-faces", type=int, default=10, help="how many of the faces ART attacks (it is slow)")
    ap.add_argument("--art-path", help="folder ART was pip-installed into with --target (added to sys.path)")
    ap.add_argument("--forward", action="store_true", help="only compare ways of running the forward pass on --model, "
                    "or an untrained build_resnet() (same speed), and exit")
    ap.add_argument("--xla", action="store_true", help="with --forward: also the XLA-compiled forward pass")
    ap.add_argument("--rounds", type=int, default=None,
                    help="with --forward: timed rounds of each way (default 4); with --engine: attacks per face and engine (default 2)")
    ap.add_argument("--engine", action="store_true", help="only compare the keras and tflite engines of make_predict_fn "
                    "on whole paper-budget attacks of --faces faces, and exit")
    args = ap.parse_args(argv)
    if args.engine:
        model, model_note = load_or_train_model(args.model, args.data)
        faces, labels, data_note = load_faces(model, args.data, args.faces, seed=0)
        print(f"model: {model_note}")
        print(f"faces: {data_note}")
        summary = engine_comparison(model, faces, labels, rounds=args.rounds or 2)
        print(json.dumps(summary))
        return summary
    if args.forward:
        from maskedu.model import build_resnet, load_model

        summary = forward_comparison(load_model(args.model) if args.model else build_resnet(), xla=args.xla,
                                     rounds=args.rounds or 4)
        print(json.dumps(summary))
        return summary

    model, model_note = load_or_train_model(args.model, args.data)
    faces, labels, data_note = load_faces(model, args.data, args.faces, seed=0)
    print(f"model: {model_note}")
    print(f"faces: {data_note}")
    raw = raw_throughput(model, faces)

    ours, seeds = [], []
    one_pixel_attack(model, faces[0], int(labels[0]), **{**PAPER, "maxiter": 1}, seed=0)  # warm up both paths
    model.predict(faces[:2], verbose=0)
    raws = [raw]
    for i, (face, label) in enumerate(zip(faces, labels)):
        r = one_pixel_attack(model, face, int(label), **PAPER, seed=i)
        ours.append(r)
        raws.append(raw_throughput(model, faces, seconds=2.0, verbose=False))  # the model's limit, right now
        s = seed_attack(model, face, int(label), seed=i)
        seeds.append(s)
        print(f"face {i}: raw {raws[-1]:,.0f}/s | ours {'flipped' if r.success else 'held   '} {r.seconds:6.2f} s {r.queries:6,} queries "
              f"({r.evaluations:,} scored, {r.generations} gens) | seed's way {'flipped' if s['success'] else 'held   '} "
              f"{s['seconds']:6.2f} s {s['queries']:6,} queries ({s['generations']} gens)", flush=True)

    art = None if args.no_art else art_attacks(model, faces[: args.art_faces], labels[: args.art_faces], args.art_path)
    ours_s = float(np.mean([r.seconds for r in ours]))
    seed_s = float(np.mean([s["seconds"] for s in seeds]))
    q_per_s = sum(r.queries for r in ours) / sum(r.seconds for r in ours)
    raw = float(np.mean(raws))  # measured between the attacks, so a busy machine slows it alike
    summary = {
        "faces": len(faces),
        "s_per_attack": round(ours_s, 3),
        "seed_s_per_attack": round(seed_s, 3),
        "ratio": round(seed_s / ours_s, 2),
        "ratio_median": round(float(np.median([s["seconds"] / r.seconds for r, s in zip(ours, seeds)])), 2),
        "queries_per_s": round(q_per_s, 1),
        "raw_forward_per_s": round(raw, 1),
        "efficiency": round(q_per_s / raw, 3),
        "art_s_per_attack": None if art is None else round(art["s_per_attack"], 3),
        "success": sum(r.success for r in ours),
        "seed_success": sum(s["success"] for s in seeds),
        "art_success": None if art is None else art["success"],
        "queries_per_attack": round(float(np.mean([r.queries for r in ours])), 1),
        "seed_queries_per_attack": round(float(np.mean([s["queries"] for s in seeds])), 1),
    }
    print(f"ours: {ours_s:.2f} s per attack, seed's way: {seed_s:.2f} s ({summary['ratio']}x), "
          f"{q_per_s:,.0f} queries/s = {summary['efficiency']:.0%} of the raw {raw:,.0f} images/s")
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
