"""What each course notebook costs to run: wall time, CPU seconds and peak memory, to size a class's hub.

Usage::

    .venv/bin/python benchmarks/notebook_resources.py [--notebooks 01 02 ...] [--modes normal,fast]
                                                      [--data fresh|shared] [--timeout SECONDS]

Each notebook runs in a process of its own (this script started again as a worker, which executes it with
nbclient in a fresh kernel), one after the other, so every figure belongs to one run:

* **wall s**: from starting the worker to its end (kernel start-up included);
* **CPU s**: user + system seconds of the worker and everything it started (the kernel and its children),
  from ``resource.getrusage(RUSAGE_CHILDREN)`` before and after;
* **peak RSS MiB**: the largest resident size any one of those processes reached: the kernel's, which is what a
  student's server needs on top of the Jupyter server itself.

Data (``--data``):

* ``fresh`` (default): every run gets its own new, empty ``MASKEDU_DATA``, so a notebook pays for what it needs
  from earlier ones (the sample, crops, models: the notebooks rebuild them quickly). A student who opens notebook
  05 first sees these figures.
* ``shared``: the hub set-up of ``INSTRUCTORS.md``: ``maskedu course precompute`` fills a shared folder once per
  mode (its cost is printed as its own row), which every run then reads read-only through
  ``MASKEDU_SHARED_DATA``, each with its own new, empty ``MASKEDU_DATA``.

The machine's core count and load average are printed with the table: on a busy machine wall time grows, CPU
seconds much less. The last line printed is one JSON object with every row.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = "--worker"
PRECOMPUTE = "--precompute-worker"


def _cpu(usage) -> float:
    return usage.ru_utime + usage.ru_stime


def worker(notebook: Path, timeout: int) -> int:
    """Execute one notebook in a fresh kernel (this process's child); print one JSON line with the outcome."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(notebook.parent)}})
    error = None
    try:
        client.execute()
    except Exception as exc:  # the row says it failed and why; the other notebooks still run
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"[:300]
    kernel = resource.getrusage(resource.RUSAGE_CHILDREN)  # the kernel has been waited for: its figures are in
    me = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"error": error, "kernel_cpu_s": _cpu(kernel), "kernel_peak_kib": kernel.ru_maxrss,
                      "worker_cpu_s": _cpu(me), "worker_peak_kib": me.ru_maxrss}))
    return 0


def run_one(notebook: Path, env: dict[str, str], timeout: int) -> dict:
    """Run ``notebook`` in a worker process with ``env``; its wall time, CPU seconds and peak RSS."""
    before = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, WORKER, str(notebook), "--timeout", str(timeout)],
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    cpu = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN)) - before
    try:
        report = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        report = {"error": f"the worker died (exit {proc.returncode}): {proc.stderr.strip()[-300:]}",
                  "kernel_peak_kib": 0, "worker_peak_kib": 0}
    peak = max(report["kernel_peak_kib"], report["worker_peak_kib"]) / 1024  # ru_maxrss is in KiB on Linux
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "peak_rss_mib": round(peak),
            "status": "ok" if report["error"] is None else f"FAILED {report['error']}"}


def _read_only(root: Path) -> None:
    for path in [*root.rglob("*"), root]:
        mode = path.lstat().st_mode
        os.chmod(path, stat.S_IMODE(mode) & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _writable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        os.chmod(path, stat.S_IMODE(path.lstat().st_mode) | stat.S_IWUSR)


def precompute_row(dest: Path, mode: str, env: dict[str, str]) -> dict:
    """``maskedu.course.precompute(DEST, modes=[MODE])`` in a worker process of its own, measured like a notebook."""
    before = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, PRECOMPUTE, str(dest), mode], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    cpu = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN)) - before
    try:
        peak = json.loads(proc.stdout.strip().splitlines()[-1])["worker_peak_kib"] / 1024
    except (IndexError, ValueError, KeyError):
        peak = 0
    return {"notebook": "(precompute)", "mode": mode, "data": "shared", "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "peak_rss_mib": round(peak), "status": "ok" if proc.returncode == 0 else f"FAILED {proc.stderr.strip()[-300:]}"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == PRECOMPUTE:
        from maskedu.course import precompute

        precompute(argv[1], modes=[argv[2]], verbose=False)
        print(json.dumps({"worker_peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
        return 0
    if argv and argv[0] == WORKER:
        parser = argparse.ArgumentParser()
        parser.add_argument("notebook", type=Path)
        parser.add_argument("--timeout", type=int, default=1800)
        args = parser.parse_args(argv[1:])
        return worker(args.notebook, args.timeout)

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", nargs="+", help="number prefixes such as 01 02 (default: all)")
    parser.add_argument("--modes", default="normal,fast", help="normal, fast or normal,fast (default)")
    parser.add_argument("--data", choices=("fresh", "shared"), default="fresh",
                        help="a new empty data folder per run (default), or a shared precomputed one read-only")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in ("normal", "fast") for m in modes):
        parser.error(f"--modes {args.modes!r}: give normal, fast or normal,fast")

    from maskedu.course import notebook_paths

    notebooks = notebook_paths(args.notebooks)
    rows = []
    print(f"{len(notebooks)} notebook(s), modes {', '.join(modes)}, data {args.data}; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    with tempfile.TemporaryDirectory(prefix="maskedu-resources-") as tmp:
        for mode in modes:
            base = {k: v for k, v in os.environ.items() if k not in ("MASKEDU_DATA", "MASKEDU_SHARED_DATA")}
            base.update(MASKEDU_FAST="1" if mode == "fast" else "0", MASKEDU_NO_PROGRESS="1")
            shared = None
            if args.data == "shared":
                shared = Path(tmp) / f"shared-{mode}"
                row = precompute_row(shared, mode, dict(base, MASKEDU_DATA=str(shared)))
                rows.append(row)
                print(_format(row), flush=True)
                _read_only(shared)
            for notebook in notebooks:
                own = Path(tmp) / f"{mode}-{notebook.stem}"
                env = dict(base, MASKEDU_DATA=str(own))
                if shared is not None:
                    env["MASKEDU_SHARED_DATA"] = str(shared)
                row = {"notebook": notebook.stem, "mode": mode, "data": args.data, **run_one(notebook, env, args.timeout)}
                rows.append(row)
                print(_format(row), flush=True)
            if shared is not None:
                _writable(shared)  # so the temporary folder can be removed
    print()
    print(_HEADER)
    for row in rows:
        print(_format(row))
    ok = [r for r in rows if r["status"] == "ok" and r["notebook"] != "(precompute)"]
    summary = {"rows": rows, "cores": os.cpu_count(), "load_average_end": round(os.getloadavg()[0], 1),
               "max_peak_rss_mib": max((r["peak_rss_mib"] for r in ok), default=None),
               "total_cpu_s": {m: round(sum(r["cpu_s"] for r in ok if r["mode"] == m), 1) for m in modes}}
    print(json.dumps(summary))
    return 0 if all(r["status"] == "ok" for r in rows) else 1


_HEADER = f"{'notebook':<30} {'mode':<6} {'data':<6} {'wall s':>8} {'CPU s':>8} {'peak RSS MiB':>13}  status"


def _format(row: dict) -> str:
    return (f"{row['notebook']:<30} {row['mode']:<6} {row['data']:<6} {row['wall_s']:>8.1f} {row['cpu_s']:>8.1f} "
            f"{row['peak_rss_mib']:>13}  {row['status']}")


if __name__ == "__main__":
    sys.exit(main())
