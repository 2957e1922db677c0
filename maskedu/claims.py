"""Claims a notebook makes about its own results, checked against the numbers of this run.

A course that says "the model is confident on most faces" must show that it is, on the data the
student has. Each such sentence goes through :func:`judge`, which prints it with a verdict:

* ``holds``: this run's figures support it;
* ``contradicted``: they do not (the notebook then says so instead of repeating the text);
* ``too little data to tell``: there were too few faces, photos or attacks to decide either way
  (fast mode, a tiny sample).

>>> c = judge("most faces are classified right", 0.9 > 0.5, figures={"n": 20, "accuracy": 0.9}, display=False)
>>> str(c)
'Claim: most faces are classified right — holds (n=20, accuracy=0.9)'
>>> bool(c), bool(judge("x", None, figures={}, display=False))
(True, False)

Numbers that describe this run are never typed into a notebook's markdown; :func:`say` renders a
sentence from them instead::

    say("The model classified {acc:.1%} of the {n} held-out faces right.", acc=ev.accuracy, n=len(ev))

With ``MASKEDU_STRICT=1`` a contradicted claim raises :class:`ClaimContradicted` (after showing it),
so a test run of the notebooks fails where the text and the data disagree.

Rates come with a Wilson score interval (:func:`wilson_interval`), the interval that stays inside 0..1
and behaves for 0 of n; :func:`faces_to_distinguish` says how many faces a rate needs before it can be
told apart from a published one.
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Mapping

from .common import MaskeduError, ParameterError, ParameterTypeError, in_notebook

__all__ = [
    "HOLDS",
    "CONTRADICTED",
    "TOO_LITTLE",
    "STRICT_ENV",
    "ClaimContradicted",
    "Claim",
    "judge",
    "is_strict",
    "wilson_interval",
    "faces_to_distinguish",
    "say",
    "Said",
    "format_value",
    "PAPER_CITATION",
    "check_column_quirk",
    "check_nothing_dropped_silently",
    "check_hill_climbing",
    "check_masked_faces_missed",
    "check_found_more",
    "check_iou",
    "check_missed_mostly_masked",
    "check_no_false_alarms",
    "check_split",
    "check_beats_majority",
    "top_probabilities",
    "check_smoothing_never_saturates",
    "PAPER_SOURCE",
    "sign_test",
    "check_better",
    "check_saturation",
    "check_margin_fitness",
    "check_rate",
]

HOLDS = "holds"
CONTRADICTED = "contradicted"
TOO_LITTLE = "too little data to tell"
STRICT_ENV = "MASKEDU_STRICT"

_VERDICTS = (HOLDS, CONTRADICTED, TOO_LITTLE)
# Colour-blind-safe (Okabe & Ito): blue for holds, vermillion for contradicted, grey for too little data.
_COLOURS = {HOLDS: "#0072B2", CONTRADICTED: "#D55E00", TOO_LITTLE: "#666666"}
_MARKS = {HOLDS: "✓", CONTRADICTED: "✗", TOO_LITTLE: "?"}


class ClaimContradicted(MaskeduError, AssertionError):
    """Raised by :func:`judge` in strict mode (``MASKEDU_STRICT=1``) when this run's figures contradict a claim."""


def is_strict() -> bool:
    """True when ``MASKEDU_STRICT`` is 1/true/yes/on: contradicted claims then raise."""
    return os.environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


# --------------------------------------------------------------------------- formatting


def format_value(value: Any) -> str:
    """A figure as short text: floats to 4 significant digits, ``n/a`` for NaN or None (never ``nan``).

    >>> format_value(0.123456), format_value(3), format_value(float("nan")), format_value((1, 2.5))
    ('0.1235', '3', 'n/a', '(1, 2.5)')
    """
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        v = float(value)
        if math.isnan(v):
            return "n/a"
        if math.isinf(v):
            return "infinite" if v > 0 else "minus infinite"
        return f"{v:.4g}"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(format_value(v) for v in value) + ")"
    return str(value)


