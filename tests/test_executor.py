"""attack_many across worker processes: a Dask LocalCluster of two workers, each loading a real tiny model
from its saved file, gives the serial study attack for attack; the leak guard still holds in a worker."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from maskedu.attack import attack_many
from maskedu.common import ParameterError, ParameterTypeError


def _same_study(a, b) -> None:
    """Two studies hold the same attacks: every record field but the run time, the same pixels and images."""
    assert len(a.records) == len(b.records) > 0
    for ra, rb in zip(a.records, b.records):
        assert {k: v for k, v in ra.items() if k != "seconds"} == {k: v for k, v in rb.items() if k != "seconds"}
    assert a.skipped == b.skipped
    assert len(a.results) == len(b.results) == len(a.records)
    for x, y in zip(a.results, b.results):
        assert np.array_equal(x.pixels, y.pixels) and np.array_equal(x.adversarial, y.adversarial)
        assert np.array_equal(x.final_probs, y.final_probs)
        assert [h.best_fitness for h in x.history] == [h.best_fitness for h in y.history]


def _logits(batch):
    return np.tile([[2.0, 0.0]], (len(batch), 1))


def test_an_executor_needs_a_saved_model_not_a_live_one(tmp_path):
    faces, labels = np.zeros((2, 8, 8, 3), np.uint8), [0, 0]
    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(ParameterError, match="predict must be the path of a saved model.*save_model"):
            attack_many(_logits, faces, labels, executor=pool, verbose=False)
        with pytest.raises(FileNotFoundError, match="no model at .*missing.keras.*save_model"):
            attack_many(tmp_path / "missing.keras", faces, labels, executor=pool, verbose=False)
    with pytest.raises(ParameterTypeError, match="executor must be a concurrent.futures.Executor.*got int"):
        attack_many(tmp_path / "missing.keras", faces, labels, executor=2, verbose=False)
    with pytest.raises(ParameterError, match="engine='tflite' applies when predict is a saved model's path"):
        attack_many(_logits, faces, labels, engine="tflite", verbose=False)
    with pytest.raises(ParameterError, match="engine"):
        attack_many(tmp_path / "missing.keras", faces, labels, engine="onnx", verbose=False)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A real tiny ResNet trained one epoch on the sample's crops and saved with its split; its held-out faces
    and one face from its training part."""
    from maskedu import model as M
    from maskedu.annotations import load_annotations
    from maskedu.crop import crop_faces
    from maskedu.sample import make_sample_dataset

    root = tmp_path_factory.mktemp("executor")
    crops = crop_faces(load_annotations(make_sample_dataset(root / "sample", n_images=12, seed=0)),
                       source="annotations", verbose=False)
    trained = M.train(M.build_resnet(widths=(8,), blocks=(1,), stem_filters=8), crops, epochs=1, verbose=False,
                      live_plot=False, seed=0)
    path = M.save_model(trained.model, root / "tiny.keras")
    assert M.split_path(path).is_file()  # the split travels with the file
    held = M.held_out(crops, trained.model)
    train_i = int(trained.split.train[0])
    return dict(path=path, model=trained.model, faces=held.images[:3], labels=held.labels[:3],
                seen_face=crops.images[train_i], seen_label=int(crops.labels[train_i]))


@pytest.fixture(scope="module")
def dask_client():
    """A Dask LocalCluster of two worker processes, one thread each (the shape the benchmarks' --workers 2 starts)."""
    distributed = pytest.importorskip("distributed", reason="dask[distributed] is in the test extra: pip install -e '.[test]'")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            yield client


STUDY = dict(pixels=(1, 2), fitness=("probability", "margin"), budgets=[(10, 2)], only_correct=False, verbose=False)


@pytest.mark.slow
def test_a_two_worker_dask_study_equals_the_serial_one(saved_model, dask_client):
    from maskedu.attack import study as S
    from maskedu.model import make_predict_fn

    path, faces, labels = saved_model["path"], saved_model["faces"], saved_model["labels"]
    serial = attack_many(path, faces, labels, **STUDY)
    live = attack_many(make_predict_fn(saved_model["model"]), faces, labels, **STUDY)
    spread = attack_many(path, faces, labels, executor=dask_client.get_executor(), **STUDY)
    _same_study(serial, spread)
    _same_study(live, spread)  # the file's model is the live one: same weights, same attacks
    assert len(spread.records) == 2 * 2 * len(faces)
    # the jobs ran in the workers: each of the two loaded the model from its file
    loaded = dask_client.run(lambda: S._cached_predict_fn.cache_info().currsize)
    assert len(loaded) == 2 and all(n >= 1 for n in loaded.values()), loaded
    # the sparse search through TensorFlow Lite, on the workers and here
    sparse = dict(pixels=(3,), fitness=("margin",), budgets=[(10, 9)], method="sparse", only_correct=False,
                  verbose=False, engine="tflite", batch=10)
    _same_study(attack_many(path, faces, labels, **sparse),
                attack_many(path, faces, labels, executor=dask_client.get_executor(), **sparse))


