"""The browser harness itself, on a tiny widget notebook written by the test: it sees what works, and it
catches what a student would see going wrong (an error in a cell, a traceback from a widget callback).

These keep the suite honest: if the harness stopped noticing errors, the notebook tests would pass for
nothing. They also prove widgets render in JupyterLab 4 and in Jupyter Notebook 7.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import nbformat
import pytest
from labdriver import StudentSeesError, unavailable

TINY = "_harness_tiny_widgets.ipynb"
BROKEN = "_harness_broken_cell.ipynb"

TINY_PANEL = '''\
import ipywidgets as W
import matplotlib.pyplot as plt

points = W.BoundedIntText(value=3, min=-5, max=500, description="points")
points.add_class("tiny-points")
draw = W.Button(description="Draw")
draw.add_class("tiny-draw")
broken = W.Button(description="Broken")
broken.add_class("tiny-broken")
out = W.Output()
out.add_class("tiny-out")

def on_draw(_):
    with out:
        out.clear_output(wait=True)
        if points.value < 1:
            print(f"Please choose at least 1 point (you asked for {points.value}).")
            return
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot(range(points.value))
        plt.show()
        print(f"drew {points.value} points")

def on_broken(_):
    raise ValueError("this callback is broken on purpose")

draw.on_click(on_draw)
broken.on_click(on_broken)
W.VBox([points, draw, broken, out])
'''


def _write(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = cells
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def tiny_notebooks(lab_server):
    _write(
        lab_server.root / TINY,
        [
            nbformat.v4.new_markdown_cell("A throwaway notebook for the harness tests."),
            # stderr output (a warning) is not an error and must not fail anything
            nbformat.v4.new_code_cell("import sys, warnings\nprint('note on stderr', file=sys.stderr)\nwarnings.warn('just a warning')"),
            nbformat.v4.new_code_cell(TINY_PANEL),
        ],
    )
    _write(
        lab_server.root / BROKEN,
        [
            nbformat.v4.new_code_cell("x = 1"),
            nbformat.v4.new_code_cell("def f():\n    return 1 / 0\n\nf()"),
            nbformat.v4.new_code_cell("y = 2"),
        ],
    )
    return TINY, BROKEN


PLOT_DRAWN = (
    "(n) => { const o = document.querySelector('.tiny-out');"
    " return !!o && !!o.querySelector('img') && o.innerText.includes('drew ' + n + ' points'); }"
)


def _set_int(page, selector: str, value: int) -> None:
    box = page.locator(f"{selector} input")
    box.fill(str(value))
    box.press("Enter")


def test_widget_panel_roundtrip_in_jupyterlab(lab_notebook, tiny_notebooks, screenshots):
    nb = lab_notebook(TINY)
    nb.run_all()
    assert nb.cell_errors() == []
    _set_int(nb.page, ".tiny-points", 7)
    nb.page.locator(".tiny-draw").click()
    nb.wait_for_widget(f"() => ({PLOT_DRAWN})(7)", "the plot of 7 points", watch=".tiny-out", timeout_s=120)
    _set_int(nb.page, ".tiny-points", 0)
    nb.page.locator(".tiny-draw").click()
    nb.wait_for_widget(
        "() => document.querySelector('.tiny-out').innerText.includes('Please choose at least 1 point')",
        "the friendly message",
        watch=".tiny-out",
        timeout_s=120,
    )
    nb.assert_no_tracebacks(".tiny-out")
    nb.screenshot(screenshots, "harness-jupyterlab-widgets", scroll_to=".tiny-out")


def test_harness_catches_a_broken_widget_callback(lab_notebook, tiny_notebooks):
    """A callback that raises puts a traceback in the log console: the wait fails at once, not at the timeout."""
    nb = lab_notebook(TINY)
    nb.run_all()
    nb.page.locator(".tiny-broken").click()
    with pytest.raises(StudentSeesError, match="broken on purpose"):
        nb.wait_for_widget("() => false", "something that never comes", watch=".tiny-out", timeout_s=120)


def test_harness_catches_an_error_in_a_cell(lab_notebook, tiny_notebooks):
    nb = lab_notebook(BROKEN)
    with pytest.raises(StudentSeesError, match="ZeroDivisionError"):
        nb.run_all(timeout_s=120)


def test_widget_panel_roundtrip_in_notebook7(lab_notebook, tiny_notebooks, screenshots):
    if importlib.util.find_spec("notebook") is None:
        unavailable("Jupyter Notebook 7 is not installed (pip install 'notebook>=7')")
    nb = lab_notebook(TINY, ui="notebook")
    nb.run_all()
    _set_int(nb.page, ".tiny-points", 5)
    nb.page.locator(".tiny-draw").click()
    nb.wait_for_widget(f"() => ({PLOT_DRAWN})(5)", "the plot of 5 points", watch=".tiny-out", timeout_s=120)
    nb.assert_no_tracebacks(".tiny-out")
    nb.screenshot(screenshots, "harness-notebook7-widgets", scroll_to=".tiny-out")


@pytest.mark.slow  # `jupyter labextension list` starts a Jupyter app: over 10 s on 2 cores
def test_widget_manager_labextension_is_installed():
    """ipywidgets 8 renders in JupyterLab 4 and Notebook 7 through this prebuilt (federated) extension."""
    res = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"], capture_output=True, text=True, timeout=120
    )
    listing = res.stdout + res.stderr
    line = next((ln for ln in listing.splitlines() if "@jupyter-widgets/jupyterlab-manager" in ln), None)
    assert line is not None, f"@jupyter-widgets/jupyterlab-manager is missing (pip install jupyterlab_widgets):\n{listing}"
    assert "enabled" in line and "OK" in line, f"the widget manager extension is not enabled and OK: {line!r}"
