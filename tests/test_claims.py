"""maskedu.claims: verdicts, strict mode, the Wilson interval, faces_to_distinguish and say()."""

from __future__ import annotations

import pytest

from maskedu import claims
from maskedu.claims import (CONTRADICTED, HOLDS, TOO_LITTLE, Claim, ClaimContradicted, faces_to_distinguish, judge,
                            say, wilson_interval)
from maskedu.common import MaskeduError, ParameterError, ParameterTypeError


def test_verdicts_and_bool(capsys):
    assert judge("a", True, figures={"n": 3}).verdict == HOLDS
    assert judge("a", False, figures={"n": 3}).verdict == CONTRADICTED
    assert judge("a", None, figures={"n": 3}).verdict == TOO_LITTLE
    assert judge("a", True, figures={"n": 3}, enough=False).verdict == TOO_LITTLE
    assert judge("a", False, figures={"n": 3}, enough=False).verdict == TOO_LITTLE
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Claim: a — holds (n=3)"
    assert out[1] == "Claim: a — contradicted (n=3)"
    assert bool(judge("a", True, figures={}, display=False)) is True
    assert bool(judge("a", False, figures={}, display=False)) is False
    assert bool(judge("a", None, figures={}, display=False)) is False


def test_display_false_prints_nothing(capsys):
    judge("quiet", True, figures={"n": 1}, display=False)
    assert capsys.readouterr().out == ""


def test_str_and_html():
    c = judge("most are right", True, figures={"n": 20, "acc": 0.912345, "gap": float("nan")}, detail="why",
              display=False)
    assert str(c) == "Claim: most are right — holds (n=20, acc=0.9123, gap=n/a). why"
    assert "nan" not in str(c).lower()
    h = c._repr_html_()
    assert "most are right" in h and "holds" in h and "#0072B2" in h
    bad = judge("x <y>", False, figures={}, display=False)._repr_html_()
    assert "&lt;y&gt;" in bad and "#D55E00" in bad


def test_claim_is_frozen_and_checks_verdict():
    c = Claim("s", HOLDS, {"n": 1})
    with pytest.raises(Exception):
        c.verdict = CONTRADICTED  # type: ignore[misc]
    with pytest.raises(ParameterError):
        Claim("s", "maybe", {})


def test_strict_mode_raises_after_showing(monkeypatch, capsys):
    monkeypatch.setenv("MASKEDU_STRICT", "1")
    with pytest.raises(ClaimContradicted) as info:
        judge("wrong", False, figures={"n": 5})
    assert "wrong" in str(info.value)
    assert "Claim: wrong — contradicted" in capsys.readouterr().out
    assert isinstance(info.value, MaskeduError) and isinstance(info.value, AssertionError)
    # holds and too-little verdicts never raise
    assert judge("fine", True, figures={}).holds
    assert judge("unknown", False, figures={}, enough=False).verdict == TOO_LITTLE
    monkeypatch.setenv("MASKEDU_STRICT", "0")
    assert judge("wrong", False, figures={}).contradicted


@pytest.mark.parametrize("kwargs,error", [
    (dict(statement="", holds=True, figures={}), ParameterTypeError),
    (dict(statement="s", holds="yes", figures={}), ParameterTypeError),
    (dict(statement="s", holds=True, figures=[1]), ParameterTypeError),
])
def test_judge_validates(kwargs, error):
    with pytest.raises(error):
        judge(kwargs.pop("statement"), kwargs.pop("holds"), **kwargs)


def test_numpy_bool_is_accepted():
    np = pytest.importorskip("numpy")
    assert judge("s", np.bool_(True), figures={}, display=False).holds


def test_wilson_known_values():
    # Wilson (1927) interval, checked against the closed form for 0 successes: (0, z^2 / (n + z^2))
    z2 = 1.959963984540054 ** 2
    lo, hi = wilson_interval(0, 214)
    assert lo == 0.0 and hi == pytest.approx(z2 / (214 + z2))
    lo, hi = wilson_interval(45, 50)
    assert lo == pytest.approx(0.7864, abs=1e-4) and hi == pytest.approx(0.9565, abs=1e-4)
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(10 / (10 + z2))
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo99, hi99 = wilson_interval(45, 50, confidence=0.99)
    assert lo99 < 0.7864 and hi99 > 0.9565


@pytest.mark.parametrize("args,error", [
    ((5, 3), ParameterError), ((-1, 3), ParameterError), ((1.5, 3), ParameterTypeError),
    ((1, 3, 1.0), ParameterError), ((1, 3, 0), ParameterError), ((True, 3), ParameterTypeError),
])
def test_wilson_validates(args, error):
    with pytest.raises(error):
        wilson_interval(*args)


