"""benchmarks/notebook_resources.py: runs a notebook in a worker process and reports its wall time, CPU seconds
and peak memory, last line JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "notebook_resources.py"


@pytest.mark.slow
def test_notebook_01_in_fast_mode(tmp_path):
    env = dict(os.environ, MASKEDU_DATA=str(tmp_path / "must-stay-unused"))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--notebooks", "01", "--modes", "fast"], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    (row,) = summary["rows"]
    assert row["notebook"] == "01_get_the_data" and row["mode"] == "fast" and row["data"] == "fresh"
    assert row["status"] == "ok"
    assert 0 < row["cpu_s"] and row["cpu_s"] < 3 * row["wall_s"] + 5  # the kernel's CPU is counted, and plausibly
    assert 100 < row["peak_rss_mib"] < 16_000  # a Python kernel that imported TensorFlow: some hundreds of MiB
    assert summary["max_peak_rss_mib"] == row["peak_rss_mib"] and summary["total_cpu_s"] == {"fast": row["cpu_s"]}
    assert any(line.startswith("notebook") and "peak RSS MiB" in line for line in lines)  # the table's header
    assert not (tmp_path / "must-stay-unused").exists()  # each run had its own fresh data folder


def test_bad_modes_are_refused():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--modes", "quick"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--modes 'quick'" in proc.stderr
