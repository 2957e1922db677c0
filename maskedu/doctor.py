"""``maskedu doctor``: what a student runs when something looks wrong.

One line per item, each with what to do when it is not right::

    $ maskedu doctor
    ok    Python: 3.11.2 (/work/main/.venv/bin/python)
    ok    packages: tensorflow 2.21.0, keras 3.15.0, mtcnn 1.0.0, ...
    info  GPU: TensorFlow sees no GPU: everything runs on the CPU (fine for this course; slower training)
    warn  Kaggle credentials: none found -> the notebooks use the built-in sample; to get the full dataset ...
    ...

From Python::

    >>> from maskedu.doctor import run_checks
    >>> checks = run_checks(tensorflow=False)          # skip the slow TensorFlow import
    >>> [c.name for c in checks][:2]
    ['Python', 'packages']

Kaggle credentials are looked up where the ``kaggle`` client looks (:func:`maskedu.download.find_credentials`);
only their kind and location are ever shown, never their value.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from . import common

__all__ = ["Check", "run_checks", "format_check", "report", "STATUSES", "check_shared_data"]

STATUSES = ("ok", "info", "warn", "fail")

#: distribution name -> import name, for what the notebooks need.
PACKAGES = {
    "tensorflow": "tensorflow",
    "keras": "keras",
    "mtcnn": "mtcnn",
    "numpy": "numpy",
    "scipy": "scipy",
    "matplotlib": "matplotlib",
    "ipywidgets": "ipywidgets",
    "jupyterlab": "jupyterlab",
    "kaggle": "kaggle",
    "pillow": "PIL",
    "scikit-image": "skimage",
    "opencv-python-headless": "cv2",
    "dlib-bin": "dlib",
    "tqdm": "tqdm",
}
WIDGETS_EXTENSION = "@jupyter-widgets/jupyterlab-manager"
INSTALL = "run `make install` in the checkout (or `pip install -e .`)"


@dataclass(frozen=True)
class Check:
    """One item of the report: ``status`` is "ok", "info", "warn" or "fail"; ``fix`` says what to do."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    @property
    def ok(self) -> bool:
        """False only for a failure (something the notebooks cannot work without)."""
        return self.status != "fail"


def format_check(check: Check) -> str:
    """One line: status, name, what was found, and (when not ok) what to do."""
    line = f"{check.status:<5} {check.name}: {check.detail}"
    if check.fix:
        line += f" -> {check.fix}"
    return line


# --------------------------------------------------------------------------- the checks


def check_python() -> Check:
    version = platform.python_version()
    if sys.version_info < (3, 11):
        return Check("Python", "fail", f"{version} ({sys.executable})", "maskedu needs Python 3.11 or newer")
    return Check("Python", "ok", f"{version} ({sys.executable})")


def check_packages() -> list[Check]:
    found, checks = [], []
    for dist, module in PACKAGES.items():
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            checks.append(Check(f"package {dist}", "fail", f"not installed (import {module})", INSTALL))
    maskedu_version = _version("maskedu")
    summary = ", ".join(found) + (f"; maskedu {maskedu_version}" if maskedu_version else "")
    checks.insert(0, Check("packages", "ok" if not checks else "fail", summary or "none of them", "" if not checks else INSTALL))
    return checks


def check_gpu() -> Check:
    try:
        from .common import import_tensorflow

        tf = import_tensorflow()
    except Exception as exc:  # a broken TensorFlow install is exactly what doctor is for
        return Check("GPU", "fail", f"TensorFlow does not import: {type(exc).__name__}: {exc}", INSTALL)
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return Check("GPU", "ok", f"TensorFlow {tf.__version__} sees {len(gpus)} GPU(s): {', '.join(g.name for g in gpus)}")
    return Check(
        "GPU", "info", f"TensorFlow {tf.__version__} sees no GPU: everything runs on the CPU",
        "fine for this course (training is slower; MASKEDU_FAST=1 shrinks it further)",
    )


def check_kaggle_credentials() -> Check:
    try:
        from .download import find_credentials
    except Exception as exc:
        return Check("Kaggle credentials", "warn", f"cannot check ({type(exc).__name__}: {exc})", INSTALL)
    try:
        creds = find_credentials(warn=False)
    except Exception as exc:
        return Check("Kaggle credentials", "warn", f"cannot read them ({type(exc).__name__})",
                     "see `maskedu download --help`; the notebooks still work with the built-in sample")
    if creds is None:
        return Check(
            "Kaggle credentials", "warn", "none found (looked at KAGGLE_API_TOKEN, KAGGLE_USERNAME/KAGGLE_KEY, "
            "kaggle.json in $KAGGLE_CONFIG_DIR or ~/.kaggle)",
            "the notebooks use the built-in sample dataset; for the full one create a token at "
            "https://www.kaggle.com/settings, then `export KAGGLE_API_TOKEN=...` and run `maskedu download`",
        )
    # str(creds) names the kind and where it was found (a variable's name or a file path), never the secret
    return Check("Kaggle credentials", "ok", f"found: {creds}")