def test_faces_to_distinguish_paper_figure():
    assert faces_to_distinguish(0.0, 0.0177) == 214
    # the definition: at n the reference is outside the interval, at n - 1 it is not
    z = 1.959963984540054
    for p, ref in [(0.0, 0.0177), (0.9, 0.942), (0.5, 0.6), (0.3, 0.1)]:
        n = faces_to_distinguish(p, ref)
        assert n is not None and n >= 1
        lo, hi = claims._wilson(p, n, z)
        assert not lo <= ref <= hi
        if n > 1:
            lo, hi = claims._wilson(p, n - 1, z)
            assert lo <= ref <= hi


def test_faces_to_distinguish_none_and_errors():
    assert faces_to_distinguish(0.5, 0.5) is None
    assert faces_to_distinguish(0.5, 0.5000001, limit=1000) is None
    with pytest.raises(ParameterError):
        faces_to_distinguish(1.5, 0.1)
    with pytest.raises(ParameterError):
        faces_to_distinguish(0.1, -0.1)
    with pytest.raises(ParameterTypeError):
        faces_to_distinguish("0.1", 0.1)
    with pytest.raises(ParameterError):
        faces_to_distinguish(0.1, 0.2, confidence=2)


def test_say_renders_and_never_writes_nan(capsys):
    text = say("{n} faces, {acc:.1%} right, gap {gap:.2f}", n=120, acc=0.95, gap=float("nan"))
    assert text == "120 faces, 95.0% right, gap n/a"
    assert capsys.readouterr().out.strip() == text
    assert say("{x}", x=None, display=False) == "n/a"
    with pytest.raises(ParameterError, match="'missing'"):
        say("{missing}", n=1)
    with pytest.raises(ParameterTypeError):
        say(3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- notebooks 01-03's checks


def test_column_quirk_check_on_the_sample(sample_root):
    c = claims.check_column_quirk(sample_root, display=False)
    assert c.holds, c
    assert c.figures["match by position"] == c.figures["rows compared"] > c.figures["match by header"]


def test_column_quirk_check_contradicted_when_the_csv_follows_its_header(sample_root, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(sample_root, root)
    csv_file = root / "train.csv"
    lines = csv_file.read_text().splitlines()
    fixed = [lines[0]]
    for line in lines[1:]:  # rewrite every row in the header's order: x1, x2, y1, y2
        name, x1, y1, x2, y2, cls = line.split(",")
        fixed.append(",".join([name, x1, x2, y1, y2, cls]))
    csv_file.write_text("\n".join(fixed) + "\n")
    assert claims.check_column_quirk(root, display=False).contradicted


def test_nothing_dropped_silently_check(sample_root, tmp_path):
    import copy
    import json
    import shutil

    from maskedu.annotations import find_kaggle_layout, load_annotations

    ds = load_annotations(sample_root)
    c = claims.check_nothing_dropped_silently(ds, display=False)
    assert c.holds, c
    assert c.figures["kept"] == c.figures["boxes in them"] == sum(len(r.boxes) for r in ds.images) > 0
    # a loader that lost a box without a word: contradicted, naming the file
    lost = copy.deepcopy(ds)
    lost.images[0].boxes.pop()
    c = claims.check_nothing_dropped_silently(lost, display=False)
    assert c.contradicted and c.figures["unaccounted for"] == 1 and lost.images[0].path.name in c.detail
    # a copy with a box the loader must drop (inverted), an image gone and a broken file: all listed, so it holds
    root = tmp_path / "copy"
    shutil.copytree(sample_root, root)
    ann = find_kaggle_layout(root).annotations_dir
    files = sorted(ann.glob("*.json"))
    doc = json.loads(files[0].read_text())
    x1, y1, x2, y2 = doc["Annotations"][0]["BoundingBox"]
    doc["Annotations"][0]["BoundingBox"] = [x2, y2, x1, y1]
    files[0].write_text(json.dumps(doc))
    (find_kaggle_layout(root).images_dir / files[1].name[: -len(".json")]).unlink()
    files[2].write_text("{not json")
    damaged = load_annotations(root)
    c = claims.check_nothing_dropped_silently(damaged, display=False)
    assert c.holds, c
    assert c.figures["listed as dropped"] >= 2 and c.figures["kept"] < c.figures["boxes in them"]
    # the same damage with the report emptied: every dropped box is unaccounted for
    silent = copy.deepcopy(damaged)
    silent.report.dropped.clear()
    assert claims.check_nothing_dropped_silently(silent, display=False).figures["unaccounted for"] == 3
    # other layouts are not counted: too little data, never a silent "holds"
    other = copy.deepcopy(ds)
    other.layout = "folders"
    assert claims.check_nothing_dropped_silently(other, display=False).verdict == TOO_LITTLE


class _Report:
    def __init__(self, per_class, missed=(), no_face=()):
        self.per_class, self.missed, self.no_face = per_class, list(missed), list(no_face)


def test_masked_faces_missed_check():
    assert claims.check_masked_faces_missed(_Report({"with_mask": [50, 20], "without_mask": [50, 48]}), display=False).holds
    assert claims.check_masked_faces_missed(_Report({"with_mask": [50, 49], "without_mask": [50, 40]}), display=False).contradicted
    assert claims.check_masked_faces_missed(_Report({"with_mask": [50, 44], "without_mask": [50, 46]}),
                                            display=False).verdict == TOO_LITTLE
    assert claims.check_masked_faces_missed(_Report({"with_mask": [4, 1], "without_mask": [4, 4]}),
                                            display=False).verdict == TOO_LITTLE


def test_found_more_iou_and_missed_checks():
    ours, theirs = _Report({"with_mask": [30, 28]}), _Report({"with_mask": [30, 17]})
    assert claims.check_found_more(ours, theirs, display=False).holds
    assert claims.check_found_more(theirs, ours, display=False).contradicted
    assert claims.check_iou([0.7] * 20, display=False).holds
    assert claims.check_iou([0.95] * 20, display=False).contradicted
    assert claims.check_iou([0.7] * 3, display=False).verdict == TOO_LITTLE
    missed = [("p", (0, 0, 1, 1), "with_mask")] * 18 + [("p", (0, 0, 1, 1), "without_mask")] * 2
    assert claims.check_missed_mostly_masked(_Report({}, missed), display=False).holds
    assert claims.check_missed_mostly_masked(_Report({}, missed[::-1][:4] + missed[-2:] * 8), display=False).contradicted


def test_no_false_alarms_check():
    import numpy as np

    class Curve:
        thresholds = np.array([0.6, 0.7, 0.8])
        false_positive_rate = np.array([0.1, 0.05, 0.0])
        counts = {"background": 50}
        current = 0.8

    assert claims.check_no_false_alarms(Curve(), display=False).holds
    Curve.current = 0.6
    assert claims.check_no_false_alarms(Curve(), display=False).contradicted


def test_smoothing_and_majority_checks():
    import numpy as np

    assert claims.check_smoothing_never_saturates(np.full(20, 0.97, np.float32), display=False).holds
    top = np.full(20, 0.97, np.float32)
    top[3] = 1.0
    assert claims.check_smoothing_never_saturates(top, display=False).contradicted

    class Ev:
        labels = np.array([0] * 30 + [1] * 10)
        accuracy = 39 / 40

    assert claims.check_beats_majority(Ev(), display=False).holds
    Ev.accuracy = 28 / 40  # below 0.75, but the interval of 40 faces still holds 0.75
    assert claims.check_beats_majority(Ev(), display=False).verdict == TOO_LITTLE
    Ev.labels = np.array([0] * 60 + [1] * 20)
    Ev.accuracy = 40 / 80
    assert claims.check_beats_majority(Ev(), display=False).contradicted


def test_hill_climbing_check_on_real_searches():
    from maskedu import pattern as P
    from maskedu.anneal import ExponentialSchedule, SearchHistory

    fast = ExponentialSchedule(t0=1.0, decay=1.0, min_temp=1e-9)
    greedy = [P.search_pattern("hog", "hog", 6, max_iters=30, seed=s, schedule=fast).history for s in (0, 1)]
    c = claims.check_hill_climbing(greedy, display=False)
    assert c.holds, c
    assert c.figures["searches"] == 2 and c.figures["iterations each"] == 30
    # normal cooling, hot from the start, steps down: the same sentence said of it is contradicted
    normal = P.search_pattern("hog", "hog", 6, max_iters=30, seed=0, t0=50.0).history
    c = claims.check_hill_climbing(normal, name="normal cooling", display=False)
    assert c.contradicted and c.figures["worse moves accepted after iteration 10"] > 0
    assert claims.check_hill_climbing(greedy[0], min_iterations=31, display=False).verdict == TOO_LITTLE
    falls = SearchHistory(fitness=[1.0] * 11 + [0.5] * 9, candidate_fitness=[1.0] * 11 + [0.5] * 9,
                          accepted=[True] * 20, initial_fitness=1.0)
    assert claims.check_hill_climbing(falls, display=False).figures["falls of the current fitness"] == 1
    with pytest.raises(ParameterTypeError, match="SearchHistory"):
        claims.check_hill_climbing([1, 2], display=False)