def _figures_text(figures: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={format_value(v)}" for k, v in figures.items())


# --------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Claim:
    """A statement about this run's results and the verdict its figures give.

    ``bool(claim)`` is True only when it holds; ``str(claim)`` is one line; in a notebook it shows as a
    coloured line (blue: holds, vermillion: contradicted, grey: too little data).
    """

    statement: str
    verdict: str
    figures: dict
    detail: str = ""
    _shown_in: list = field(default_factory=list, repr=False, compare=False, hash=False)

    def __post_init__(self):
        if self.verdict not in _VERDICTS:
            raise ParameterError(f"verdict={self.verdict!r} is not one of {_VERDICTS}.")

    def __bool__(self) -> bool:
        return self.verdict == HOLDS

    @property
    def holds(self) -> bool:
        return self.verdict == HOLDS

    @property
    def contradicted(self) -> bool:
        return self.verdict == CONTRADICTED

    def __str__(self) -> str:
        figs = _figures_text(self.figures)
        text = f"Claim: {self.statement} — {self.verdict}"
        if figs:
            text += f" ({figs})"
        if self.detail:
            text += f". {self.detail}"
        return text

    def _repr_html_(self) -> str:
        colour = _COLOURS[self.verdict]
        figs = _figures_text(self.figures)
        out = (f'<div style="border-left:4px solid {colour};padding:2px 8px;margin:2px 0">'
               f'<b>Claim:</b> {html.escape(self.statement)} '
               f'<b style="color:{colour}">{_MARKS[self.verdict]} {html.escape(self.verdict)}</b>')
        if figs:
            out += f' <span style="color:#444">({html.escape(figs)})</span>'
        if self.detail:
            out += f"<br><small>{html.escape(self.detail)}</small>"
        return out + "</div>"

    def _ipython_display_(self):
        # judge() has already shown this claim in the cell that made it: the cell's own display of the
        # returned value would show it a second time, so that one display is skipped.
        count = _execution_count()
        if count is not None and count in self._shown_in:
            self._shown_in.remove(count)
            return
        _show_html(str(self), self._repr_html_())


def _execution_count():
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return None
    shell = get_ipython()
    return None if shell is None else getattr(shell, "execution_count", None)


def _show_html(text: str, html_text: str) -> None:
    from IPython.display import display

    display({"text/plain": text, "text/html": html_text}, raw=True)


def _show(claim: Claim) -> None:
    if in_notebook():
        _show_html(str(claim), claim._repr_html_())
        count = _execution_count()
        if count is not None:
            claim._shown_in.append(count)
    else:
        print(claim, flush=True)


def judge(statement: str, holds: bool | None, *, figures: dict, detail: str = "", enough: bool = True,
          display: bool = True) -> Claim:
    """Give ``statement`` its verdict from ``holds`` and show it, with the ``figures`` it rests on.

    ``holds`` is what the figures say (True/False), or None when they cannot say; ``enough=False`` (too
    few faces, photos or attacks) gives "too little data to tell" whatever ``holds`` is. The claim is
    displayed (a coloured line in a notebook, a printed line elsewhere) unless ``display=False``, and
    returned. With ``MASKEDU_STRICT=1`` a contradicted claim raises :class:`ClaimContradicted` after
    being shown.

    >>> judge("0 faces reach 1.0", False, figures={"n": 40, "at_one": 3}, display=False).verdict
    'contradicted'
    >>> judge("0 faces reach 1.0", True, figures={"n": 2}, enough=False, display=False).verdict
    'too little data to tell'
    """
    if not isinstance(statement, str) or not statement.strip():
        raise ParameterTypeError(f"statement must be a non-empty string, got {statement!r}.")
    if holds is not None and not isinstance(holds, bool):
        if type(holds).__name__ in ("bool_", "bool"):  # numpy's bool (np.bool_; named "bool" in NumPy 2)
            holds = bool(holds)
        else:
            raise ParameterTypeError(f"holds must be True, False or None, got {holds!r} ({type(holds).__name__}).")
    if not isinstance(figures, Mapping):
        raise ParameterTypeError(f"figures must be a dict of the numbers the verdict rests on, got {type(figures).__name__}.")
    if not isinstance(detail, str):
        raise ParameterTypeError(f"detail must be a string, got {type(detail).__name__}.")
    enough = bool(enough)
    if holds is None or not enough:
        verdict = TOO_LITTLE
    else:
        verdict = HOLDS if holds else CONTRADICTED
    claim = Claim(statement.strip(), verdict, dict(figures), detail)
    if display:
        _show(claim)
    if verdict == CONTRADICTED and is_strict():
        raise ClaimContradicted(f"{claim} (raised because {STRICT_ENV} is set)")
    return claim


# --------------------------------------------------------------------------- rates and intervals


def _z(confidence: float) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) and not type(confidence).__name__.startswith("float"):
        raise ParameterTypeError(f"confidence must be a number between 0 and 1, got {confidence!r}.")
    confidence = float(confidence)
    if not 0.0 < confidence < 1.0:
        raise ParameterError(f"confidence must be strictly between 0 and 1 (e.g. 0.95), got {confidence}.")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not (isinstance(value, int) or type(value).__name__.startswith(("int", "uint"))):
        raise ParameterTypeError(f"{name} must be a whole number, got {value!r} ({type(value).__name__}).")
    value = int(value)
    if value < 0:
        raise ParameterError(f"{name} must be 0 or more, got {value}.")
    return value


