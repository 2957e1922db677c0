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
