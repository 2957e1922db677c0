"""Run maskedu as a course: a student release, autograding and a gradebook, with nbgrader.

The notebooks in ``notebooks/`` stay what a self-learner runs; the nbgrader *source* is generated from them,
never kept by hand. Every exercise cell (the one calling ``nbXX.qN.check(...)``) becomes an nbgrader solution
cell holding the question's ``.solution_text``; after it comes an autograded test cell worth points whose
instructor test (hidden from the release) calls the same check and fails with its specific message. Every
other cell is read-only, so autograding restores it.

- :func:`release` writes the student release (nbgrader's own ``generate_assignment`` strips the solutions;
  each exercise cell gets back its blank or stub);
- :func:`grade` autogrades ``SUBMISSIONS/<student>/<notebook>.ipynb`` in fast mode and writes
  ``gradebook.csv`` and per-student feedback HTML;
- :func:`copy_notebooks` copies the self-learner notebooks out of an installed package.

>>> [e.grade_id for e in exercises(notebook_paths()[0])]
['nb01_q1', 'nb01_q2', 'nb01_q3']
"""

from __future__ import annotations

import ast
import contextlib
import copy
import csv
import os
import re
import shutil
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from .common import MaskeduError, ParameterError, check_int

__all__ = [
    "ASSIGNMENT", "GRADED_ENV", "INSTALL_CELL", "CourseError", "Exercise", "notebooks_dir", "notebook_paths",
    "copy_notebooks", "exercises", "source_notebook", "release", "grade", "add_course_commands",
    "CONSTRAINTS", "pinned_versions", "write_constraints", "read_constraints", "stale_pins", "precompute",
]

#: The nbgrader assignment every notebook belongs to.
ASSIGNMENT = "maskedu"
#: Set to "1" by a graded release's first cell: ``.solution()`` and ``.hint()`` must then show nothing.
GRADED_ENV = "MASKEDU_GRADED"

_CHECK = re.compile(r"\b(nb\d\d)\.(q\d+)\.check\(")
_STUB = "# MASKEDU: the exercise's blank goes here"
_GRADED_CELL = (
    "# Graded assignment: hints and solutions are switched off here (maskedu honours MASKEDU_GRADED).\n"
    "import os\n"
    f"os.environ[{GRADED_ENV!r}] = '1'"
)

#: The first code cell every notebook starts with: on a hosted service (Colab, a hub without maskedu) it
#: installs the package from ``MASKEDU_PIP_SPEC`` (a wheel's path or URL, or a pinned requirement) or from a
#: ``maskedu-*.whl`` beside the notebook; where maskedu is importable it does nothing. It never installs a
#: bare ``maskedu`` from a package index: that name there need not be this course.
INSTALL_CELL = (
    "import glob, importlib.util, os, subprocess, sys\n"
    "if importlib.util.find_spec('maskedu') is None:  # a hosted notebook without maskedu: install it once\n"
    "    spec = os.environ.get('MASKEDU_PIP_SPEC') or next(iter(sorted(glob.glob('maskedu-*.whl'))), None)\n"
    "    if spec is None:\n"
    "        raise SystemExit('maskedu is not installed: upload the course wheel (maskedu-*.whl) beside this '\n"
    "                         'notebook, or set MASKEDU_PIP_SPEC to its path or URL, then run this cell again.')\n"
    "    subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--quiet', spec])"
)


class CourseError(MaskeduError):
    """A course step (release, grading) cannot be done; the message says why and what to do."""


# --------------------------------------------------------------------------- the notebooks


def notebooks_dir() -> Path:
    """The course notebooks: ``notebooks/`` of a checkout, else the copy an installed wheel carries.

    The wheel installs them under ``<prefix>/share/maskedu/notebooks`` (pyproject's data-files).
    """
    here = Path(__file__).resolve().parent.parent / "notebooks"
    candidates = [here]
    for scheme_path in {sysconfig.get_path("data"), sys.prefix, getattr(sys, "base_prefix", sys.prefix)}:
        candidates.append(Path(scheme_path) / "share" / "maskedu" / "notebooks")
    with contextlib.suppress(Exception):
        import site

        candidates.append(Path(site.getuserbase()) / "share" / "maskedu" / "notebooks")
    for path in candidates:
        if any(path.glob("[0-9][0-9]_*.ipynb")):
            return path
    raise CourseError("The course notebooks were not found: not in a checkout's notebooks/ folder nor in "
                      f"{candidates[1]}. Reinstall maskedu from its wheel (pip install maskedu).")