def _wilson(p: float, n: int, z: float) -> tuple[float, float]:
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(max(p * (1 - p) / n + z2 / (4 * n * n), 0.0))
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a rate of ``successes`` out of ``n`` (``confidence`` 0.95: 95%).

    Unlike "rate +- 1.96 standard errors" it stays within 0..1 and is not empty for 0 or n successes.
    With ``n == 0`` nothing is known: the interval is the whole (0.0, 1.0).

    >>> lo, hi = wilson_interval(0, 214)
    >>> lo, round(hi, 4)
    (0.0, 0.0176)
    >>> [round(v, 3) for v in wilson_interval(45, 50)]
    [0.786, 0.957]
    """
    successes = _count("successes", successes)
    n = _count("n", n)
    if successes > n:
        raise ParameterError(f"successes ({successes}) cannot exceed n ({n}).")
    z = _z(confidence)
    if n == 0:
        return (0.0, 1.0)
    return _wilson(successes / n, n, z)


def faces_to_distinguish(successes_rate: float, reference: float, confidence: float = 0.95, *,
                         limit: int = 10_000_000) -> int | None:
    """The smallest number of faces at which a rate observed at ``successes_rate`` could be told apart
    from ``reference``: its Wilson interval (at ``confidence``) would no longer contain ``reference``.

    None when no number of faces up to ``limit`` would do (the two rates are equal or nearly so).
    Against the paper's one-pixel success rate of 1.77%, a run where no attack succeeds needs 214 faces
    before "0%" is distinguishable from 1.77%:

    >>> faces_to_distinguish(0.0, 0.0177)
    214
    >>> faces_to_distinguish(0.5, 0.5) is None
    True
    """
    p = _rate("successes_rate", successes_rate)
    ref = _rate("reference", reference)
    z = _z(confidence)
    limit = _count("limit", limit)

    def excludes(n: int) -> bool:
        lo, hi = _wilson(p, n, z)
        return ref < lo or ref > hi

    if p == ref or limit < 1:
        return None
    hi = 1
    while not excludes(hi):
        if hi >= limit:
            return None
        hi = min(limit, hi * 2)
    lo = hi // 2  # excludes(lo) is False (or lo == 0)
    while hi - lo > 1:  # the interval narrows as n grows, so exclusion, once reached, stays
        mid = (lo + hi) // 2
        if excludes(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not (isinstance(value, (int, float)) or type(value).__name__.startswith("float")):
        raise ParameterTypeError(f"{name} must be a rate between 0 and 1, got {value!r} ({type(value).__name__}).")
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ParameterError(f"{name} must be a rate between 0 and 1 (e.g. 0.0177 for 1.77%), got {value}.")
    return value


# --------------------------------------------------------------------------- sentences of this run's numbers


class Said(str):
    """The text :func:`say` rendered; it was shown already, so a notebook cell ending with it shows nothing more."""

    def _ipython_display_(self):
        return None


class _NA:
    """Stands in for a missing or NaN value in :func:`say`: formats as ``n/a`` whatever the format spec."""

    def __format__(self, spec: str) -> str:
        return "n/a"

    def __str__(self) -> str:
        return "n/a"


def _clean(value: Any) -> Any:
    if value is None:
        return _NA()
    try:
        if isinstance(value, float) or type(value).__name__.startswith("float"):
            if math.isnan(float(value)):
                return _NA()
    except (TypeError, ValueError):
        pass
    return value


def say(template: str, *, display: bool = True, **values: Any) -> Said:
    """Render a sentence of this run's numbers as Markdown (printed outside a notebook) and return its text.

    ``template`` uses ``str.format`` fields: ``say("{n} faces, {acc:.1%} right", n=120, acc=0.95)``. A
    NaN or None value shows as ``n/a``, never ``nan``. Notebooks use this instead of typing a run's
    figures into markdown cells, which would go stale the moment the data or the seed changes. The text
    is returned (a ``str``; a notebook cell ending with ``say(...)`` still shows it only once).

    >>> say("{n} faces, {acc:.1%} right", n=120, acc=0.95, display=False)
    '120 faces, 95.0% right'
    >>> say("accuracy {acc:.1%}", acc=float("nan"), display=False)
    'accuracy n/a'
    """
    if not isinstance(template, str):
        raise ParameterTypeError(f"template must be a string, got {type(template).__name__}.")
    try:
        text = template.format(**{k: _clean(v) for k, v in values.items()})
    except KeyError as exc:
        raise ParameterError(f"say(): the template names {exc.args[0]!r} but no such value was given "
                             f"(given: {', '.join(sorted(values)) or 'none'}).") from None
    except (IndexError, ValueError) as exc:
        raise ParameterError(f"say(): cannot fill the template {template!r}: {exc}") from None
    if display:
        if in_notebook():
            from IPython.display import Markdown
            from IPython.display import display as show

            show(Markdown(text))
        else:
            print(text, flush=True)
    return Said(text)


# --------------------------------------------------------------------------- notebooks 01-03: data, crops, model

#: The paper's figures that notebooks 02 and 03 quote beside their own, with where they come from.
PAPER_CITATION = "Hu, Wei & Bai 2021, 'Face mask detection and attack with one pixel change'"


def check_column_quirk(root: Any, *, min_rows: int = 5, display: bool = True) -> Claim:
    """Check notebook 01's claim about ``train.csv``: its values are x1, y1, x2, y2 whatever its header
    (``name,x1,x2,y1,y2,classname``) says. Every CSV row whose image has a JSON file is read both ways and
    compared with the JSON boxes of the same class: the claim holds when every row read by position matches
    a JSON box, and read by the header's names fewer rows do (only the boxes where the two orders agree).
    """
    import csv
    import json
    from pathlib import Path

    from .annotations import find_kaggle_layout

    layout = find_kaggle_layout(Path(root))
    if layout.csv_path is None or layout.annotations_dir is None:
        return judge("train.csv's values are x1, y1, x2, y2, not the order its header names", None,
                     figures={"rows compared": 0}, detail="this dataset has no train.csv and JSON files to compare",
                     display=display)
    cache: dict[str, list] = {}
    rows = by_position = by_header = 0
    with open(layout.csv_path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        for row in reader:
            if len(row) != 6:
                continue
            try:
                v = [int(float(x)) for x in row[1:5]]
            except ValueError:
                continue
            name, cls = row[0].strip(), row[5].strip()
            if name not in cache:
                try:
                    doc = json.loads((layout.annotations_dir / f"{name}.json").read_text())
                    cache[name] = [(a.get("classname"), tuple(int(x) for x in a.get("BoundingBox", [])))
                                   for a in doc.get("Annotations", []) if isinstance(a, dict)]
                except (OSError, ValueError, TypeError):
                    cache[name] = []
            boxes = {b for c, b in cache[name] if c == cls}
            if not boxes:
                continue
            rows += 1
            by_position += (v[0], v[1], v[2], v[3]) in boxes       # x1, y1, x2, y2
            by_header += (v[0], v[2], v[1], v[3]) in boxes          # the header: x1, x2, y1, y2
    holds = by_position == rows and by_header < by_position
    return judge("train.csv's values are x1, y1, x2, y2, not the order its header names: read by position every "
                 "row matches its JSON box, read by the header's names fewer do", holds,
                 figures={"rows compared": rows, "match by position": by_position, "match by header": by_header},
                 enough=rows >= min_rows, display=display)


def check_nothing_dropped_silently(dataset: Any, *, display: bool = True) -> Claim:
    """Check notebook 01's "nothing is dropped silently" on a loaded Kaggle-layout ``dataset``: every entry of
    every per-image JSON annotation file on disk, read here independently of the loader, is either a box the
    loader kept or an item of ``dataset.report.dropped`` (the entry itself, its whole image, or its unreadable
    file). A PASCAL VOC dataset is checked the same way, object by object of its XML files. Contradicted when any
    entry is in neither; too little data for class folders or no annotation file.

    >>> check_nothing_dropped_silently(ds)      # doctest: +SKIP
    """
    import json
    import re
    from pathlib import Path

    from .annotations import find_kaggle_layout

    statement = ("nothing is dropped silently: every box of the annotation files is either kept or listed in the "
                 "report with its reason")
    if getattr(dataset, "layout", None) == "voc":
        return _check_voc_nothing_dropped(dataset, statement, display)
    layout = find_kaggle_layout(Path(dataset.root)) if getattr(dataset, "layout", None) == "kaggle" else None
    files = sorted(f for f in layout.annotations_dir.iterdir() if f.suffix.lower() == ".json") \
        if layout is not None and layout.annotations_dir is not None and layout.annotations_dir.is_dir() else []
    if not files:
        return judge(statement, None, figures={"annotation files": 0},
                     detail="only the Kaggle layout's JSON files are counted, and this dataset has none", display=display)
    kept = {}
    for record in dataset.images:
        kept[record.path.name.lower()] = kept.get(record.path.name.lower(), 0) + len(record.boxes)
        kept.setdefault(record.path.stem.lower(), kept[record.path.name.lower()])
    items = [str(item) for item, _ in dataset.report.dropped]
    entries = n_kept = n_dropped = 0
    unaccounted: list[str] = []
    for f in files:
        base = f.name[: -len(f.suffix)]
        listed = sum(1 for item in items if item.startswith(f"{f.name}["))
        whole = any(item == f"annotations/{f.name}" or re.fullmatch(rf"{re.escape(base)}(\.\w+)?( \(.*\))?", item)
                    for item in items)  # the file itself, or its image (by name, or by stem when the file is 2756.json)
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
            n = len(doc.get("Annotations", [])) if isinstance(doc, dict) and isinstance(doc.get("Annotations", []), list) else None
        except (OSError, UnicodeDecodeError, ValueError, RecursionError):
            n = None
        if n is None:  # a file the loader cannot read either: it must be listed itself
            if not whole:
                unaccounted.append(f.name)
            continue
        entries += n
        k = kept.get(base.lower(), 0)
        n_kept += k
        n_dropped += listed
        if k + listed == n:
            continue
        if k == 0 and whole:  # the whole image was listed (its file missing, unreadable, or no usable box)
            n_dropped += n - listed
            continue
        unaccounted.append(f"{f.name} ({n} entries: {k} kept, {listed} listed)")
    return judge(statement, not unaccounted,
                 figures={"annotation files": len(files), "boxes in them": entries, "kept": n_kept,
                          "listed as dropped": n_dropped, "unaccounted for": len(unaccounted)},
                 detail=("" if not unaccounted else "not accounted for: " + ", ".join(unaccounted[:3])
                         + (", ..." if len(unaccounted) > 3 else "")), display=display)


def _check_voc_nothing_dropped(dataset: Any, statement: str, display: bool) -> Claim:
    """:func:`check_nothing_dropped_silently` on PASCAL VOC: every ``<object>`` of every XML file, read here
    independently of the loader, is a kept box or listed (the object, its XML file or its image). A chosen folder
    in fast mode keeps only some images (:func:`maskedu.get_dataset`): the images left out that way are counted,
    and their number must be what the report kept less what was loaded."""
    import xml.etree.ElementTree as ET
    from pathlib import Path

    from .annotations import _voc_pair

    pair = _voc_pair(Path(dataset.root))
    files = sorted(f for f in pair[1].iterdir() if f.suffix.lower() == ".xml" and f.is_file()) if pair else []
    if not files:
        return judge(statement, None, figures={"annotation files": 0},
                     detail="this PASCAL VOC dataset has no XML annotation file to count", display=display)
    kept = {}
    for record in dataset.images:
        for key in (record.path.name.lower(), record.path.stem.lower()):
            kept[key] = len(record.boxes)
    items = [str(item) for item, _ in dataset.report.dropped]
    entries = n_kept = n_dropped = 0
    not_loaded: list[str] = []
    unaccounted: list[str] = []
    for f in files:
        try:
            node = ET.parse(f).getroot()
        except (ET.ParseError, OSError):
            node = None
        filename = ((node.findtext("filename") if node is not None else None) or "").replace("\\", "/").split("/")[-1]
        stems = {f.stem.lower(), Path(filename).stem.lower()} - {""}
        whole = any(Path(item.split(" (")[0]).stem.lower() in stems for item in items
                    if not item.startswith(f"{f.name} object "))  # the XML file itself, or its image
        if node is None:  # a file the loader cannot read either: it must be listed itself
            if not whole:
                unaccounted.append(f.name)
            continue
        n = len(node.findall("object"))
        listed = sum(1 for item in items if item.startswith(f"{f.name} object "))
        k = next((kept[key] for key in (f.stem.lower(), filename.lower(), Path(filename).stem.lower()) if key in kept), None)
        entries += n
        n_dropped += listed
        if k is not None and k + listed == n:
            n_kept += k
        elif k is None and whole:
            n_dropped += n - listed
        elif k is None:
            not_loaded.append(f.name)  # loaded by the loader but left out of this run, or lost: counted below
        else:
            n_kept += k or 0
            unaccounted.append(f"{f.name} ({n} objects: {k or 0} kept, {listed} listed)")
    from .common import is_fast
    from .download.choose import FAST_IMAGES

    loaded_by_loader = int(getattr(dataset.report, "images_kept", 0))
    subsampled = is_fast() and len(dataset.images) == FAST_IMAGES < loaded_by_loader  # what get_dataset keeps
    left_out = loaded_by_loader - len(dataset.images) if subsampled else 0
    figures = {"annotation files": len(files), "boxes in them": entries, "kept": n_kept, "listed as dropped": n_dropped}
    if left_out:
        figures["images fast mode left out"] = left_out
    unaccounted += not_loaded[left_out:]
    figures["unaccounted for"] = len(unaccounted)
    return judge(statement, not unaccounted, figures=figures,
                 detail=("" if not unaccounted else "not accounted for: " + ", ".join(unaccounted[:3])
                         + (", ..." if len(unaccounted) > 3 else "")), display=display)


def _fisher_less(a_hit: int, a_n: int, b_hit: int, b_n: int) -> float:
    """One-sided Fisher exact test: the chance of a share as low as a_hit/a_n against b_hit/b_n by luck."""
    from scipy.stats import fisher_exact

    return float(fisher_exact([[a_hit, a_n - a_hit], [b_hit, b_n - b_hit]], alternative="less")[1])


def check_masked_faces_missed(report: Any, *, detector: str = "MTCNN", min_faces: int = 10, alpha: float = 0.05,
                              display: bool = True) -> Claim:
    """Check notebook 02's "masked-face problem" on a :class:`~maskedu.crop.CropReport`: ``detector`` finds a
    smaller share of masked faces than of bare ones. Holds when the masked share is lower beyond chance (a
    one-sided Fisher exact test at ``alpha``), is contradicted when it is not lower at all, and is too little
    to tell when it is lower but not by more than chance could give (or either class has fewer than
    ``min_faces`` faces)."""
    per = getattr(report, "per_class", {}) or {}
    (m_n, m_hit), (b_n, b_hit) = per.get("with_mask", [0, 0]), per.get("without_mask", [0, 0])
    statement = f"{detector} finds a smaller share of masked faces than of bare ones"
    figures = {"masked found": f"{m_hit}/{m_n}", "bare found": f"{b_hit}/{b_n}"}
    if min(m_n, b_n) == 0:
        return judge(statement, None, figures=figures, display=display)
    p = _fisher_less(m_hit, m_n, b_hit, b_n)
    figures["Fisher p"] = p
    holds = True if p < alpha else (False if m_hit / m_n >= b_hit / b_n else None)
    return judge(statement, holds, figures=figures, enough=min(m_n, b_n) >= min_faces, display=display)


def check_found_more(ours: Any, theirs: Any, *, label: str = "with_mask", names: tuple[str, str] = ("ours", "theirs"),
                     min_faces: int = 10, display: bool = True) -> Claim:
    """Check "detector ``names[0]`` finds at least as many ``label`` faces as ``names[1]``" on two
    :class:`~maskedu.crop.CropReport` of the same photos."""
    a_n, a_hit = (getattr(ours, "per_class", {}) or {}).get(label, [0, 0])
    b_n, b_hit = (getattr(theirs, "per_class", {}) or {}).get(label, [0, 0])
    holds = None if a_n != b_n or a_n == 0 else a_hit >= b_hit
    return judge(f"{names[0]} finds at least as many {label} faces as {names[1]}", holds,
                 figures={names[0]: f"{a_hit}/{a_n}", names[1]: f"{b_hit}/{b_n}"}, enough=a_n >= min_faces,
                 display=display)


def check_iou(ious: Any, *, low: float = 0.5, high: float = 0.9, min_faces: int = 10, display: bool = True) -> Claim:
    """Check notebook 02's "MTCNN's box overlaps the annotated box but is framed differently": the median
    IoU of the matched faces lies between ``low`` and ``high``."""
    import numpy as np

    v = np.asarray(ious, dtype=np.float64).reshape(-1)
    v = v[~np.isnan(v)]
    med = float(np.median(v)) if len(v) else None
    holds = None if med is None else bool(low <= med <= high)
    return judge(f"MTCNN's boxes overlap the annotated ones but are framed differently (median IoU between {low} and {high})",
                 holds, figures={"matched faces": len(v), "median IoU": med,
                                 "middle half": (float(np.percentile(v, 25)), float(np.percentile(v, 75))) if len(v) else None},
                 enough=len(v) >= min_faces, display=display)


def check_missed_mostly_masked(report: Any, *, min_faces: int = 10, display: bool = True) -> Claim:
    """Check notebook 02's leak argument: the faces the detector misses are mostly masked, so a crop made
    because "no face was found" would mostly carry the label ``with_mask``. Decided by the 95% Wilson interval
    of the masked share of the missed faces (or photos) against one half."""
    missed = [m[-1] for m in (getattr(report, "missed", []) or [])] + [m[-1] for m in (getattr(report, "no_face", []) or [])]
    missed = [m for m in missed if m is not None]
    masked = sum(1 for m in missed if m == "with_mask")
    return _judge_share("the faces the detector misses are mostly masked", masked, len(missed), 0.5, most=True,
                        min_n=min_faces, figures={"missed": len(missed), "masked among them": masked}, detail="",
                        display=display)


def check_no_false_alarms(curve: Any, *, budget: float = 0.02, min_pictures: int = 20, display: bool = True) -> Claim:
    """Check "at its default threshold the second look raises a false alarm on at most ``budget`` of the
    face-free pictures", on a :class:`~maskedu.crop.TradeOff`."""
    import numpy as np

    t = np.asarray(curve.thresholds, dtype=np.float64)
    k = int(np.argmin(np.abs(t - float(curve.current))))
    rate = float(curve.false_positive_rate[k])
    n = int(curve.counts.get("background", 0))
    return judge(f"at its default threshold the second look finds a 'face' in at most {budget:.0%} of the face-free pictures",
                 rate <= budget, figures={"face-free pictures": n, "false alarms": rate, "threshold": float(t[k])},
                 enough=n >= min_pictures, display=display)


