"""How often the one-pixel attack (and its many-pixel versions) flips a trained mask classifier.

Usage::

    .venv/bin/python benchmarks/attack_success.py --model PATH [--data FOLDER] [--faces 100]
        [--pixels 1,3,5,10,20] [--budget 400,75] [--no-strong] [--save FILE.json]
        [--workers N | --workers 0,2 | --scheduler ADDRESS]

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

Each setting is one ``maskedu.attack.attack_many`` study of the saved model file. ``--workers N`` runs its
attacks on a Dask ``LocalCluster`` of N worker processes (one thread each; 0, the default: serially here);
``--workers 0,2`` runs the whole study once per count on the same faces and prints the run times side by
side with the speed-up, after checking every attack came out the same. ``--scheduler tcp://HOST:8786`` uses
the workers of a running Dask cluster (``--model`` must then be a path they can read). Both need
``pip install 'maskedu[cluster]'``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MASKEDU_NO_PROGRESS", "1")

import numpy as np

from maskedu.attack import MANY_PIXELS, PAPER, SPARSE, Scorer, attack_many
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


def training_copies(crops, in_test) -> np.ndarray:
    """Held-out faces whose pixels equal a training face's (realfaces holds a few repeated photos): the model
    saw them in training, so they are left out of every held-out figure, and said so."""
    from maskedu.crop import image_hashes

    hashes = image_hashes(crops.images)
    copies = in_test & (crops.labels >= 0) & np.isin(hashes, hashes[(crops.labels >= 0) & ~in_test])
    if copies.any():
        print(f"left out {int(copies.sum())} held-out faces whose pixels equal a training face's "
              f"({', '.join(Path(str(p)).name for p in crops.paths[copies])})")
    return copies


def load_faces(model, data: str | None, n: int, *, seed: int = 0):
    """N held-out faces the model classifies correctly, in a fixed shuffled order, with their labels."""
    crops, in_test = _crops(data)
    keep = (crops.labels >= 0) & in_test & ~training_copies(crops, in_test)
    images, labels = crops.images[keep], crops.labels[keep]
    probs, _ = Scorer(model)(images)
    correct = np.flatnonzero(probs.argmax(axis=1) == labels)
    order = np.random.default_rng(seed).permutation(correct)[:n]
    note = (f"{len(order)} of the {len(correct)} correctly classified held-out faces ({len(images)} held-out faces, "
            f"accuracy {len(correct) / max(1, len(images)):.1%})")
    return images[order], labels[order], note


# --------------------------------------------------------------------------- the study


def study_settings(pixels: list[int], popsize: int, maxiter: int, strong: bool) -> dict[str, dict]:
    """The attacks of the study, each as keyword arguments of ``attack_many``."""

    def de(preset, **changes) -> dict:
        cfg = dict(preset, **changes)
        return dict(pixels=(cfg.pop("pixels"),), fitness=(cfg.pop("fitness"),),
                    budgets=[(cfg.pop("popsize"), cfg.pop("maxiter"))], **cfg)

    settings = {"probability_1": de(PAPER, popsize=popsize, maxiter=maxiter)}
    for p in pixels:
        settings[f"margin_{p}"] = de(PAPER, pixels=p, fitness="margin", popsize=popsize, maxiter=maxiter)
    if strong:
        settings["de_extreme_20"] = de(MANY_PIXELS, popsize=popsize, maxiter=maxiter)
        sparse = dict(SPARSE)
        # attack_many gives the sparse search popsize x (maxiter + 1) queries: SPARSE's 30,000 at most
        budget = (popsize, maxiter) if popsize * (maxiter + 1) <= sparse.pop("budget") else (100, 299)
        settings["sparse_20"] = dict(method="sparse", pixels=(sparse.pop("pixels"),), fitness=(sparse.pop("fitness"),),
                                     budgets=[budget], **sparse)
    return settings


def run_study(model_file: str, faces, labels, settings: dict[str, dict], executor=None) -> dict[str, list[dict]]:
    """Every setting on every face (face i with seed i), through ``executor`` when one is given."""
    records = {}
    for name, kw in settings.items():
        started = time.perf_counter()
        study = attack_many(model_file, faces, labels, only_correct=False, seed=0, executor=executor,
                            keep_results=False, verbose=False, **kw)
        records[name] = [dict(face=r["index"], success=r["success"], queries=r["queries"], evaluations=r["evaluations"],
                              drop=r["confidence_drop"], prior=r["prior_confidence"], final=r["final_confidence"],
                              seconds=r["seconds"]) for r in study.records]
        wins = sum(r["success"] for r in records[name])
        print(f"  {name}: {wins} of {len(faces)} flipped, {time.perf_counter() - started:.1f} s", flush=True)
    return records


class Workers:
    """``with Workers(n, scheduler) as executor``: None for n = 0 (serial), else a Dask client's executor on a
    LocalCluster of n worker processes (one thread each), or on the running cluster at ``scheduler``."""

    def __init__(self, n: int, scheduler: str | None = None):
        self.n, self.scheduler, self.client, self.cluster, self.start_s = n, scheduler, None, None, 0.0

    def __enter__(self):
        if self.n == 0 and self.scheduler is None:
            return None
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            sys.exit("--workers and --scheduler need Dask: pip install 'maskedu[cluster]' (dask[distributed]).")
        started = time.perf_counter()
        if self.scheduler is not None:
            self.client = Client(self.scheduler)
        else:
            # silence_logs: no heartbeat tracebacks from workers stopping slowly on a busy machine; an attack's
            # error still reaches this process (attack_many raises it)
            self.cluster = LocalCluster(n_workers=self.n, threads_per_worker=1, processes=True, dashboard_address=None,
                                        silence_logs=logging.CRITICAL)
            self.client = Client(self.cluster)
        self.start_s = time.perf_counter() - started
        return self.client.get_executor()

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def __str__(self) -> str:
        if self.scheduler is not None:
            return f"the Dask cluster at {self.scheduler}"
        return "serially here" if self.n == 0 else f"a Dask LocalCluster of {self.n} worker processes"


def _cpu_seconds() -> float:
    """CPU seconds used by this process and its ended child processes (user + system)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _model_file(args, model) -> str:
    """The saved model every worker loads: --model, the default file load_or_train_model used, or the one it
    trained here, saved (with its split) to a temporary folder."""
    if args.model:
        return args.model
    default = artifact_path("models/resnet-realfaces.keras", fast=False)
    if args.data is None and default.is_file():
        return str(default)
    if args.scheduler:
        sys.exit("--scheduler needs --model PATH: a saved model at a path the cluster's workers can read.")
    import tempfile

    from maskedu.model import save_model

    return str(save_model(model, Path(tempfile.mkdtemp(prefix="attack-success-")) / "model.keras"))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="a saved Keras model (default: data/models/resnet-realfaces.keras from "
                    "benchmarks/train_accuracy.py --save, else one is trained)")
    ap.add_argument("--data", help="class folders of face photos (default ../shared/realfaces)")
    ap.add_argument("--faces", type=int, default=100)
    ap.add_argument("--pixels", default="1,3,5,10,20")
    ap.add_argument("--budget", default="400,75", help="population,generations (the paper: 400,75)")
    ap.add_argument("--no-strong", action="store_true")
    ap.add_argument("--save", help="also write the per-attack records as JSON here")
    ap.add_argument("--workers", default="0", help="Dask worker processes on this machine (0: serially here); "
                    "a list such as 0,2 runs the study once per count and prints the speed-up")
    ap.add_argument("--scheduler", help="the address of a running Dask scheduler whose workers run the attacks")
    args = ap.parse_args(argv)
    pixels = [int(p) for p in args.pixels.split(",") if p.strip()]
    popsize, maxiter = (int(v) for v in args.budget.split(","))
    counts = [int(n) for n in args.workers.split(",") if n.strip()]
    if not counts or min(counts) < 0 or (args.scheduler and len(counts) > 1):
        sys.exit("--workers takes a count (0 for serial) or a comma list of counts; --scheduler takes no list.")

    model, model_note = load_or_train_model(args.model, args.data)
    faces, labels, data_note = load_faces(model, args.data, args.faces)
    model_file = _model_file(args, model)
    print(f"model: {model_note}\nmodel file the attacks load: {model_file}\nfaces: {data_note}\nbudget: {popsize} x ({maxiter} + 1) = {popsize * (maxiter + 1):,} candidates")
    settings = study_settings(pixels, popsize, maxiter, strong=not args.no_strong)
    runs, machine = {}, {}
    for n in counts:
        workers = Workers(n, args.scheduler)
        cpu, load = _cpu_seconds(), os.getloadavg()[0]
        with workers as executor:
            print(f"attacking {str(workers)}" + (f" (started in {workers.start_s:.1f} s)" if executor else ""), flush=True)
            started = time.perf_counter()
            records = run_study(model_file, faces, labels, settings, executor)
            runs[n] = (records, time.perf_counter() - started, workers.start_s)
        # CPU seconds of this process and of its worker processes (counted once they have ended), and how busy
        # the machine was: on a shared machine other work takes CPU from the run
        machine[n] = dict(cpu_s=round(_cpu_seconds() - cpu, 1), load_before=round(load, 1),
                          load_after=round(os.getloadavg()[0], 1))
    records = runs[counts[0]][0]
    for name, recs in records.items():
        for r in recs:
            print(f"face {r['face']:3d} {name:>14} {'Y' if r['success'] else '.'} p={r['prior']:.6f} drop {r['drop']:.3f}")
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
          f"faces, above 0.9999 on {int((prob_p > 0.9999).sum())} · {runs[counts[0]][1]:.0f} s in all")
    if args.save:
        Path(args.save).write_text(json.dumps(records))
    summary = {"faces": len(faces), "success": success, "mean_queries_to_success": q_success,
               "median_confidence_drop": drops}
    if len(counts) > 1:
        summary["workers"] = compare_runs(runs, 0 if 0 in runs else counts[0])  # the speed-up over the serial run
        print(f"{'workers':>7} {'CPU s (workers included)':>24} {'load average before / after':>28}  ({os.cpu_count()} cores)")
        for n, m in machine.items():
            print(f"{n:>7} {m['cpu_s']:>24.1f} {m['load_before']:>17.1f} / {m['load_after']:<8.1f}")
            summary["workers"][str(n)].update(m)
    print(json.dumps(summary))
    return summary


def compare_runs(runs: dict, base: int) -> dict:
    """Print the run times of the worker counts side by side (the first is the base of the speed-up) and
    whether every attack came out the same as in the base run (all but the seconds)."""

    def key(records):
        return {name: [{k: v for k, v in r.items() if k != "seconds"} for r in recs] for name, recs in records.items()}

    base_records, base_s, _ = runs[base]
    print(f"\n{'workers':>7} {'study s':>8} {'speed-up':>8} {'cluster start s':>15} {'same attacks':>12}")
    out = {}
    for n, (records, seconds, start_s) in runs.items():
        same = key(records) == key(base_records)
        out[str(n)] = dict(seconds=round(seconds, 1), speedup=round(base_s / seconds, 2), start_s=round(start_s, 1),
                           same_attacks=same)
        print(f"{n:>7} {seconds:>8.1f} {base_s / seconds:>7.2f}x {start_s:>15.1f} {str(same):>12}")
    return out


if __name__ == "__main__":
    main()