def notebook_paths(notebooks: Sequence[str] | None = None) -> list[Path]:
    """The course notebooks in order; ``notebooks`` picks some by number prefix ("01") or name."""
    paths = sorted(notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
    if notebooks is None:
        return paths
    chosen = []
    for want in notebooks:
        match = [p for p in paths if p.stem == want or p.name == want or p.name.startswith(f"{want}_")]
        if not match:
            raise ParameterError(f"notebooks: {want!r} matches no course notebook; they are "
                                 f"{', '.join(p.stem for p in paths)} (give a number such as '01' or a name).")
        chosen.extend(m for m in match if m not in chosen)
    return chosen


def copy_notebooks(dest: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
    """Copy the self-learner notebooks into ``dest``; refuses to replace a notebook unless ``overwrite``.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     [p.name for p in copy_notebooks(folder)][:1]
    ['01_get_the_data.ipynb']
    """
    dest = Path(dest)
    sources = notebook_paths()
    if not overwrite:
        clash = [p.name for p in sources if (dest / p.name).exists()]
        if clash:
            raise CourseError(f"{dest} already holds {', '.join(clash)}; pass overwrite=True (--overwrite) to replace "
                              "them, or choose an empty folder.")
    dest.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copyfile(p, dest / p.name)) for p in sources]


# --------------------------------------------------------------------------- exercises -> nbgrader source


@dataclass(frozen=True)
class Exercise:
    """One exercise cell: which question it checks and the expression it passes to ``check``."""

    notebook: str      # "01_get_the_data"
    module: str        # "nb01"
    question: str      # "q1"
    argument: str      # "counts": what the cell passes to check(), evaluated again by the instructor test
    cell: int          # index of the exercise cell in the self-learner notebook
    setup: str = ""    # the import lines the exercise cell starts with, kept above the solution

    @property
    def grade_id(self) -> str:
        return f"{self.module}_{self.question}"

    def solution_text(self) -> str:
        """The question's worked answer (``maskedu.exercises.nbXX.qN.solution_text``)."""
        import importlib

        module = importlib.import_module(f"maskedu.exercises.{self.module}")
        return getattr(module, self.question).solution_text


def _check_argument(source: str, module: str, question: str, where: str) -> str:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "check"
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == question
                and isinstance(node.func.value.value, ast.Name) and node.func.value.value.id == module
                and node.args):
            return ast.get_source_segment(source, node.args[0])
    raise CourseError(f"{where}: found no {module}.{question}.check(answer) call with an answer to grade.")


def _leading_imports(source: str) -> str:
    """The import statements an exercise cell starts with (``from maskedu.exercises import nb06, ____``)."""
    body = ast.parse(source).body
    lines = source.splitlines()
    end = 0
    for node in body:
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            break
        end = node.end_lineno
    return "\n".join(lines[:end]).strip()


def exercises(path: str | os.PathLike) -> list[Exercise]:
    """The exercise cells of a self-learner notebook (code cells calling ``nbXX.qN.check(answer)``)."""
    import nbformat

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        calls = {m.groups() for m in _CHECK.finditer(cell.source)}
        if not calls:
            continue
        if len(calls) > 1:
            raise CourseError(f"{path.name}, cell {i}: one exercise cell checks several questions "
                              f"({sorted('.'.join(c) for c in calls)}); give each question its own cell.")
        module, question = calls.pop()
        argument = _check_argument(cell.source, module, question, f"{path.name}, cell {i}")
        found.append(Exercise(path.stem, module, question, argument, i, _leading_imports(cell.source)))
    return found


def _meta(grade_id: str, *, solution: bool = False, grade: bool = False, locked: bool = False,
          points: int | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"grade_id": grade_id, "solution": solution, "grade": grade, "locked": locked,
                            "schema_version": 3}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def _test_source(ex: Exercise, points: int) -> str:
    return (
        f"# Graded: {ex.module}.{ex.question}, {points} point{'s' if points != 1 else ''}. The instructor's test runs "
        "here when your notebook is graded.\n"
        "### BEGIN HIDDEN TESTS\n"
        f"from maskedu.exercises import {ex.module} as _graded\n"
        f"_result = _graded.{ex.question}.check({ex.argument}, display=False)\n"
        "assert _result.correct, _result.message\n"
        "### END HIDDEN TESTS"
    )


