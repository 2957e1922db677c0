"""benchmarks/defense_eval.py without ../shared/realfaces: a clear skip message, and a failure under CI=true."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "defense_eval.py"


def _load():
    spec = importlib.util.spec_from_file_location("defense_eval", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_defense_eval_skips_with_a_reason_where_the_photos_are_absent(monkeypatch, capsys):
    import maskedu.common

    monkeypatch.setattr(maskedu.common, "realfaces_dir", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    assert _load().main([]) is None
    assert "skipped: ../shared/realfaces is absent" in capsys.readouterr().out
    monkeypatch.setenv("CI", "true")
    with pytest.raises(SystemExit, match="realfaces is absent"):
        _load().main([])


@pytest.mark.parametrize("value", ["median,blur", "median,median"])
def test_defense_eval_refuses_an_unknown_or_repeated_defense(value, capsys):
    with pytest.raises(SystemExit):
        _load().main(["--defenses", value])
    err = capsys.readouterr().err
    assert "--defenses takes distinct names from median, jpeg, squeeze, adv_train" in err and value in err


def _load_speed():
    spec = importlib.util.spec_from_file_location("defense_speed", SCRIPT.with_name("defense_speed.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_defense_speed_skips_refuses_and_times_the_median(monkeypatch, capsys):
    import numpy as np

    import maskedu.common

    mod = _load_speed()
    monkeypatch.setattr(maskedu.common, "realfaces_dir", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    assert mod.main([]) is None
    assert "skipped: ../shared/realfaces is absent" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        mod.main(["--rounds", "0"])
    assert "--faces and --rounds take a whole number" in capsys.readouterr().err
    faces = np.random.default_rng(0).integers(0, 256, (7, 50, 50, 3), dtype=np.uint8)
    med = mod.median_speed(faces, rounds=2)
    assert med["equal"] is True and med["scipy_ms"] > 0 and med["median3x3_ms"] > 0
    assert med["ratio"] == pytest.approx(med["scipy_ms"] / med["median3x3_ms"], rel=0.05)