def check_split(crops: Any, model: Any, *, display: bool = True) -> Claim:
    """Check notebook 03's "no face, photo or person the model trained on is among the faces it is tested
    on", from the split the model carries (:func:`maskedu.model.held_out`)."""
    import numpy as np

    from .model import _record_of

    record = _record_of(model)
    if record is None:
        return judge("the held-out faces share no face, photo or person with training", None,
                     figures={}, detail="the model carries no split", display=display)
    parts = np.asarray(record.parts)
    seen, test = parts != "test", parts == "test"
    groups, hashes = np.asarray(record.groups), np.asarray(record.hashes)
    photos = np.asarray(record.photos)
    shared_groups = set(groups[seen]) & set(groups[test])
    shared_faces = set(hashes[seen]) & set(hashes[test])
    # a photo may hold two people, one on each side, when the split is by person: count only whole-photo leaks
    shared_photos = set(photos[seen]) & set(photos[test]) if record.grouping == "photo" else set()
    unit = {"person": "people", "photo": "photos"}.get(record.grouping, "faces")
    holds = not (shared_groups or shared_faces or shared_photos)
    return judge(f"the held-out faces share no face (pixel for pixel) and no {record.grouping} with the training faces",
                 holds, figures={f"{unit} in training": len(set(groups[seen])), f"{unit} held out": len(set(groups[test])),
                                 "shared": len(shared_groups | shared_photos), "identical faces": len(shared_faces)},
                 enough=bool(test.any()), display=display)


