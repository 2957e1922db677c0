"""The ``maskedu`` command.

``maskedu demo``      build the sample dataset and execute every notebook headlessly (executed copies in data/executed/)
``maskedu sample``    write the embedded sample dataset (Kaggle layout) to a folder
``maskedu download``  fetch a Kaggle dataset (needs Kaggle credentials; ``--dataset`` picks one of the known sets)
``maskedu forget``    delete the crops and models derived from a dataset folder (never the photos themselves)
``maskedu doctor``    check the installation, credentials (never shown), data, model and widgets

Any error is one line on stderr: exit status 2 for a bad argument, 1 when the work itself failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import common


class _UsageError(Exception):
    """A bad argument: exit status 2."""


class _CommandError(common.MaskeduError):
    """A command that could not do its work: exit status 1."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are raised (and then shown on one line) instead of printed with the usage."""

    def error(self, message: str):
        raise _UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def _whole_number(minimum: int, maximum: int | None = None):
    """An argparse type: an int within bounds, or a message saying which bounds."""
    bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be a whole number {bounds}, got {text!r}")
        return value

    return parse


def _folder(text: str) -> Path:
    """An argparse type: a folder path that is not, and is not inside, an existing file."""
    path = Path(text).expanduser()
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            if not candidate.is_dir():
                raise argparse.ArgumentTypeError(f"{candidate} is a file, not a folder")
            break
    return path


def _kaggle_slug(text: str) -> str:
    """An argparse type: a Kaggle dataset maskedu knows, or a message listing them."""
    from .download import DATASETS

    if text not in DATASETS:
        raise argparse.ArgumentTypeError(f"unknown dataset {text!r}; the known ones are {', '.join(DATASETS)}")
    return text


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _notebooks_dir() -> Path:
    root = common.repo_root()
    if root is None:
        raise _CommandError("maskedu demo runs the notebooks of a checkout; none was found beside the package.")
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
    from . import sample

    notebooks = sorted(_notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise _CommandError(f"no notebooks (NN_name.ipynb) in {_notebooks_dir()}.")
    if args.only:  # checked before any work: a typo must not cost a sample build and report success
        numbers = ", ".join(nb.name[:2] for nb in notebooks)
        unknown = [o for o in args.only if not any(nb.name.startswith(o) for nb in notebooks)]
        if unknown:
            raise _UsageError(f"maskedu demo: error: --only {' '.join(unknown)} matches no notebook; the notebooks are {numbers}.")
        notebooks = [nb for nb in notebooks if any(nb.name.startswith(o) for o in args.only)]
    data = common.data_dir()
    start = time.perf_counter()
    sample_dir = data / "sample"
    print(f"Building the embedded sample dataset in {sample_dir} ...", flush=True)
    sample.make_sample_dataset(sample_dir)
    try:
        results = run_notebooks(notebooks, data / "executed", fast=args.fast)
    except Exception as exc:  # nbclient's errors carry the whole cell traceback: the executed copy has it
        if getattr(exc, "ename", None):  # nbclient's CellExecutionError: the cell's own error
            what = f"{exc.ename}: {_one_line(getattr(exc, 'evalue', ''))}"
        else:
            what = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else 'no message'}"
        raise _CommandError(f"a notebook failed ({what}); the executed copies are in {data / 'executed'}") from None
    total = time.perf_counter() - start
    print()
    for name, seconds, status in results:
        print(f"  {name:40s} {seconds:7.1f} s  {status}")
    print(f"demo finished in {total / 60:.1f} min; executed notebooks are in {data / 'executed'}")
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from .sample import make_sample_dataset

    dest = args.dest if args.dest is not None else common.data_dir() / "sample"
    kwargs = {"seed": args.seed}
    if args.n_images is not None:
        kwargs["n_images"] = args.n_images
    root = make_sample_dataset(dest, **kwargs)
    print(f"sample dataset ready in {root}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from .download import KAGGLE_SLUG, download_dataset

    root = download_dataset(dest=args.dest if args.dest is not None else common.data_dir(), force=args.force,
                            dataset=args.dataset or KAGGLE_SLUG)
    print(f"dataset ready in {root}")
    return 0


def _cmd_forget(args: argparse.Namespace) -> int:
    from .download import forget

    gone = forget(args.dataset, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for path in gone:
        print(f"{verb} {path}")
    print(f"{verb} {len(gone)} files derived from {args.dataset or 'the MASKEDU_DATASET folder'}; the photos are untouched")
    return 0


def _cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import report, run_checks

    return report(run_checks(tensorflow=not args.no_tensorflow))


def _parser() -> _Parser:
    parser = _Parser(prog="maskedu", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="build the sample dataset and execute every notebook")
    demo.add_argument("--fast", action="store_true", help="run the notebooks in fast mode (MASKEDU_FAST=1)")
    demo.add_argument("--only", nargs="+", help="notebook number prefixes to run, e.g. 01 02")
    demo.set_defaults(func=_cmd_demo)

    sample = sub.add_parser("sample", help="write the embedded sample dataset (Kaggle layout)")
    sample.add_argument("dest", nargs="?", type=_folder, help="folder (default: data/sample)")
    sample.add_argument("--n-images", type=_whole_number(1, 20_000), default=None, help="1 to 20000 (default 200)")
    sample.add_argument("--seed", type=_whole_number(0), default=0)
    sample.set_defaults(func=_cmd_sample)

    download = sub.add_parser("download", help="download the Kaggle dataset (needs credentials)")
    download.add_argument("--dest", type=_folder, default=None, help="folder that receives the dataset (default: data/)")
    download.add_argument("--force", action="store_true")
    download.add_argument("--dataset", type=_kaggle_slug, default=None,
                          help="the Kaggle dataset (default: the paper's, wobotintelligence/face-mask-detection-dataset)")
    download.set_defaults(func=_cmd_download)

    forget = sub.add_parser("forget", help="delete the crops and models derived from a dataset folder")
    forget.add_argument("--dataset", type=_folder, default=None, help="the dataset folder (default: $MASKEDU_DATASET)")
    forget.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    forget.set_defaults(func=_cmd_forget)

    doctor = sub.add_parser("doctor", help="check the installation, Kaggle credentials, data, model and widgets")
    doctor.add_argument("--no-tensorflow", action="store_true", help="skip the GPU check (importing TensorFlow is slow)")
    doctor.set_defaults(func=_cmd_doctor)
    from .course import add_course_commands

    add_course_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit status. Errors are one line on stderr, never a traceback."""
    name = "maskedu"
    try:
        args = _parser().parse_args(argv)
        name = f"maskedu {args.command}"
        return int(args.func(args) or 0)
    except _UsageError as exc:
        print(_one_line(str(exc)), file=sys.stderr)
        return 2
    except (common.MaskeduError, OSError) as exc:  # OSError: a folder that cannot be written, a full disk, ...
        print(f"{name}: error: {_one_line(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
