"""Every defense against every attack, non-adaptive and adaptive, on held-out faces; and the oracle's overhead.

Usage::

    .venv/bin/python benchmarks/defense_eval.py [--model M] [--data FOLDER] [--faces 30]
        [--attacks one_pixel,sparse_20,label_only,pgd] [--defenses median,jpeg,squeeze,adv_train]
        [--budget 30000] [--de 400,75] [--adv-epochs 3] [--engine tflite]
        [--workers N | --scheduler ADDRESS [--scratch DIR]]

Faces: the held-out 20 % of photos of the class-folder set ``../shared/realfaces`` (the training benchmark's
split, as ``benchmarks/attack_success.py`` uses), or with ``--data FOLDER`` and ``--model M`` every face of a
folder the model never saw. Clean accuracy is measured on all of those faces; the first ``--faces`` of them in
a fixed shuffled order are attacked (each defense attacks those it classifies correctly).

Model: ``--model``, else the training benchmark's ``models/resnet-realfaces.keras``, else one trained here
the same way and saved there for the next run.

Defenses: none, median (3x3), jpeg (quality 75), squeeze (3 bits), adv_train (the model fine-tuned with FGSM
from a random start, epsilon 4/255, on the training photos' faces; its training time is reported). Attacks:
one_pixel (the paper's DE, ``--de`` population,generations), sparse_20 (``sparse_attack`` with 20 pixels and
``--budget`` queries), label_only (20 pixels, labels only, ``--budget`` queries), pgd (L-infinity 4/255,
10 steps). Adaptive variants per defense: ``maskedu.defend.ADAPTIVE``. ``--defenses`` picks some of the four
(the plain model, "none", is always attacked): for example ``--faces 100 --defenses median`` sets the undefended
model against one defense on more faces.

``--engine tflite`` (the default) lets the attacks query the models run by TensorFlow Lite, many times faster than
Keras on the small batches a greedy search sends once its cache answers most proposals; gradients, clean accuracy,
transfers and every success counted are the Keras models' verdicts on the uint8 faces, and the run prints how
many attacks saw another verdict than Keras gives (``engine_disagreements``). ``--engine keras`` queries Keras.

Prints the oracle's throughput against the raw batched model, the table, the run time and, last, one JSON object.

``--workers N`` attacks on a Dask ``LocalCluster`` of N worker processes (one thread each), ``--scheduler
ADDRESS`` on a running Dask cluster (``pip install 'maskedu[cluster]'``): the faces are cut into contiguous
shards, each worker rebuilds the defenses from the saved model files (written to ``--scratch DIR``, a folder
the workers can read; default a temporary folder here) and runs ``evaluate_defenses`` on its shard with the
seeds the serial run gives those faces. Clean accuracy and the detector's false alarms are measured here on
all faces, the detection shares merged from the shards' counts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import NamedTuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MASKEDU_NO_PROGRESS", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


class HeldOut(NamedTuple):
    """The model and the faces it never saw (see :func:`held_out_faces`)."""

    model: object
    note: str
    images: np.ndarray
    labels: np.ndarray


def held_out_faces(model_arg: str | None, data_arg: str | None) -> HeldOut:
    """The model (``--model``, else the training benchmark's, else trained and saved) and the faces it never saw:
    the held-out split of ``../shared/realfaces`` less pixel copies of training faces, or with both ``--data`` and
    ``--model`` every labelled face of that folder."""
    from attack_success import _crops, load_or_train_model, training_copies

    from maskedu.common import artifact_path
    from maskedu.model import save_model

    model, note = load_or_train_model(model_arg, data_arg)
    saved = artifact_path("models/resnet-realfaces.keras", fast=False)
    if model_arg is None and not saved.is_file():
        save_model(model, saved)
        note += f"; saved to {saved}"
    crops, in_test = _crops(data_arg)
    unseen = crops.labels >= 0
    if not (data_arg and model_arg):
        unseen &= in_test
        # a held-out photo can be a copy of a training photo (realfaces has a few): such a face was seen in training
        unseen &= ~training_copies(crops, in_test)
    return HeldOut(model, note, crops.images[unseen], crops.labels[unseen])


def oracle_throughput(model, faces, rounds: int = 5, batch: int = 100) -> dict:
    """Images per second through ``make_predict_fn`` and through ``Oracle(model, "logits")``, alternating rounds."""
    from maskedu.model import make_predict_fn
    from maskedu.oracle import Oracle

    raw = make_predict_fn(model)
    oracle = Oracle(model, "logits")
    x = np.resize(faces, (batch * 10, *faces.shape[1:])).astype(np.uint8)
    raw.both(x[:batch]), oracle.both(x[:batch])  # warm both up
    times = {"raw": [], "oracle": []}
    for _ in range(rounds):
        for name, fn in (("raw", raw.both), ("oracle", oracle.both)):
            t = time.perf_counter()
            for s in range(0, len(x), batch):
                fn(x[s:s + batch])
            times[name].append(time.perf_counter() - t)
    per_s = {k: len(x) / float(np.median(v)) for k, v in times.items()}
    return {"raw_images_per_s": round(per_s["raw"], 1), "oracle_images_per_s": round(per_s["oracle"], 1),
            "ratio": round(per_s["oracle"] / per_s["raw"], 3)}


def _shard(model_file: str, adv_file: str | None, faces, labels, start: int, settings: dict) -> tuple[list, dict]:
    """One worker's part: the defenses rebuilt from the saved files, ``evaluate_defenses`` on faces
    ``start, start + 1, ...`` with the seeds the serial run gives them; the records (faces numbered as in the
    whole run) and the shard's detector counts."""
    from maskedu.defend import BitDepth, JpegDefense, MedianFilter, evaluate_defenses
    from maskedu.model import load_model

    model = load_model(model_file)
    defenses = {"median": MedianFilter(model), "jpeg": JpegDefense(model), "squeeze": BitDepth(model)}
    if adv_file is not None:
        defenses["adv_train"] = load_model(adv_file)
    report = evaluate_defenses(model, faces, labels, defenses, seed=start, clean_faces=(faces[:1], labels[:1]), **settings)
    records = [dict(r, face=r["face"] + start) for r in report.records]
    counts = {}
    for attack in settings["attacks"]:
        wins = sum(r["success"] for r in report.records if r["defense"] == "none" and r["attack"] == attack
                   and not r["adaptive"])
        share = report.detector.get(f"detected_{attack}")
        counts[attack] = (round(share * wins) if share is not None else 0, wins)
    return records, counts


def evaluate_on_workers(model, faces, labels, defenses: dict, settings: dict, *, train_s: dict, clean_faces,
                        workers: int, scheduler: str | None, scratch: str | None):
    """``evaluate_defenses`` with the faces in shards on Dask workers (see the module's docstring)."""
    import tempfile

    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        sys.exit("--workers and --scheduler need Dask: pip install 'maskedu[cluster]' (dask[distributed]).")
    from maskedu.defend import DefenseReport, evaluate_defenses
    from maskedu.model import save_model

    unknown = set(defenses) - {"median", "jpeg", "squeeze", "adv_train"}
    if unknown:
        sys.exit(f"the workers rebuild median, jpeg, squeeze and adv_train only, not {sorted(unknown)}.")
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="defense-eval-", dir=scratch))
    model_file = str(save_model(model, folder / "model.keras"))
    adv_file = str(save_model(defenses["adv_train"], folder / "adv_train.keras")) if "adv_train" in defenses else None
    # clean accuracy and the detector's false alarms, here on all the clean faces (no attack)
    whole = evaluate_defenses(model, faces, labels, defenses, **dict(settings, attacks=()), train_s=train_s,
                              clean_faces=clean_faces)
    if __name__ != "__main__":  # imported (by a test): the workers cannot import this script, so send _shard whole
        import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[__name__])
    # silence_logs: no shutdown warnings from workers stopping slowly on a busy machine (a shard's error is raised here)
    cluster = None if scheduler else LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                  dashboard_address=None, silence_logs=logging.CRITICAL)
    client = Client(scheduler or cluster)
    try:
        n_workers = max(1, len(client.scheduler_info()["workers"]))
        bounds = np.linspace(0, len(faces), min(len(faces), 2 * n_workers) + 1).astype(int)  # two shards per worker
        print(f"attacking on {scheduler or f'a Dask LocalCluster of {workers} worker processes'}: "
              f"{len(bounds) - 1} shards of faces", flush=True)
        futures = [client.submit(_shard, model_file, adv_file, faces[a:b], labels[a:b], int(a), settings, pure=False)
                   for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        parts = []
        for i, future in enumerate(futures):
            parts.append(future.result())
            print(f"  ... shard {i + 1} of {len(futures)} done, {time.perf_counter() - started:.0f} s", flush=True)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    order = {name: k for k, name in enumerate(["none", *defenses])}
    records = sorted((r for recs, _ in parts for r in recs),  # the serial run's order
                     key=lambda r: (settings["attacks"].index(r["attack"]), order[r["defense"]], r["face"]))
    detector = dict(whole.detector)
    for attack in settings["attacks"]:
        flagged, wins = (sum(c[attack][k] for _, c in parts) for k in (0, 1))
        if wins:
            detector[f"detected_{attack}"] = round(flagged / wins, 4)
    return DefenseReport(records=records, clean=whole.clean, train_s=dict(train_s), faces=len(faces),
                         seconds=time.perf_counter() - started, detector=detector, engine=settings.get("engine", "keras"))


def main(argv=None) -> dict | None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="a saved Keras model (default: data/models/resnet-realfaces.keras, else trained here)")
    ap.add_argument("--data", help="class folders of face photos (default ../shared/realfaces)")
    ap.add_argument("--faces", type=int, default=30)
    ap.add_argument("--attacks", default="one_pixel,sparse_20,label_only,pgd")
    ap.add_argument("--defenses", default="median,jpeg,squeeze,adv_train",
                    help="the defenses beside the plain model (default all four: median,jpeg,squeeze,adv_train)")
    ap.add_argument("--budget", type=int, default=30_000, help="queries of sparse_20 and label_only (30,000)")
    ap.add_argument("--de", default="400,75", help="one_pixel's population,generations (the paper: 400,75)")
    ap.add_argument("--adv-epochs", type=int, default=3)
    ap.add_argument("--engine", choices=("tflite", "keras"), default="tflite",
                    help="what the attacks query (default tflite); verdicts are always the Keras models'")
    ap.add_argument("--workers", type=int, default=0, help="Dask worker processes on this machine (0: serially here)")
    ap.add_argument("--scheduler", help="the address of a running Dask scheduler whose workers run the attacks")
    ap.add_argument("--scratch", help="a folder the workers can read, for the saved models (default: a temporary one)")
    args = ap.parse_args(argv)
    known = ("median", "jpeg", "squeeze", "adv_train")
    chosen = [d.strip() for d in args.defenses.split(",") if d.strip()]
    wrong = [d for d in chosen if d not in known]
    if wrong or len(set(chosen)) != len(chosen):
        ap.error(f"--defenses takes distinct names from {', '.join(known)} separated by commas, got {args.defenses!r}.")

    from maskedu.common import realfaces_dir

    if args.data is None and realfaces_dir() is None:
        message = "skipped: ../shared/realfaces is absent on this machine and no --data FOLDER was given."
        if os.environ.get("CI") == "true":
            sys.exit(message)
        print(message)
        return None

    from attack_success import _crops

    from maskedu.attack import Scorer
    from maskedu.defend import ADAPTIVE, BitDepth, JpegDefense, MedianFilter, adversarial_finetune, evaluate_defenses

    started = time.perf_counter()
    held = held_out_faces(args.model, args.data)
    model, model_note, images, labels = held.model, held.note, held.images, held.labels
    probs, _ = Scorer(model)(images)
    order = np.random.default_rng(0).permutation(len(images))[: args.faces]
    faces, face_labels = images[order], labels[order]
    print(f"model: {model_note}\nfaces: {len(images)} never seen by the model ({'all of ' + args.data if args.data and args.model else 'held-out photos'}), "
          f"plain accuracy {float((probs.argmax(axis=1) == labels).mean()):.1%}; {len(faces)} attacked", flush=True)

    speed = oracle_throughput(model, images[:100])
    print(f"oracle throughput: {speed['oracle_images_per_s']:,.0f} images/s through Oracle(model, 'logits') against "
          f"{speed['raw_images_per_s']:,.0f} raw batched: {speed['ratio']:.1%}", flush=True)

    train_s = {}
    defenses = {name: make(model) for name, make in
                (("median", MedianFilter), ("jpeg", JpegDefense), ("squeeze", BitDepth)) if name in chosen}
    if "adv_train" in chosen and (realfaces_dir() is not None or not args.model):
        rf, rf_test = _crops(None if args.model and args.data else args.data)
        train_faces = rf.labels >= 0
        train_faces &= ~rf_test
        ft = adversarial_finetune(model, rf.images[train_faces], rf.labels[train_faces], epsilon=4 / 255,
                                  epochs=args.adv_epochs, method="fgsm", verbose=True)
        train_s["adv_train"] = ft.seconds
        defenses["adv_train"] = ft.model
        print(f"adversarial fine-tuning: {int(train_faces.sum())} training faces, {args.adv_epochs} epochs, "
              f"{ft.seconds:.1f} s", flush=True)
    elif "adv_train" in chosen:
        print("adv_train skipped: no training faces known for --model on --data without ../shared/realfaces")

    popsize, maxiter = (int(v) for v in args.de.split(","))
    from maskedu.attack import PAPER

    attacks = tuple(a.strip() for a in args.attacks.split(",") if a.strip())
    done = {"n": 0}

    def tick(what, i):
        done["n"] += 1
        if done["n"] % 10 == 0:
            print(f"  ... {done['n']} attacks done ({what}, face {i}), {time.perf_counter() - started:.0f} s", flush=True)

    settings = dict(attacks=attacks, one_pixel=dict(PAPER, popsize=popsize, maxiter=maxiter), sparse_budget=args.budget,
                    label_budget=args.budget, engine=args.engine)
    if args.workers or args.scheduler:
        report = evaluate_on_workers(model, faces, face_labels, defenses, settings, train_s=train_s,
                                     clean_faces=(images, labels), workers=args.workers, scheduler=args.scheduler,
                                     scratch=args.scratch)
    else:
        report = evaluate_defenses(model, faces, face_labels, defenses, train_s=train_s, clean_faces=(images, labels),
                                   on_face=tick, **settings)
    print()
    print(report)
    print("\nadaptive attacks per defense:")
    for d in report.clean:
        print(f"  {d}: {ADAPTIVE.get(d, '')}")
    seconds = time.perf_counter() - started
    print(f"\nattacks whose own verdict differs from the Keras model's on their adversarial face ({args.engine} "
          f"queried): {report.disagreements} of {len(report.records)} records")
    print(f"\nrun time: {seconds:.0f} s ({len(faces)} faces, attacks {', '.join(attacks)}, budget {args.budget:,}, "
          f"one_pixel {popsize} x ({maxiter} + 1))")
    doc = report.to_json()
    doc["oracle_throughput"] = speed
    doc["run_s"] = round(seconds, 1)
    doc["settings"] = dict(attacks=list(attacks), budget=args.budget, de=[popsize, maxiter], adv_epochs=args.adv_epochs,
                           defenses=["none", *defenses], model=model_note, engine=args.engine, workers=args.scheduler or args.workers)
    print(json.dumps(doc))
    return doc


if __name__ == "__main__":
    main()