def check_data_folder(data: Path) -> Check:
    """Whether the data folder can be used, judged as :func:`maskedu.common.data_dir` judges it."""
    try:
        in_the_way = any(p.exists() and not p.is_dir() for p in (data, *data.parents))
        if data.is_dir() or in_the_way:
            common.data_dir()  # raises DataFolderError, with the reason, where setup() would
            return Check("data folder", "ok", f"{data} (writable)")
        parent = next(p for p in data.parents if p.is_dir())
    except common.DataFolderError as exc:
        return Check("data folder", "fail", str(exc).split(" To fix it,")[0],
                     f"set {common.DATA_ENV} to a folder you can write to")
    if os.access(parent, os.W_OK | os.X_OK):
        return Check("data folder", "ok", f"{data} (created when a notebook first runs)")
    return Check("data folder", "fail", f"{data} cannot be created: {parent} is not writable",
                 f"set {common.DATA_ENV} to a folder you can write to")


def check_dataset(data: Path) -> Check:
    """What :func:`maskedu.get_dataset` will use: the same test (``download.is_installed``) it applies."""
    from .download import DATASET_ENV, DATASETS, MARKER_NAME, dataset_path, is_installed

    chosen = os.environ.get(DATASET_ENV, "").strip()
    if chosen in DATASETS:
        if is_installed(data, chosen):
            return Check("dataset", "ok", f"{DATASET_ENV} picks the Kaggle dataset {chosen}, in {dataset_path(data, chosen)}")
        return Check("dataset", "fail", f"{DATASET_ENV} picks the Kaggle dataset {chosen}, which is not downloaded",
                     f"run `maskedu download --dataset {chosen}`, or unset {DATASET_ENV}")
    if chosen:
        from .annotations import LayoutError, detect_layout

        try:
            layout = detect_layout(chosen)
        except (LayoutError, OSError) as exc:
            return Check("dataset", "fail", f"{DATASET_ENV}={chosen}: {' '.join(str(exc).split())}",
                         f"point {DATASET_ENV} at a Kaggle, PASCAL VOC or class-folder dataset, or unset it")
        return Check("dataset", "ok", f"{DATASET_ENV} picks {chosen} ({layout} layout); "
                     f"what is derived from it goes to {data / 'crops'} and {data / 'models'} (`maskedu forget` deletes it)")
    full = dataset_path(data)
    if is_installed(data):
        if common.is_fast():
            return Check("dataset", "ok", f"Kaggle dataset in {full}; fast mode (MASKEDU_FAST=1) uses the small "
                         "sample unless you call get_dataset(prefer='kaggle')")
        return Check("dataset", "ok", f"Kaggle dataset in {full}")
    if full.exists():
        return Check(
            "dataset", "warn",
            f"{full} has no completion marker ({MARKER_NAME}): an interrupted or hand-made copy, so "
            "get_dataset() uses the built-in sample instead",
            "install a zip downloaded by hand with maskedu.download.install_archive(zip_path), or run "
            "`maskedu download --force`; maskedu.load_annotations(path) loads the folder as it is",
        )
    samples = [data / n for n in ("sample", "sample-fast") if (data / n / "train.csv").is_file()]
    samples += [layer / n for layer in _layers() for n in ("sample", "sample-fast") if (layer / n / "train.csv").is_file()]
    if samples:
        return Check("dataset", "warn", f"only the built-in sample ({', '.join(str(s) for s in samples)})",
                     "fine for learning; for the paper's numbers get the Kaggle dataset with `maskedu download`")
    return Check("dataset", "warn", f"nothing in {data} yet",
                 "run notebook 01 (or `maskedu sample`): it builds the sample dataset in a few seconds")


def check_crops(data: Path) -> Check:
    files = sorted((data / "crops").glob("*.npz")) if (data / "crops").is_dir() else []
    if files:
        return Check("crops", "ok", f"{len(files)} cached crop set(s) in {data / 'crops'}")
    shared = [layer / "crops" for layer in _layers() if any((layer / "crops").glob("*.npz"))]
    if shared:
        return Check("crops", "ok", f"none of your own yet; the shared cached crops in {', '.join(map(str, shared))} are read")
    return Check("crops", "warn", f"no cached face crops in {data / 'crops'}",
                 "run notebook 02 (or `maskedu.crop.get_crops()`); later notebooks also build them when missing")