def source_notebook(path: str | os.PathLike, *, points: int = 1, graded: bool = False):
    """The nbgrader source version of one self-learner notebook (an nbformat notebook, not written).

    Exercise cells become solution cells (``### BEGIN SOLUTION`` around the question's solution text), each
    followed by an autograded test cell worth ``points`` whose test is hidden from the release; every other
    cell is read-only. ``graded`` puts first a cell switching hints and solutions off.
    """
    import nbformat

    points = check_int("points", points, minimum=1)
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    by_cell = {ex.cell: ex for ex in exercises(path)}
    cells = []
    if graded:
        # not an nbgrader cell (grading needs no record of it), but neither editable nor deletable
        cells.append(nbformat.v4.new_code_cell(_GRADED_CELL, metadata={"editable": False, "deletable": False,
                                                                       "tags": ["maskedu-graded"]}))
    for i, cell in enumerate(nb.cells):
        cell = copy.deepcopy(cell)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        ex = by_cell.get(i)
        if ex is None:
            cell.metadata.update(_meta(f"{path.stem[:2]}_cell{i:02d}", locked=True))
            cells.append(cell)
            continue
        setup = f"{ex.setup}\n\n" if ex.setup else ""
        cell.source = f"{setup}### BEGIN SOLUTION\n{ex.solution_text().rstrip()}\n### END SOLUTION"
        cell.metadata.update(_meta(ex.grade_id, solution=True))
        cells.append(cell)
        cells.append(nbformat.v4.new_code_cell(_test_source(ex, points),
                                               metadata=_meta(f"{ex.grade_id}_test", grade=True, locked=True, points=points)))
    nb.cells = cells
    return nb


# --------------------------------------------------------------------------- nbgrader


def _set_environment(values: dict[str, str | None]) -> None:
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@contextlib.contextmanager
def _environment(**values: str | None) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    try:
        _set_environment(values)
        yield
    finally:
        _set_environment(old)


def _require_nbgrader() -> None:
    import importlib.util

    if importlib.util.find_spec("nbgrader") is None:
        raise CourseError("The course commands need nbgrader: pip install 'maskedu[course]' (or pip install nbgrader).")


def _api(root: Path, timeout: int = 600):
    _require_nbgrader()
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.course_id = "maskedu"
    config.Exchange.root = str(root / "exchange")  # unused; nbgrader's default is a system folder
    config.ClearSolutions.code_stub = {"python": _STUB}
    config.Execute.timeout = timeout
    config.Execute.kernel_name = "python3"
    config.NbGraderAPI.log_level = "WARN"
    return NbGraderAPI(config=config)


def _run(step: str, result: dict) -> None:
    if not result.get("success"):
        log = [line for line in (result.get("log") or "").splitlines() if line.strip()]
        detail = (log or (result.get("error") or "").splitlines())[-20:]
        raise CourseError(f"nbgrader {step} failed:\n" + "\n".join(detail))


def _path_with_scripts() -> str:
    """PATH with this interpreter's scripts folder first: nbgrader runs the ``alembic`` command it installs."""
    scripts = sysconfig.get_path("scripts")
    return os.pathsep.join([scripts, os.environ.get("PATH", "")])


def _build_course(root: Path, paths: Sequence[Path], *, points: int, graded: bool):
    """A temporary nbgrader course: the generated source, then nbgrader's generate_assignment."""
    import nbformat

    source = root / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    stubs: dict[str, tuple[str, str]] = {}  # grade_id -> (what nbgrader must leave, the shipped blank or stub)
    for path in paths:
        nbformat.write(source_notebook(path, points=points, graded=graded), source / path.name)
        original = nbformat.read(path, as_version=4)
        for ex in exercises(path):
            left = f"{ex.setup}\n\n{_STUB}" if ex.setup else _STUB
            stubs[ex.grade_id] = (left, original.cells[ex.cell].source)
    api = _api(root)
    _run("generate_assignment", api.generate_assignment(ASSIGNMENT))
    return api, stubs


