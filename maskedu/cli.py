"""The ``maskedu`` command.

``maskedu demo``      build the sample dataset and execute every notebook headlessly (executed copies in data/executed/)
``maskedu sample``    write the embedded sample dataset (Kaggle layout) to a folder
``maskedu download``  fetch the Kaggle dataset (needs Kaggle credentials)
``maskedu doctor``    check the installation, credentials (never shown), data, model and widgets
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import common


def _notebooks_dir() -> Path:
    root = common.repo_root()
    if root is None:
        raise SystemExit("maskedu demo runs the notebooks of a checkout; none was found beside the package.")
    return root / "notebooks"


def run_notebooks(notebooks: list[Path], out_dir: Path, *, timeout: int = 1800, fast: bool = False) -> list[tuple[str, float, str]]:
    """Execute notebooks in order with nbclient; write executed copies to ``out_dir``.

    Returns (name, seconds, status) per notebook; stops at the first failing one and re-raises its error.
    """
    import nbformat
    from nbclient import NotebookClient

    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    env_fast = os.environ.get(common.FAST_ENV)
    if fast:
        os.environ[common.FAST_ENV] = "1"
    try:
        for nb_path in notebooks:
            nb = nbformat.read(nb_path, as_version=4)
            client = NotebookClient(
                nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(nb_path.parent)}}
            )
            start = time.perf_counter()
            print(f"▶ {nb_path.name} ...", flush=True)
            try:
                client.execute()
                status = "ok"
            except Exception as exc:
                status = f"FAILED: {type(exc).__name__}"
                nbformat.write(nb, out_dir / nb_path.name)
                print(f"✗ {nb_path.name} failed; the executed copy with the error is {out_dir / nb_path.name}")
                raise
            finally:
                seconds = time.perf_counter() - start
            nbformat.write(nb, out_dir / nb_path.name)
            results.append((nb_path.name, seconds, status))
            print(f"✓ {nb_path.name} in {seconds:.0f} s → {out_dir / nb_path.name}", flush=True)
    finally:
        if fast:
            if env_fast is None:
                os.environ.pop(common.FAST_ENV, None)
            else:
                os.environ[common.FAST_ENV] = env_fast
    return results


def _cmd_demo(args: argparse.Namespace) -> int:
    from .sample import make_sample_dataset

    data = common.data_dir()
    start = time.perf_counter()
    sample_dir = data / "sample"
    print(f"Building the embedded sample dataset in {sample_dir} ...", flush=True)
    make_sample_dataset(sample_dir)
    nb_dir = _notebooks_dir()
    notebooks = sorted(nb_dir.glob("[0-9][0-9]_*.ipynb"))
    if args.only:
        notebooks = [nb for nb in notebooks if any(nb.name.startswith(o) for o in args.only)]
    results = run_notebooks(notebooks, data / "executed", fast=args.fast)
    total = time.perf_counter() - start
    print()
    for name, seconds, status in results:
        print(f"  {name:40s} {seconds:7.1f} s  {status}")
    print(f"demo finished in {total / 60:.1f} min; executed notebooks are in {data / 'executed'}")
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from .sample import make_sample_dataset

    dest = Path(args.dest) if args.dest else common.data_dir() / "sample"
    kwargs = {"seed": args.seed}
    if args.n_images:
        kwargs["n_images"] = args.n_images
    root = make_sample_dataset(dest, **kwargs)
    print(f"sample dataset ready in {root}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from .download import DownloadError, download_dataset

    try:
        root = download_dataset(dest=args.dest or common.data_dir(), force=args.force)
    except DownloadError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"dataset ready in {root}")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import report, run_checks

    return report(run_checks(tensorflow=not args.no_tensorflow))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="maskedu", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="build the sample dataset and execute every notebook")
    demo.add_argument("--fast", action="store_true", help="run the notebooks in fast mode (MASKEDU_FAST=1)")
    demo.add_argument("--only", nargs="*", help="notebook number prefixes to run, e.g. 01 02")
    demo.set_defaults(func=_cmd_demo)

    sample = sub.add_parser("sample", help="write the embedded sample dataset (Kaggle layout)")
    sample.add_argument("dest", nargs="?", help="folder (default: data/sample)")
    sample.add_argument("--n-images", type=int, default=None)
    sample.add_argument("--seed", type=int, default=0)
    sample.set_defaults(func=_cmd_sample)

    download = sub.add_parser("download", help="download the Kaggle dataset (needs credentials)")
    download.add_argument("--dest", default=None)
    download.add_argument("--force", action="store_true")
    download.set_defaults(func=_cmd_download)

    doctor = sub.add_parser("doctor", help="check the installation, Kaggle credentials, data, model and widgets")
    doctor.add_argument("--no-tensorflow", action="store_true", help="skip the GPU check (importing TensorFlow is slow)")
    doctor.set_defaults(func=_cmd_doctor)

    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