def check_beats_majority(evaluation: Any, *, min_faces: int = 20, display: bool = True) -> Claim:
    """Check "the model does better on held-out faces than always answering the commoner class", by the
    95% Wilson interval of its accuracy lying wholly above that class's share (an
    :class:`~maskedu.model.Evaluation`)."""
    import numpy as np

    labels = np.asarray(evaluation.labels)
    n = len(labels)
    majority = float(np.bincount(labels).max() / n) if n else 0.0
    right = int(round(evaluation.accuracy * n))
    return _judge_share("the model does better on held-out faces than always answering the commoner class", right, n,
                        majority, most=True, min_n=min_faces, figures={"faces": n, "accuracy": evaluation.accuracy,
                                                                        "commoner class share": majority},
                        detail="", display=display)


def top_probabilities(model: Any, images: Any) -> Any:
    """Each face's highest class probability as float32, the way the attack's fitness sees it."""
    import numpy as np

    from .model import make_predict_fn

    predict = make_predict_fn(model)
    probs = np.concatenate([predict(images[i:i + 256]) for i in range(0, len(images), 256)]) if len(images) else \
        np.zeros((0, 2), np.float32)
    return probs.astype(np.float32).max(axis=1)


def check_smoothing_never_saturates(top: Any, *, min_faces: int = 10, display: bool = True) -> Claim:
    """Check notebook 03's "with label smoothing, no held-out face's top probability is exactly 1.0 in
    float32" on the top probabilities of the default model (:func:`top_probabilities`)."""
    import numpy as np

    top = np.asarray(top, dtype=np.float32).reshape(-1)
    at_one = int((top == np.float32(1.0)).sum())
    return judge("trained with label smoothing, the model gives no held-out face a top probability of exactly 1.0 in float32",
                 at_one == 0, figures={"faces": len(top), "at exactly 1.0": at_one,
                                       "highest": float(top.max()) if len(top) else None},
                 enough=len(top) >= min_faces, display=display)