def release(out: str | os.PathLike, *, notebooks: Sequence[str] | None = None, points: int = 1,
            graded: bool = False, overwrite: bool = False) -> list[Path]:
    """Write the student release of the course notebooks into ``out``; returns the notebooks written.

    nbgrader's ``generate_assignment`` removes every solution and hidden test; each exercise cell then gets
    back the blank or stub the self-learner notebook ships with. Beside them goes ``constraints.txt``, the
    package versions of this environment (:func:`write_constraints`); nothing else goes into ``out`` (the
    gradebook, which holds the solutions and tests, stays in a temporary folder that is deleted).
    ``graded=True`` switches ``.hint()`` and ``.solution()`` off in the release.
    """
    import nbformat

    _require_nbgrader()
    from nbgrader.utils import compute_checksum

    out = Path(out)
    paths = notebook_paths(notebooks)
    if not overwrite and out.exists() and any(out.iterdir()):
        raise CourseError(f"{out} is not empty; choose a new folder or pass overwrite=True (--overwrite).")
    with tempfile.TemporaryDirectory(prefix="maskedu-course-") as tmp, _environment(PATH=_path_with_scripts()):
        _, stubs = _build_course(Path(tmp), paths, points=points, graded=graded)
        released = Path(tmp) / "release" / ASSIGNMENT
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for path in paths:
            nb = nbformat.read(released / path.name, as_version=4)
            for cell in nb.cells:
                meta = cell.metadata.get("nbgrader", {})
                if meta.get("solution"):
                    left, shipped = stubs[meta["grade_id"]]
                    if cell.source.strip() != left:
                        raise CourseError(f"{path.name}: nbgrader left more than its stub in {meta.get('grade_id')}; "
                                          "the release is not written.")
                    cell.source = shipped
                    meta["checksum"] = compute_checksum(cell)
            nbformat.write(nb, out / path.name)
            written.append(out / path.name)
    write_constraints(out / CONSTRAINTS)  # the versions this release was made (and tested) with, for the class
    return written


def _problem(result: dict) -> str:
    """The gist of a failed nbgrader step: the last exception its log shows ("NotJSONError: ...")."""
    lines = [line.strip() for line in (result.get("log") or "").splitlines() + (result.get("error") or "").splitlines()]
    raised = [m for line in lines if (m := re.match(r"(?:[\w]+\.)*(\w+(?:Error|Exception)): (.*)", line))
              and m.group(1) != "NbGraderException"]
    if raised:
        return f"{raised[-1].group(1)}: {raised[-1].group(2)}"
    return next((line for line in reversed(lines) if line), "nbgrader gave no message")


def _submissions(submissions: Path, names: set[str]) -> dict[str, list[Path]]:
    if not submissions.is_dir():
        raise CourseError(f"{submissions} is not a folder; it should hold one folder per student with their "
                          "notebooks: SUBMISSIONS/<student>/<notebook>.ipynb.")
    found: dict[str, list[Path]] = {}
    for student in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")):
        notebooks = sorted(p for p in student.glob("*.ipynb"))
        unknown = [p.name for p in notebooks if p.name not in names]
        if unknown:
            raise CourseError(f"{student.name} submitted {', '.join(unknown)}, which is not a course notebook; "
                              f"the notebooks are {', '.join(sorted(names))}.")
        if notebooks:
            found[student.name] = notebooks
    if not found:
        raise CourseError(f"{submissions} holds no SUBMISSIONS/<student>/<notebook>.ipynb to grade.")
    return found


def _messages(nb) -> dict[str, str]:
    """grade_id of each test cell -> the error its instructor test raised (empty when it passed)."""
    out = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade") or cell.cell_type != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        out[meta["grade_id"]] = f"{errors[0].ename}: {errors[0].evalue}" if errors else ""
    return out


