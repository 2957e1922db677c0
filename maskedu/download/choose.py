"""Which data the course runs on (:func:`get_dataset`), and deleting what was derived from it (:func:`forget`).

One setting picks the data for every notebook: ``MASKEDU_DATASET=<folder>`` (or a known Kaggle slug,
:data:`~maskedu.download.DATASETS`), or the same as an argument, ``get_dataset(path)`` /
``get_dataset(dataset=slug)``. The folder may be in any layout :func:`maskedu.annotations.load_dataset`
detects (the Kaggle Wobot layout, PASCAL VOC, class folders). Without it: the paper's Kaggle data if it
is installed or can be downloaded, else the built-in sample. A banner says which data is used and why.

Classes: the paper's two (``with_mask``, ``without_mask``) by default, faces of other classes left out with
their count said; ``MASKEDU_CLASSES=3`` (or ``get_dataset(classes=3)``) keeps faces whose mask is worn
incorrectly as a third class, ``"mask_worn_incorrectly"``, which the crops, the classifier and the
notebooks then follow (each asks the data: ``dataset.class_names``).

Users' photos never leave their machine and are never copied: the crops and models derived from them are
written under the data folder (``data/crops``, ``data/models``), and :func:`forget` deletes them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import logging
import os
from pathlib import Path

from .. import common
from .credentials import find_credentials, redact
from .errors import DownloadError
from .install import DATASETS, KAGGLE_SLUG, dataset_path, download_dataset, installed_path, is_installed, known_dataset

__all__ = ["DATASET_ENV", "CLASSES_ENV", "get_dataset", "chosen_classes", "dataset_key", "derived_key", "forget"]

log = logging.getLogger(__name__)

#: The environment variable that picks the course's data: a folder, or a slug of :data:`DATASETS`.
DATASET_ENV = "MASKEDU_DATASET"

#: The environment variable that picks how many classes the course uses: 2 (default) or 3.
CLASSES_ENV = "MASKEDU_CLASSES"

#: How many images of a chosen folder fast mode keeps.
FAST_IMAGES = 48

_LAYOUT_NAMES = {"kaggle": "the Kaggle (Wobot) layout", "voc": "PASCAL VOC", "folders": "class folders"}


def chosen_classes(classes: int | str | None = None) -> int:
    """How many classes the course uses: ``classes`` when given, else ``MASKEDU_CLASSES``, else 2.

    Only 2 and 3 are choices; anything else raises :class:`~maskedu.common.ParameterError` naming the setting.

    >>> chosen_classes(3)
    3
    """
    from ..dataset import check_classes

    if classes is not None:
        return check_classes(classes)
    env = os.environ.get(CLASSES_ENV, "").strip()
    return check_classes(env, setting=CLASSES_ENV) if env else 2


def _sample_root(verbose: bool) -> Path:
    """The built-in sample: a finished one in the data folder or a shared layer (:func:`maskedu.common.find_artifact`),
    else built now in the data folder."""
    import inspect

    from ..sample import is_sample_dataset, make_sample_dataset

    name, sizes = ("sample-fast", {"n_images": 16}) if common.is_fast() else ("sample", {})
    default = inspect.signature(make_sample_dataset).parameters.get("n_images")  # the size it builds by default
    n_images = sizes.get("n_images", getattr(default, "default", None))
    params = dict(seed=0, **({"n_images": n_images, "n_unannotated": max(1, n_images // 20)} if isinstance(n_images, int) else {}))
    found = common.find_artifact(name, fast=False, problem=lambda p: None if is_sample_dataset(p, **params) else
                                 "not a finished sample of this maskedu version (no completion marker, or other parameters)")
    if found is not None:
        if verbose:
            print(f"Sample dataset already built in {found} (reused).")
        return found
    return Path(make_sample_dataset(common.data_dir() / name, **sizes, verbose=verbose))


def _banner(title: str, why: str, root: Path, colour: str) -> None:
    if common.in_notebook():
        from IPython.display import HTML, display

        display(
            HTML(
                f'<div style="border:2px solid {colour};border-radius:6px;padding:8px 12px;margin:4px 0">'
                f'<b style="color:{colour}">{html.escape(title)}</b><br>'
                f"<span>{html.escape(why).replace(chr(10), '<br>')}</span><br>"
                f"<code>{html.escape(str(root))}</code></div>"
            )
        )
    else:
        rule = "=" * 78
        print(f"{rule}\n{title}\n{why}\nfolder: {root}\n{rule}", flush=True)


def _left_out(dataset) -> str:
    """One sentence on the classes the course uses, and on the faces of the classes it leaves out."""
    if dataset.annotated:
        counts = {raw: n for raw, n in dataset.raw_class_counts().items() if dataset.class_map.get(raw) is None}
    else:  # the loader skips the photos of an unmapped class folder: count them here
        folders = [Path(dataset.root) / raw for raw, label in dataset.class_map.items() if label is None]
        counts = {f.name: sum(1 for p in f.iterdir() if p.is_file() and not p.name.startswith(".")) for f in folders
                  if f.is_dir()}
        counts = {raw: n for raw, n in counts.items() if n}
    from ..dataset import keep_third_class

    what = "faces" if dataset.annotated else "photos"
    names = dataset.class_names
    kept = ""
    if len(names) > 2:  # the third class, kept on request: say how many faces it has
        third = dataset.class_counts().get(names[2], 0)
        kept = (f"\n{len(names)} classes ({CLASSES_ENV}=3): {', '.join(names)}; kept {third} {what} of {names[2]}.")
        if not third:
            kept += (f" This data has none, so a {len(names)}-class classifier cannot be trained on it: choose data "
                     f"with such faces (MASKEDU_DATASET=...), or unset {CLASSES_ENV}.")
    if not counts:
        return kept
    listed = ", ".join(f"{raw or '(no class)'}: {n}" for raw, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    uses = ", ".join(names[:-1]) + " and " + names[-1]
    third_left_out = [raw for raw, label in keep_third_class(dict.fromkeys(counts)).items() if label]
    hint = (f" ({CLASSES_ENV}=3 keeps {', '.join(third_left_out)} as a third class)"
            if len(names) == 2 and third_left_out else "")
    return kept + (f"\nLeft out: {sum(counts.values())} {what} of other classes ({listed}); the course uses {uses}"
                   f"{hint}.")


def _folder_dataset(root: Path, chosen_by: str, verbose: bool, *, source: str = "folder", classes: int = 2):
    """Load a folder of any known layout; a clear error naming what was found when it is none of them."""
    from ..annotations import LayoutError, load_dataset

    root = Path(root).expanduser()
    checkout = common.repo_root()
    if not root.is_absolute() and not root.exists() and checkout is not None and (checkout / root).is_dir():
        root = (checkout / root).resolve()  # a notebook's kernel runs in notebooks/: a path relative to the checkout works too
    if not root.is_dir():
        what = "a file" if root.exists() else f"not there (looked in {Path.cwd()})"
        raise common.ParameterError(
            f"{chosen_by} names {root}, which is {what}. Give the folder of a dataset (Kaggle, PASCAL VOC or "
            f"class folders such as with_mask/ and without_mask/); unset {DATASET_ENV} to use the default data."
        )
    try:
        dataset = load_dataset(root, classes=classes)
    except LayoutError as exc:  # it names what the folder holds and the layouts known; say who chose the folder
        raise LayoutError(f"{chosen_by}: {exc}") from None
    dataset.source = source
    layout = _LAYOUT_NAMES.get(dataset.layout, dataset.layout)
    why = f"Chosen by {chosen_by}: {len(dataset)} images in {layout}." + _left_out(dataset)
    if common.is_fast() and len(dataset) > FAST_IMAGES:  # evenly spread, so every class folder keeps its share
        keep = sorted({round(i * (len(dataset) - 1) / (FAST_IMAGES - 1)) for i in range(FAST_IMAGES)})
        why += f"\nFast mode (MASKEDU_FAST=1) uses {len(keep)} of its {len(dataset)} images, spread evenly."
        dataset = dataclasses.replace(dataset, images=[dataset.images[i] for i in keep])
    dataset.report.notes.append(f"data source: {root} ({chosen_by})")
    if verbose:
        name = known_dataset(source).slug if source in DATASETS else root.name
        _banner(f"Data: {name} ({len(dataset)} images, {layout})", why, root.resolve(), "#1565c0")
    return dataset


def get_dataset(path: str | os.PathLike | None = None, prefer: str | None = None, verbose: bool = True, *,
                dataset: str | None = None, classes: int | None = None):
    """The dataset every notebook uses, with a banner saying which one and why.

    ``path`` (or ``MASKEDU_DATASET=<folder>``) runs the course on that folder, in any layout
    :func:`maskedu.annotations.load_dataset` detects (in fast mode, :data:`FAST_IMAGES` of its images spread
    evenly). ``dataset`` (or ``MASKEDU_DATASET=<slug>``) is a
    Kaggle dataset of :data:`~maskedu.download.DATASETS`, downloaded once (``maskedu download --dataset``).
    Otherwise (``prefer=None``): the paper's Kaggle dataset if it is installed under the data folder, else
    a download when credentials exist (falling back to the sample, with the reason, if it fails), else the
    built-in sample (:func:`maskedu.sample.make_sample_dataset`). In fast mode (``MASKEDU_FAST=1``) the
    small sample in ``data/sample-fast`` is used unless you ask for Kaggle. ``prefer="kaggle"`` insists
    on the paper's Kaggle set (errors are raised); ``prefer="sample"`` always uses the sample. Explicit
    arguments win over ``MASKEDU_DATASET``. The returned :class:`~maskedu.annotations.Dataset` has
    ``source`` set to ``"kaggle"``, ``"sample"`` or ``"folder"``.

    ``classes`` (or ``MASKEDU_CLASSES``; the argument wins) is 2, the paper's ``with_mask`` and
    ``without_mask`` (default), or 3, which also keeps the faces whose mask is worn incorrectly (Kaggle's
    ``face_with_mask_incorrect``, VOC's ``mask_weared_incorrect``, a class folder of that name) as
    ``"mask_worn_incorrectly"``, label 2; labels 0 and 1 mean the same either way. The dataset's
    ``class_names`` say which; the banner says how many faces the third class kept.

    >>> ds = get_dataset(prefer="sample", verbose=False)  # doctest: +SKIP
    >>> ds.source  # doctest: +SKIP
    'sample'
    >>> ds = get_dataset("../shared/scenes")  # doctest: +SKIP
    """
    common.check_choice("prefer", prefer, (None, "kaggle", "sample"))
    classes = chosen_classes(classes)
    if path is not None and dataset is not None:
        raise common.ParameterError("get_dataset takes a folder (path) or a Kaggle slug (dataset), not both.")
    if prefer is not None and (path is not None or dataset is not None):
        raise common.ParameterError(f"prefer={prefer!r} chooses between the Kaggle data and the sample; "
                                    "it cannot be combined with path or dataset.")
    chosen_by = "get_dataset(path)" if path is not None else "get_dataset(dataset=...)"
    if path is None and dataset is None and prefer is None:
        env = os.environ.get(DATASET_ENV, "").strip()
        if env:
            chosen_by = f"{DATASET_ENV}={env}"
            if env in DATASETS:
                dataset = env
            else:
                path = env
    if path is not None:
        return _folder_dataset(Path(path), chosen_by, verbose, classes=classes)
    if dataset is not None:
        spec = known_dataset(dataset)
        if spec.slug == KAGGLE_SLUG:
            prefer = "kaggle"
        else:
            root = download_dataset(dataset=spec.slug, quiet=not verbose)
            return _folder_dataset(root, chosen_by, verbose, source=spec.slug, classes=classes)
    return _default_dataset(prefer, verbose, classes)


def _default_dataset(prefer: str | None, verbose: bool, classes: int = 2):
    """The paper's Kaggle data or the sample (get_dataset without a folder or slug)."""
    from ..annotations import load_annotations

    quiet = not verbose
    source, why = "sample", ""
    target = dataset_path()
    if prefer == "sample":
        why = "You asked for the sample (prefer='sample')."
    elif prefer == "kaggle":
        if is_installed():
            source, why = "kaggle", "Found the finished Kaggle download."
        else:
            download_dataset(quiet=quiet)
            source, why = "kaggle", "Downloaded it just now with your Kaggle credentials."
    elif is_installed() and not common.is_fast():
        source, why = "kaggle", "Found the finished Kaggle download."
    elif common.is_fast():
        why = "Fast mode (MASKEDU_FAST=1) uses the small built-in sample; get_dataset(prefer='kaggle') uses the Kaggle data."
    elif find_credentials(warn=False) is None:
        why = (
            "No Kaggle credentials were found, so this runs offline on scenes built from photos that ship with "
            "installed packages. To use the real data, see print(maskedu.download.credentials_help())."
        )
    else:
        try:
            download_dataset(quiet=quiet)
            source, why = "kaggle", "Downloaded it just now with your Kaggle credentials."
        except DownloadError as exc:
            why = f"The Kaggle download failed, so the built-in sample is used instead. Reason:\n{redact(str(exc))}"
            log.warning("Kaggle download failed, using the sample: %s", why)
    if source == "sample" and target.is_dir() and not is_installed():
        why += (
            f"\n{target} exists but was not installed by maskedu (no completion marker), so it is not used: "
            "load it yourself with maskedu.load_annotations(path), or install the zip with "
            "maskedu.download.install_archive(zip_path)."
        )
    root = (installed_path() or target) if source == "kaggle" else _sample_root(verbose)
    dataset = load_annotations(root, classes=classes)
    dataset.source = source
    if classes == 3:
        why += _left_out(dataset)
    dataset.report.notes.append(f"data source: {source} ({why.splitlines()[0]})")
    if verbose:
        if source == "kaggle":
            title, colour = f"Data: the Kaggle dataset {KAGGLE_SLUG} ({len(dataset)} images)", "#2e7d32"
        else:
            title = f"Data: the built-in SAMPLE dataset ({len(dataset)} images in the Kaggle layout), not the Kaggle data"
            colour = "#e65100"
        _banner(title, why, root, colour)
    return dataset


# --------------------------------------------------------------------------- forgetting derived data


def dataset_key(root: str | os.PathLike) -> str:
    """A short name for a dataset folder, for keeping what is derived from it apart: ``<name>-<8 hex>``.

    >>> dataset_key("/home/me/photos")
    'photos-46033733'
    """
    path = Path(root).expanduser().resolve()
    return f"{path.name}-{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"


def derived_key() -> str:
    """The subfolder for what is derived from the course's data: ``""`` for the default data (the Kaggle set or
    the sample), else :func:`dataset_key` of the ``MASKEDU_DATASET`` folder (or of a known slug's folder).

    Models saved under ``data/models/<derived_key()>/`` never overwrite the sample's, and :func:`forget`
    deletes that subfolder.

    >>> derived_key() if "MASKEDU_DATASET" not in os.environ else ""
    ''
    """
    chosen = os.environ.get(DATASET_ENV, "").strip()
    if not chosen:
        return ""
    return dataset_key((installed_path(chosen) or dataset_path(None, chosen)) if chosen in DATASETS else chosen)


def _under(path: str, root: Path) -> bool:
    try:
        return Path(os.path.realpath(path)).is_relative_to(root)
    except (OSError, ValueError):
        return False


def _crop_cache_from(cache: Path, root: Path) -> bool:
    import numpy as np

    try:
        with np.load(cache, allow_pickle=False) as z:
            return any(_under(str(p), root) for p in z["paths"])
    except Exception:  # an unreadable cache is not ours to judge
        return False


def _photo_ids(root: Path) -> set[str]:
    return {"/".join(p.parts[-2:]) for p in root.rglob("*") if p.is_file()}


def _model_from(split_file: Path, photo_ids: set[str]) -> bool:
    try:
        faces = json.loads(split_file.read_text(encoding="utf-8"))["faces"]
        photos = {str(row[0]) for row in faces}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return False
    return bool(photos) and photos <= photo_ids


def forget(folder: str | os.PathLike | None = None, *, dry_run: bool = False) -> list[Path]:
    """Delete the crops, models and caches derived from the dataset in ``folder``; return what was (to be) deleted.

    ``folder`` defaults to ``MASKEDU_DATASET``. The photos themselves are never touched (maskedu never
    copies them). What goes: crop caches (``data/crops/*.npz``) holding a face of a photo under ``folder``,
    models (``data/models/*.keras`` with their split files) trained only on photos of ``folder``, and
    anything under ``data/*/<dataset_key(folder)>``. ``dry_run=True`` only lists them.

    >>> forget("~/my-photos", dry_run=True)  # doctest: +SKIP
    [PosixPath('.../data/crops/crops-1a2b3c.npz'), PosixPath('.../data/models/resnet.keras'), ...]
    """
    if folder is None:
        folder = os.environ.get(DATASET_ENV, "").strip() or None
    if folder is None:
        raise common.ParameterError(f"forget() needs the dataset's folder (or {DATASET_ENV} set to it).")
    if str(folder) in DATASETS:
        folder = dataset_path(None, str(folder))
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise common.ParameterError(f"{root} is not a folder; give the dataset folder whose derived data should go.")
    data = common.data_dir(create=False)
    doomed: list[Path] = []
    if data.is_dir():
        doomed += [p for p in sorted((data / "crops").glob("*.npz")) if _crop_cache_from(p, root)]
        ids = _photo_ids(root)
        for model in sorted((data / "models").glob("*.keras")):
            split = model.with_suffix(".split.json")
            if _model_from(split, ids):
                doomed += [model, split]
        doomed += sorted(p for p in data.glob(f"*/{dataset_key(root)}") if p.exists())
    if not dry_run:
        import shutil

        for path in doomed:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    return doomed
