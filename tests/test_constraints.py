"""The constraints file that pins every package version for a class (``maskedu course constraints``), and the
checked-in ``course/constraints.txt``, which must match the environment the tests run in."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from maskedu import cli, course
from maskedu.common import repo_root

CHECKED_IN = Path(__file__).resolve().parent.parent / "course" / "constraints.txt"


def test_the_checked_in_constraints_match_this_environment():
    problems = course.stale_pins(CHECKED_IN)
    assert not problems, (
        f"{CHECKED_IN.relative_to(CHECKED_IN.parent.parent)} is stale ({len(problems)} difference(s) with this "
        f"environment: {'; '.join(problems[:8])}{' ...' if len(problems) > 8 else ''}). Regenerate it in the "
        f"environment the course is tested in: {course.REGENERATE}"
    )


def _requirement_names(specs: list[str]) -> set[str]:
    return {course._canonical(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec.strip()).group(0)) for spec in specs}


@pytest.mark.skipif(repo_root() is None, reason="needs the checkout's pyproject.toml")
def test_every_requirement_of_the_course_is_pinned():
    project = tomllib.loads((repo_root() / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = _requirement_names(project["dependencies"] + project["optional-dependencies"]["course"])
    pinned = course.read_constraints(CHECKED_IN)
    assert sorted(wanted - set(pinned)) == [], f"not pinned in {CHECKED_IN.name}; run {course.REGENERATE}"


def _fake_distribution(site: Path, name: str, version: str, direct_url: dict | None = None) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))


def test_pins_leave_out_maskedu_the_installers_and_local_installs(tmp_path, monkeypatch):
    site = tmp_path / "site"
    _fake_distribution(site, "Fake_Indexed.Pkg", "1.2.3")                                      # from an index: pinned
    _fake_distribution(site, "fake-editable", "0.1", {"url": "file:///src/x", "dir_info": {"editable": True}})
    _fake_distribution(site, "fake-folder", "0.2", {"url": "file:///src/y", "dir_info": {}})
    _fake_distribution(site, "fake-wheel", "0.3", {"url": "file:///tmp/fake_wheel-0.3-py3-none-any.whl",
                                                   "archive_info": {}})
    _fake_distribution(site, "fake-vcs", "0.4", {"url": "https://example.org/x.git", "vcs_info": {"vcs": "git"}})
    monkeypatch.syspath_prepend(str(site))
    pins = course.pinned_versions()
    assert pins["fake-indexed-pkg"] == "1.2.3" and pins["fake-vcs"] == "0.4"
    assert not {"fake-editable", "fake-folder", "fake-wheel", "maskedu", "pip", "setuptools", "wheel"} & set(pins)
    assert list(pins) == sorted(pins)
    path = course.write_constraints(tmp_path)
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")]
    assert path.name == "constraints.txt" and "fake-indexed-pkg==1.2.3" in lines and len(lines) == len(pins)
    assert course.read_constraints(path) == pins and course.stale_pins(path) == []


def test_stale_pins_say_what_differs(tmp_path):
    path = course.write_constraints(tmp_path / "c.txt")
    text = path.read_text()
    numpy = course.pinned_versions()["numpy"]
    path.write_text(text.replace(f"numpy=={numpy}\n", "numpy==0.0.1\n").replace(f"\nscipy==", "\n# scipy==")
                    + "not-installed-here==9.9\n")
    assert course.stale_pins(path) == [f"numpy: pinned 0.0.1, installed {numpy}",
                                       f"scipy {course.pinned_versions()['scipy']} is installed but not pinned"]


def test_a_line_that_is_not_a_pin_is_refused(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("# a comment\n\nnumpy==2.0\nscipy>=1.0\n")
    with pytest.raises(course.CourseError, match=r"line 4: 'scipy>=1.0' is not a pin"):
        course.read_constraints(path)


def test_cli_writes_and_checks(tmp_path, capsys):
    out = tmp_path / "constraints.txt"
    assert cli.main(["course", "constraints", str(out)]) == 0
    assert f"in {out}" in capsys.readouterr().out
    assert cli.main(["course", "constraints", "--check", str(out)]) == 0
    out.write_text(out.read_text().replace("\nnumpy==", "\nnumpy==0.0.1\n# numpy=="))
    assert cli.main(["course", "constraints", "--check", str(out)]) == 1
    said = capsys.readouterr().out
    assert "numpy: pinned 0.0.1" in said and f"maskedu course constraints {out}" in said