def grade(submissions: str | os.PathLike, out: str | os.PathLike, *, timeout: int = 600, points: int = 1,
          fast: bool = True) -> Path:
    """Autograde ``SUBMISSIONS/<student>/<notebook>.ipynb`` with nbgrader; returns ``OUT/gradebook.csv``.

    Each submitted notebook runs (in fast mode unless ``fast=False``; ``timeout`` seconds per cell) with the
    instructor's hidden tests put back. Writes ``OUT/gradebook.csv`` (student, notebook, question, points,
    max_points, message: the check's message when the answer is not right) and
    ``OUT/feedback/<student>/<notebook>.html``. Student code runs unsandboxed: see INSTRUCTORS.md.
    """
    import nbformat

    timeout = check_int("timeout", timeout, minimum=1)
    submissions, out = Path(submissions), Path(out)
    paths = notebook_paths()
    found = _submissions(submissions, {p.name for p in paths})
    rows = []
    with tempfile.TemporaryDirectory(prefix="maskedu-grade-") as tmp, _environment(
            MASKEDU_FAST="1" if fast else None, MASKEDU_STRICT=None, MASKEDU_NO_PROGRESS="1",
            PATH=_path_with_scripts()):
        root = Path(tmp)
        _build_course(root, paths, points=points, graded=False)
        questions = {p.name: [e.grade_id for e in exercises(p)] for p in paths}
        api = _api(root, timeout=timeout)
        for student, notebooks in found.items():
            target = root / "submitted" / student / ASSIGNMENT
            target.mkdir(parents=True)
            for nb_path in notebooks:
                shutil.copyfile(nb_path, target / nb_path.name)
            result = api.autograde(ASSIGNMENT, student)
            if not result.get("success"):  # one unreadable submission must not stop the class's grading
                problem = _problem(result)
                print(f"maskedu course grade: {student}'s submission could not be graded: {problem}", file=sys.stderr)
                rows.extend({"student": student, "notebook": nb_path.stem, "question": grade_id, "points": 0.0,
                             "max_points": float(points), "message": f"not graded: {problem}"}
                            for nb_path in notebooks for grade_id in questions[nb_path.name])
                continue
            _run(f"generate_feedback ({student})", api.generate_feedback(ASSIGNMENT, student))
            for nb_path in notebooks:
                graded_nb = nbformat.read(root / "autograded" / student / ASSIGNMENT / nb_path.name, as_version=4)
                messages = _messages(graded_nb)
                scores = _cell_scores(root, student, nb_path.stem)
                for grade_id in questions[nb_path.name]:
                    score, max_score = scores.get(f"{grade_id}_test", (0.0, float(points)))
                    message = messages.get(f"{grade_id}_test", "the graded test cell is missing from the submission")
                    rows.append({"student": student, "notebook": nb_path.stem, "question": grade_id,
                                 "points": score, "max_points": max_score, "message": message})
            feedback = out / "feedback" / student
            feedback.mkdir(parents=True, exist_ok=True)
            for html in (root / "feedback" / student / ASSIGNMENT).glob("*.html"):
                shutil.copyfile(html, feedback / html.name)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "gradebook.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["student", "notebook", "question", "points", "max_points", "message"])
        writer.writeheader()
        writer.writerows(rows)
    return csv_path


def _cell_scores(root: Path, student: str, notebook: str) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(notebook, ASSIGNMENT, student)
        return {g.name: (float(g.score), float(g.max_score)) for g in nb.grades}


# --------------------------------------------------------------------------- pinned versions for a class

#: The file, beside the released notebooks (and checked in as ``course/constraints.txt``), that pins every package.
CONSTRAINTS = "constraints.txt"
#: The installers themselves: an environment's tooling, not the course's (``pip freeze`` leaves them out too).
_TOOLING = frozenset({"pip", "setuptools", "wheel", "distribute"})
#: The command that rewrites the checked-in file from the environment the course is tested in.
REGENERATE = "maskedu course constraints course/constraints.txt"