# --------------------------------------------------------------------------- notebooks 04-06: the attacks

#: Where the published one-pixel figure comes from (notebooks 04 and 05 cite it beside their own rates).
PAPER_SOURCE = "Hu, Wei & Bai 2021, 'Face mask detection and attack with one pixel change', one-pixel success rate"


def sign_test(wins: int, losses: int) -> float:
    """One-sided exact sign test: the chance of ``wins`` or more of ``wins + losses`` untied pairs going
    one way if either way were equally likely (ties are left out). 1.0 when there is no untied pair.

    >>> sign_test(5, 0), sign_test(0, 0), round(sign_test(7, 3), 3)
    (0.03125, 1.0, 0.172)
    """
    wins, losses = _count("wins", wins), _count("losses", losses)
    k = wins + losses
    if k == 0:
        return 1.0
    return sum(math.comb(k, i) for i in range(wins, k + 1)) / 2.0 ** k


def _judge_share(statement: str, hits: int, n: int, threshold: float, *, most: bool, min_n: int,
                 figures: dict, detail: str, display: bool) -> Claim:
    """'More (most=True) / less (most=False) than ``threshold`` of the n items': decided by the 95%
    Wilson interval of hits/n lying wholly on one side of the threshold, else too little data."""
    lo, hi = wilson_interval(hits, n)
    if lo > threshold:
        holds = most
    elif hi < threshold:
        holds = not most
    else:
        holds = None
    figures = dict(figures, share=f"{hits / n:.1%}" if n else None, **{"95% interval": f"{lo:.1%} to {hi:.1%}"})
    return judge(statement, holds, figures=figures, detail=detail, enough=n >= min_n, display=display)