def check_model(data: Path) -> Check:
    normal = data / "models" / "resnet.keras"
    fast = data / "models" / "resnet-fast.keras"
    normal = next((p for p in (normal, *(layer / "models" / "resnet.keras" for layer in _layers())) if p.is_file()), normal)
    if normal.is_file():
        return Check("model", "ok", f"trained classifier at {normal} ({normal.stat().st_size / 1e6:.1f} MB)")
    if fast.is_file():
        return Check("model", "warn", f"only the fast-mode model {fast} (trained in seconds on a few faces)",
                     "run notebook 03 to train the real one")
    return Check("model", "warn", f"no trained classifier at {normal}",
                 "run notebook 03 (or `maskedu.model.get_model()`); later notebooks train a quick one when missing")


def _layer_contents(layer: Path) -> str:
    """What a shared layer holds, in a few words (finished datasets and samples, crop caches, models)."""
    from .download.install import DATASETS, _marker
    from .sample import read_sample_info

    held = [n for n in ("sample", "sample-fast") if read_sample_info(layer / n) is not None]
    held += [spec.folder for slug, spec in DATASETS.items() if _marker(layer / spec.folder, slug) is not None]
    n_crops = len(list((layer / "crops").glob("*.npz"))) if (layer / "crops").is_dir() else 0
    n_models = len(list((layer / "models").rglob("*.keras"))) if (layer / "models").is_dir() else 0
    return f"{', '.join(held) or 'no dataset'}; {n_crops} crop cache(s), {n_models} model(s)"


def _layers() -> list[Path]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", common.SharedDataWarning)  # check_shared_data reports the missing ones
        return common.shared_data_dirs()


def check_shared_data() -> Check:
    """The read-only layers under the data folder (``MASKEDU_SHARED_DATA``): which exist and what they hold."""
    given = [p for p in os.environ.get(common.SHARED_DATA_ENV, "").split(os.pathsep) if p.strip()]
    if not given:
        return Check("shared data", "info", f"none ({common.SHARED_DATA_ENV} is not set): everything is built in "
                     "the data folder")
    layers = _layers()
    found = {str(p) for p in layers}
    missing = [p for p in given if str(Path(p.strip()).expanduser().resolve()) not in found
               and Path(p.strip()).expanduser().resolve() != common.data_dir(create=False)]
    detail = "; ".join(f"{layer} (read-only use: {_layer_contents(layer)})" for layer in layers) or "no usable layer"
    if missing:
        return Check("shared data", "warn", f"{detail}; not a folder: {', '.join(missing)}",
                     f"fix {common.SHARED_DATA_ENV} or mount the missing folder; meanwhile everything is built in the data folder")
    return Check("shared data", "ok", detail + "; read first after the data folder, never written")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def check_widgets_extension() -> Check:
    """ipywidgets 8 renders in JupyterLab 4 / Notebook 7 through the prebuilt widget-manager extension."""
    try:
        from jupyter_core.paths import jupyter_path
    except ImportError:
        return Check("widgets extension", "fail", "jupyter_core is not installed", INSTALL)
    ipyw = _version("ipywidgets")
    fix = "run `pip install 'ipywidgets>=8' jupyterlab_widgets` in the environment JupyterLab runs from"
    for base in jupyter_path("labextensions"):
        pkg = Path(base) / WIDGETS_EXTENSION / "package.json"
        if pkg.is_file():
            try:
                version = json.loads(pkg.read_text()).get("version", "?")
            except (OSError, ValueError):
                version = "?"
            if ipyw is None or int(ipyw.split(".")[0]) < 8:
                return Check("widgets extension", "fail", f"{WIDGETS_EXTENSION} {version} but ipywidgets {ipyw}", fix)
            return Check("widgets extension", "ok",
                         f"{WIDGETS_EXTENSION} {version} in {pkg.parent.parent.parent} (ipywidgets {ipyw})")
    return Check("widgets extension", "fail", f"{WIDGETS_EXTENSION} is not installed: the panels would not show", fix)


def run_checks(*, tensorflow: bool = True) -> list[Check]:
    """Every check, in the order they are printed. ``tensorflow=False`` skips the (slow) GPU check."""
    data = common.data_dir(create=False)
    checks = [check_python(), *check_packages()]
    if tensorflow:
        checks.append(check_gpu())
    checks += [check_kaggle_credentials(), check_data_folder(data), check_shared_data(), check_dataset(data),
               check_crops(data), check_model(data), check_widgets_extension()]
    return checks


def report(checks: list[Check] | None = None, *, file=None) -> int:
    """Print one line per check; return 1 when something failed, else 0 (the command's exit status)."""
    checks = run_checks() if checks is None else checks
    out = file or sys.stdout
    print(f"maskedu doctor: data folder {common.data_dir(create=False)} · fast mode {'on' if common.is_fast() else 'off'}", file=out)
    for c in checks:
        print(format_check(c), file=out)
    failed = [c.name for c in checks if not c.ok]
    print("all essentials are in place" if not failed else f"fix first: {', '.join(failed)}", file=out)
    return 1 if failed else 0