@pytest.mark.slow
def test_a_worker_refuses_a_face_the_model_trained_on(saved_model, dask_client):
    from maskedu.attack.study import _attack_job
    from maskedu.model import SeenFaceError

    path, seen, seen_label = saved_model["path"], saved_model["seen_face"], saved_model["seen_label"]
    job = dict(image=seen, label=seen_label, index=0, prior_logits=np.zeros(2, np.float32), pixels=1,
               fitness="margin", popsize=10, maxiter=1, method="de", seed=0, attack_kwargs={})
    # sent straight to a worker (past attack_many's own check): the worker's model carries the split and refuses
    future = dask_client.get_executor().submit(_attack_job, path, "keras", job)
    with pytest.raises(SeenFaceError, match="1 of the 1 faces given .*training part"):
        future.result()
    # and attack_many refuses the batch before sending anything
    mixed = np.stack([saved_model["faces"][0], seen])
    with pytest.raises(SeenFaceError, match=r"1 of the 2 faces given .*faces #1\b"):
        attack_many(path, mixed, [int(saved_model["labels"][0]), seen_label], executor=dask_client.get_executor(),
                    **STUDY)


@pytest.mark.slow
def test_any_executor_works_a_thread_pool_too(saved_model):
    """Not only Dask: threads in this process share one loaded model, and each attack still counts its own
    queries."""
    path, faces, labels = saved_model["path"], saved_model["faces"], saved_model["labels"]
    with ThreadPoolExecutor(2) as pool:
        _same_study(attack_many(path, faces, labels, **STUDY), attack_many(path, faces, labels, executor=pool, **STUDY))


@pytest.mark.slow
def test_the_study_benchmark_on_two_workers_equals_its_serial_run(saved_model, dask_client, capsys):
    """benchmarks/attack_success.py's study (every setting, the strong ones included) through the cluster's
    executor: the same attacks as its serial run, which compare_runs reports."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import attack_success as bench
    finally:
        sys.path.pop(0)
    settings = bench.study_settings([2], 10, 1, strong=True)
    assert list(settings) == ["probability_1", "margin_2", "de_extreme_20", "sparse_20"]
    assert settings["sparse_20"]["budgets"] == [(10, 1)] and bench.study_settings([], 400, 75, True)["sparse_20"]["budgets"] == [(100, 299)]
    path, faces, labels = str(saved_model["path"]), saved_model["faces"], saved_model["labels"]
    serial = bench.run_study(path, faces, labels, settings)
    spread = bench.run_study(path, faces, labels, settings, dask_client.get_executor())
    assert all(len(recs) == len(faces) for recs in serial.values())
    out = bench.compare_runs({0: (serial, 2.0, 0.0), 2: (spread, 1.0, 3.0)}, 0)
    assert out["0"]["same_attacks"] and out["2"]["same_attacks"] and out["2"]["speedup"] == 2.0
    spread["margin_2"][0]["queries"] += 1  # a run that differs is reported as such
    assert not bench.compare_runs({0: (serial, 2.0, 0.0), 2: (spread, 1.0, 3.0)}, 0)["2"]["same_attacks"]


@pytest.mark.slow
def test_the_defense_benchmark_on_two_workers_equals_evaluate_defenses(saved_model):
    """benchmarks/defense_eval.py --workers 2: every defense against every attack, the faces in shards on a
    two-worker LocalCluster that rebuilds the defenses from saved files, gives the serial report."""
    import sys
    from pathlib import Path

    from maskedu.defend import BitDepth, JpegDefense, MedianFilter, adversarial_finetune, evaluate_defenses

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import defense_eval as bench
    finally:
        sys.path.pop(0)
    model, faces, labels = saved_model["model"], saved_model["faces"], saved_model["labels"]
    tuned = adversarial_finetune(model, faces, labels, epochs=1, seed=0).model
    defenses = {"median": MedianFilter(model), "jpeg": JpegDefense(model), "squeeze": BitDepth(model), "adv_train": tuned}
    settings = dict(attacks=("one_pixel", "sparse_20", "label_only", "pgd"), one_pixel=dict(popsize=10, maxiter=1),
                    sparse_budget=100, label_budget=100)
    serial = evaluate_defenses(model, faces, labels, defenses, train_s={"adv_train": 1.0}, **settings)
    spread = bench.evaluate_on_workers(model, faces, labels, defenses, settings, train_s={"adv_train": 1.0},
                                       clean_faces=(faces, labels), workers=2, scheduler=None, scratch=None)
    assert spread.records == serial.records and len(serial.records) > 0
    assert spread.clean == serial.clean and spread.detector == serial.detector and spread.faces == serial.faces
    assert spread.to_json() == {**serial.to_json(), "seconds": spread.to_json().get("seconds")}