def check_saturation(probs: Any, labels: Any, *, model: str = "the model", saturated: bool = True,
                     share: float = 0.5, min_faces: int = 10, display: bool = True) -> Claim:
    """Check "float32 rounds ``model``'s true-class probability to exactly 1.0 on most of these faces"
    (``saturated=True``) or "on few of them" (``saturated=False``), on this run's probabilities.

    Those faces are the ones the probability fitness cannot work on: every candidate that does not move
    the logits a lot scores exactly 1.0 as well, and differential evolution sees ties. "Most" and "few"
    mean more / less than ``share`` of the faces, told by the 95% Wilson interval of the share (too
    little data when it straddles ``share`` or there are fewer than ``min_faces`` faces).

    >>> import numpy as np
    >>> p = np.array([[0.0, 1.0]] * 30, np.float32)
    >>> check_saturation(p, [1] * 30, display=False).verdict
    'holds'
    >>> check_saturation(p, [1] * 30, saturated=False, display=False).verdict
    'contradicted'
    """
    import numpy as np

    probs = np.asarray(probs)
    labels = np.asarray(labels).reshape(-1).astype(int)
    if probs.ndim != 2 or len(probs) != len(labels):
        raise ParameterError(f"probs must be (faces, classes) with one label per face; got {probs.shape} and {len(labels)} labels.")
    p = probs.astype(np.float32)[np.arange(len(labels)), labels]
    at_one = int((p == np.float32(1.0)).sum())
    n = len(labels)
    word = "most" if saturated else "few"
    statement = (f"float32 rounds {model}'s true-class probability to exactly 1.0 on {word} of these faces "
                 f"({'more' if saturated else 'less'} than {share:.0%}), so the probability fitness sees ties there")
    figures = {"faces": n, "at exactly 1.0": at_one, "above 0.9999": int((p > 0.9999).sum())}
    detail = f"{at_one} of {n} faces at exactly p = 1.0"
    return _judge_share(statement, at_one, n, share, most=saturated, min_n=min_faces, figures=figures,
                        detail=detail, display=display)


def check_better(statement: str, a: Any, b: Any, *, names: tuple[str, str] = ("A", "B"), higher_is_better: bool = True,
                 expect: bool = True, tolerance: float = 0.0, min_pairs: int = 10, alpha: float = 0.05,
                 unit: str = "pairs", display: bool = True) -> Claim:
    """Check "A does better than B" (``expect=True``) or "A does no better than B" (``expect=False``) on
    paired scores: ``a[i]`` and ``b[i]`` come from the same face (or seed).

    A pair where the two differ by more than ``tolerance`` is a win for one side. "A does better" holds
    when A's wins outnumber B's beyond chance (a one-sided exact sign test at ``alpha``), is contradicted
    when A wins no more pairs than B, and is too little to tell when A leads without reaching
    significance; fewer than ``min_pairs`` pairs are always too little. ``expect=False`` swaps holds
    and contradicted.

    >>> check_better("x", [3] * 12, [1] * 12, display=False).verdict
    'holds'
    >>> check_better("x", [1] * 12, [1] * 12, display=False).verdict
    'contradicted'
    >>> check_better("x", [3] * 3, [1] * 3, display=False).verdict
    'too little data to tell'
    """
    import numpy as np

    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ParameterError(f"a and b must be paired (same length); got {len(a)} and {len(b)}.")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ParameterError("a and b must hold numbers, not NaN: leave the failed pairs out first.")
    d = (a - b) if higher_is_better else (b - a)
    wins, losses = int((d > tolerance).sum()), int((d < -tolerance).sum())
    n = len(d)
    p = sign_test(wins, losses)
    if p < alpha:
        better = True
    elif wins <= losses:
        better = False
    else:
        better = None
    holds = None if better is None else (better if expect else not better)
    figures = {unit: n, f"{names[0]} better": wins, f"{names[1]} better": losses, "same": n - wins - losses,
               "sign test p": p}
    detail = (f"{names[0]} did better on {wins}, {names[1]} on {losses}, no difference on {n - wins - losses} of {n} {unit}"
              + ("" if better is not None else f"; {names[0]} leads, but not by more than chance could give"))
    return judge(statement, holds, figures=figures, detail=detail, enough=n >= min_pairs, display=display)


