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