def _canonical(name: str) -> str:
    """A distribution's name as package indexes compare it (PEP 503): ``Jupyter_Server`` -> ``jupyter-server``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _is_local(dist) -> bool:
    """Installed from a folder or a local file (editable or not): no package index can install it by version."""
    import json

    try:
        direct = json.loads(dist.read_text("direct_url.json") or "null")
    except ValueError:
        return False
    return isinstance(direct, dict) and ("dir_info" in direct or str(direct.get("url", "")).startswith("file:"))


def pinned_versions() -> dict[str, str]:
    """``{name: version}`` of every distribution installed in this environment, sorted by name: what a class
    installs to run the course exactly as it was tested.

    Left out: maskedu itself, the installers (pip, setuptools, wheel) and anything installed from a local
    folder or file, editable or not (no index can serve it). A name installed twice counts once, as the copy
    that ``import`` finds first.

    >>> pins = pinned_versions()
    >>> "numpy" in pins and "maskedu" not in pins and "pip" not in pins
    True
    """
    from importlib import metadata

    pins: dict[str, str] = {}
    seen: set[str] = set()
    for dist in metadata.distributions():  # in sys.path order: the first of a name is the one imported
        name = dist.metadata["Name"]
        if not name:
            continue
        key = _canonical(name)
        if key in seen:
            continue
        seen.add(key)
        if key == "maskedu" or key in _TOOLING or _is_local(dist):
            continue
        pins[key] = dist.version
    return dict(sorted(pins.items()))


def write_constraints(out: str | os.PathLike) -> Path:
    """Write the pins of :func:`pinned_versions` to ``out`` (a file, or a folder that gets ``constraints.txt``),
    one ``name==version`` a line after a short header; return the file.

    ``pip install -c constraints.txt maskedu-*.whl`` then installs exactly these versions for a whole class.

    >>> import tempfile
    >>> path = write_constraints(tempfile.mkdtemp())
    >>> path.name, read_constraints(path) == pinned_versions()
    ('constraints.txt', True)
    """
    import platform

    out = Path(out)
    path = out / CONSTRAINTS if out.is_dir() else out
    pins = pinned_versions()
    header = [
        f"# The package versions the maskedu course was tested with (Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}).",
        "# Install a class's environment with them:  pip install -c constraints.txt 'maskedu[course] @ file:///path/to/maskedu-<version>-py3-none-any.whl'",
        f"# Regenerate, in the environment the course was tested in:  {REGENERATE}",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(header + [f"{name}=={version}" for name, version in pins.items()]) + "\n", encoding="utf-8")
    return path


def read_constraints(path: str | os.PathLike) -> dict[str, str]:
    """``{name: version}`` of a constraints file's ``name==version`` lines (comments and blank lines skipped);
    any other line raises :class:`CourseError` naming it."""
    pins: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;,]+)", line)
        if match is None:
            raise CourseError(f"{path}, line {number}: {line!r} is not a pin (name==version).")
        pins[_canonical(match.group(1))] = match.group(2)
    return pins


def stale_pins(path: str | os.PathLike) -> list[str]:
    """What in the constraints file ``path`` differs from this environment, one sentence each (empty: it matches).

    A pin of a package installed here at another version, and a package installed here (not left out by
    :func:`pinned_versions`) that the file does not pin, are both stale. A pin of a package not installed here
    is fine: a constraint only applies to what gets installed.
    """
    pinned, installed = read_constraints(path), pinned_versions()
    problems = [f"{name}: pinned {pinned[name]}, installed {installed[name]}"
                for name in sorted(pinned) if name in installed and installed[name] != pinned[name]]
    problems += [f"{name} {installed[name]} is installed but not pinned" for name in sorted(set(installed) - set(pinned))]
    return problems


# --------------------------------------------------------------------------- a shared read-only data layer


def precompute(dest: str | os.PathLike, *, modes: Sequence[str] = ("normal", "fast"), verbose: bool = True) -> list[Path]:
    """Build, once, into ``dest`` what the notebooks' loaders read, for a class to share read-only
    (``MASKEDU_SHARED_DATA=dest``, :func:`maskedu.common.shared_data_dirs`); return the files and folders made.

    For each of ``modes`` ("normal", "fast"): the dataset :func:`maskedu.get_dataset` picks (the sample, or the
    Kaggle data where it is installed in ``dest`` or credentials exist), its crops by MTCNN (notebook 02) and the
    crops notebooks 03-07 train on, and the model of each recipe (:func:`maskedu.model.get_model`). Run it where
    the students will see ``dest`` (the crop caches are keyed by the photos' paths), then make ``dest`` read-only.

    >>> precompute("/srv/maskedu-cache", modes=("fast",))      # doctest: +SKIP
    """
    from .common import DATA_ENV, FAST_ENV, SHARED_DATA_ENV, check_choice

    modes = tuple(modes)
    if not modes:
        raise ParameterError("modes is empty: give 'normal', 'fast' or both.")
    for mode in modes:
        check_choice("modes", mode, ("normal", "fast"))
    dest = Path(dest).expanduser().resolve()
    before = set(dest.rglob("*")) if dest.is_dir() else set()
    for mode in modes:
        with _environment(**{DATA_ENV: str(dest), FAST_ENV: "1" if mode == "fast" else "0", SHARED_DATA_ENV: None}):
            from .crop import get_crops
            from .download import get_dataset
            from .model import RECIPES, get_model

            if verbose:
                print(f"--- {mode} mode, into {dest}", flush=True)
            ds = get_dataset(verbose=verbose)
            get_crops(ds, verbose=verbose)  # notebook 02's crops by MTCNN (class folders: the ones it trains on too)
            crops = get_crops(ds, source="annotations" if ds.annotated else "mtcnn", verbose=verbose)
            for recipe in RECIPES:
                get_model(crops, recipe=recipe, verbose=verbose)
    for lock in dest.glob(".*.lock"):  # the builders' locks: not part of what is shared
        lock.unlink(missing_ok=True)
    return sorted(p for p in dest.rglob("*") if p not in before)


# --------------------------------------------------------------------------- command line


def add_course_commands(subparsers) -> None:
    """Add ``maskedu course release|grade`` and ``maskedu notebooks`` to the CLI's subparsers."""

    def _release(args) -> int:
        written = release(args.out, notebooks=args.only, graded=args.graded, overwrite=args.overwrite)
        print(f"Wrote the student release of {len(written)} notebooks to {args.out}"
              f"{' (graded: hints and solutions off)' if args.graded else ''}.")
        return 0

    def _grade(args) -> int:
        csv_path = grade(args.submissions, args.out, timeout=args.timeout, fast=not args.normal)
        print(f"Gradebook: {csv_path}; feedback: {Path(args.out) / 'feedback'}")
        return 0

    def _constraints(args) -> int:
        if args.check:
            problems = stale_pins(args.out)
            for problem in problems:
                print(problem)
            print(f"{args.out}: " + (f"{len(problems)} pin(s) differ from this environment; regenerate it with "
                                      f"`maskedu course constraints {args.out}`" if problems else "matches this environment"))
            return 1 if problems else 0
        path = write_constraints(args.out)
        print(f"Pinned {len(read_constraints(path))} packages in {path}.")
        return 0

    def _precompute(args) -> int:
        made = precompute(args.dest, modes=args.modes.split(","))
        print(f"Precomputed {len(made)} files and folders in {args.dest}. Share it read-only: MASKEDU_SHARED_DATA={args.dest}")
        return 0

    def _notebooks(args) -> int:
        written = copy_notebooks(args.dest, overwrite=args.overwrite)
        print(f"Copied {len(written)} notebooks to {args.dest}.")
        return 0

    course = subparsers.add_parser("course", help="student release and autograding with nbgrader (see INSTRUCTORS.md)")
    steps = course.add_subparsers(dest="step", required=True)
    rel = steps.add_parser("release", help="write the student release (solutions stripped by nbgrader)")
    rel.add_argument("out", type=Path, help="folder that receives the release (new or empty)")
    rel.add_argument("--graded", action="store_true", help="switch .hint() and .solution() off in the release")
    rel.add_argument("--only", nargs="+", help="notebook number prefixes, e.g. 01 04")
    rel.add_argument("--overwrite", action="store_true", help="write into a folder that is not empty")
    rel.set_defaults(func=_release)
    grd = steps.add_parser("grade", help="autograde SUBMISSIONS/<student>/<notebook>.ipynb into a gradebook")
    grd.add_argument("submissions", type=Path)
    grd.add_argument("out", type=Path, help="folder for gradebook.csv and feedback/")
    grd.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    grd.add_argument("--normal", action="store_true", help="grade in normal mode instead of fast mode")
    grd.set_defaults(func=_grade)
    con = steps.add_parser("constraints", help="pin every installed package version (pip's -c file) for the whole class")
    con.add_argument("out", type=Path, help=f"file to write (or a folder that gets {CONSTRAINTS})")
    con.add_argument("--check", action="store_true", help="only compare the file with this environment (exit 1 when stale)")
    con.set_defaults(func=_constraints)
    pre = steps.add_parser("precompute", help="build the datasets, crops and models once, for a class to share read-only")
    pre.add_argument("dest", type=Path, help="the folder students will read as MASKEDU_SHARED_DATA")
    pre.add_argument("--modes", default="normal,fast", help="normal, fast or normal,fast (default)")
    pre.set_defaults(func=_precompute)
    nbs = subparsers.add_parser("notebooks", help="copy the course notebooks into a folder (works from an installed wheel)")
    nbs.add_argument("dest", type=Path)
    nbs.add_argument("--overwrite", action="store_true", help="replace notebooks already there")
    nbs.set_defaults(func=_notebooks)