def _paired_records(study: Any, key: str, a_match: dict, b_match: dict) -> tuple[list, list]:
    """Values of ``key`` for the faces attacked under both settings, in face order."""
    def pick(match):
        return {r["index"]: r for r in study.records if all(r.get(k) == v for k, v in match.items())}
    ra, rb = pick(a_match), pick(b_match)
    both = sorted(set(ra) & set(rb))
    return [ra[i][key] for i in both], [rb[i][key] for i in both]


def check_margin_fitness(study: Any, *, model: str = "the model", better: bool = True, min_faces: int = 10,
                         display: bool = True, **match: Any) -> Claim:
    """Check "the margin fitness does better than the probability fitness on ``model``" (``better=True``)
    or "does no better" (``better=False``), on the faces of an :class:`~maskedu.attack.AttackStudy`
    attacked with both (``match`` narrows the settings, e.g. ``pixels=1``).

    "Better" is per face: the attack ends with the lower logit margin (true logit minus the other), the
    attacker's progress towards a flip, whether or not it flipped; see :func:`check_better`.
    """
    a, b = _paired_records(study, "final_margin", dict(match, fitness="margin"), dict(match, fitness="probability"))
    statement = (f"the margin fitness does {'better' if better else 'no better'} than the probability fitness "
                 f"on {model} (a lower logit margin at the end, face by face)")
    return check_better(statement, a, b, names=("margin", "probability"), higher_is_better=False, expect=better,
                        tolerance=1e-4, min_pairs=min_faces, unit="faces", display=display)


def check_rate(statement: str, successes: int, n: int, *, above: float | None = None, below: float | None = None,
               source: str = "", min_n: int = 10, display: bool = True) -> Claim:
    """Check a success rate against a threshold: "``successes`` of ``n`` is above ``above``" or "below
    ``below``" (give one), decided by the rate's 95% Wilson interval lying wholly on one side of it (too
    little data to tell when the interval holds it, or below ``min_n``). ``source`` names where the
    threshold comes from when it is a published figure; the figures then say how many attacks it would
    take to tell this rate from it (:func:`faces_to_distinguish`).

    >>> check_rate("rare", 0, 40, below=0.10, display=False).verdict
    'holds'
    >>> check_rate("rare", 0, 20, below=0.10, display=False).verdict
    'too little data to tell'
    """
    if (above is None) == (below is None):
        raise ParameterError("check_rate needs exactly one of above= or below=.")
    successes, n = _count("successes", successes), _count("n", n)
    threshold = _rate("above" if above is not None else "below", above if above is not None else below)
    figures = {"successes": successes, "attacks": n,
               ("above" if above is not None else "below"): threshold}
    if source:
        figures["attacks to tell apart"] = faces_to_distinguish(successes / n, threshold) if n else None
    detail = f"threshold from {source}" if source else ""
    return _judge_share(statement, successes, n, threshold, most=above is not None, min_n=min_n, figures=figures,
                        detail=detail, display=display)


def check_hill_climbing(histories: Any, *, after: int = 10, name: str = "very fast cooling", min_iterations: int = 20,
                        display: bool = True) -> Claim:
    """Check notebook 06's "after its first ``after`` iterations, ``name`` accepts no worse move: its current
    fitness never falls (greedy hill climbing)" on the :class:`~maskedu.anneal.SearchHistory` of one or
    more searches. Too little data when a search has fewer than ``min_iterations`` iterations.

    >>> from maskedu.anneal import SearchHistory
    >>> h = SearchHistory(fitness=[1.0, 2.0, 2.0], candidate_fitness=[1.0, 2.0, 0.5], accepted=[True, True, False],
    ...                   initial_fitness=0.0)
    >>> check_hill_climbing(h, after=0, min_iterations=3, display=False).verdict
    'holds'
    """
    if hasattr(histories, "fitness") and hasattr(histories, "accepted"):
        histories = [histories]
    histories = list(histories)
    after = _count("after", after)
    if not histories or not all(hasattr(h, "fitness") and hasattr(h, "candidate_fitness") for h in histories):
        raise ParameterTypeError("histories must be one SearchHistory (result.history) or a list of them.")
    worse = falls = 0
    for h in histories:
        before = [h.initial_fitness] + list(h.fitness[:-1])
        steps = list(zip(h.accepted, h.candidate_fitness, before, h.fitness))[after:]
        worse += sum(1 for a, c, b, _ in steps if a and c < b)
        falls += sum(1 for _, _, b, now in steps if now < b)
    shortest = min(len(h.fitness) for h in histories)
    return judge(f"after its first {after} iterations, {name} accepts no worse move: its current fitness never falls "
                 "(greedy hill climbing)", worse == 0 and falls == 0,
                 figures={"searches": len(histories), "iterations each": shortest,
                          f"worse moves accepted after iteration {after}": worse, "falls of the current fitness": falls},
                 enough=shortest >= min_iterations, display=display)
