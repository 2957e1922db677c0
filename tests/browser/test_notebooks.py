"""The notebooks in JupyterLab, used the way a student uses them: Run All, then the panels.

- every notebook: after Run > Run All Cells, no cell shows an error (04 and 06 are checked inside their
  panel tests, which start with the same Run All);
- 04: change pixels and population in the attack explorer, press Run, wait for the live confidence curve
  to be redrawn over more than one generation and for the before/after images; then the defense choice
  (a median filter) gives a result naming it; then 0 pixels gives a friendly message in the panel, not a traceback;
- 06: run the pattern search for a few iterations from its panel and watch the fitness plot grow.

Each test saves a screenshot of its final state (path printed; see conftest.py for the folder).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
ATTACK_NB = "04_one_pixel_attack.ipynb"
PATTERN_NB = "06_adversarial_mask_pattern.ipynb"
WITH_PANEL_TESTS = {ATTACK_NB, PATTERN_NB}

ALL = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _need(name: str) -> None:
    if not (NOTEBOOKS / name).is_file():
        pytest.fail(f"notebooks/{name} is missing: the browser test for it has nothing to open")


@pytest.mark.parametrize("name", [n for n in ALL if n not in WITH_PANEL_TESTS])
def test_run_all_shows_no_error(lab_notebook, screenshots, name):
    nb = lab_notebook(name)
    seconds = nb.run_all()
    assert nb.cell_errors() == []
    nb.assert_no_tracebacks(".jp-Notebook")
    print(f"{name}: Run All took {seconds:.0f} s")
    nb.screenshot(screenshots, f"{Path(name).stem}-run-all", scroll_to=".jp-Notebook .jp-Cell >> nth=-1")


# The panel is the cell output that holds a widget button labelled exactly "Run".
def _panel_js(button: str = "Run") -> str:
    return (
        "() => { const b = [...document.querySelectorAll('.jp-OutputArea-output button.jupyter-button')]"
        f".find(b => b.innerText.trim() === '{button}'); return b ? b.closest('.jp-OutputArea-output') : null; }}"
    )


ATTACK_DONE = (
    "(previous) => { const root = (" + _panel_js() + ")(); if (!root) return null;"
    " const outs = root.querySelectorAll('.widget-output');"
    " if (outs.length < 2) return null;"
    " const live = outs[0], result = outs[outs.length - 1];"
    " if (result.innerText === previous) return null;"
    " const m = result.innerText.match(/after (\\d+) generation/);"
    " if (!m || !live.querySelector('img') || !result.querySelector('img')) return null;"
    " return {generations: parseInt(m[1]), text: result.innerText}; }"
)

ATTACK_REFUSED = (
    "() => { const root = (" + _panel_js() + ")(); if (!root) return null;"
    " const t = root.innerText.split('\\n').filter(l => l.includes('Cannot run this attack'));"
    " return t.length ? t.join('\\n') : null; }"
)


def test_attack_panel_runs_and_refuses_bad_input(lab_notebook, screenshots):
    _need(ATTACK_NB)
    nb = lab_notebook(ATTACK_NB)
    seconds = nb.run_all()
    assert nb.cell_errors() == []
    print(f"{ATTACK_NB}: Run All took {seconds:.0f} s")

    run = nb.widget_button("Run")
    run.scroll_into_view_if_needed()
    nb.set_widget_text("pixels", 2)
    nb.set_widget_text("population", 24)
    nb.set_widget_text("generations", 6)
    nb.watch_images("live", "() => (" + _panel_js() + ")().querySelectorAll('.widget-output')[0]")
    # Run All already ran one attack from code: wait for a *new* result, not that one
    previous = nb.page.evaluate(f"() => {{ const r = ({_panel_js()})(); const o = r.querySelectorAll('.widget-output');"
                                " return o[o.length - 1].innerText; }")
    run.click()
    done = nb.wait_for_widget(f"() => ({ATTACK_DONE})({json.dumps(previous)})", "the attack to finish with its before/after images",
                              watch=".jp-Notebook", fail_js=ATTACK_REFUSED)
    redraws = nb.image_count("live")
    print(f"attack finished after {done['generations']} generations; the live curve was drawn {redraws} times")
    assert done["generations"] > 1, f"the attack stopped after {done['generations']} generation: {done['text']}"
    assert redraws >= 2, "the confidence curve was drawn once only: it should be redrawn while the search runs"
    assert "Before:" in done["text"] and "After:" in done["text"]
    nb.assert_no_tracebacks(".jp-Notebook")
    nb.screenshot(screenshots, "04-attack-panel-result", scroll_to=run)

    # a student puts the model behind a median filter: the same search now queries the defended model, and the
    # result names the defense and says whether it held
    label = nb.page.locator(".widget-label", has_text=re.compile(r"^\s*defense\s*$"))
    choice = nb.page.locator(".widget-inline-hbox").filter(has=label).locator("select").first
    choice.scroll_into_view_if_needed()
    choice.select_option(label="median filter")
    run.click()
    done = nb.wait_for_widget(f"() => ({ATTACK_DONE})({json.dumps(done['text'])})", "the attack on the median filter",
                              watch=".jp-Notebook", fail_js=ATTACK_REFUSED)
    assert "Defense: median filter, adaptive" in done["text"], done["text"]
    assert ("the defense held" in done["text"]) != ("the attack beat the defense" in done["text"]), done["text"]
    nb.assert_no_tracebacks(".jp-Notebook")
    nb.screenshot(screenshots, "04-attack-panel-defense", scroll_to=run)

    # a student types 0 pixels: the panel explains, nothing crashes
    nb.set_widget_text("pixels", 0)
    run.click()
    text = nb.wait_for_widget(ATTACK_REFUSED, "the panel's message about 0 pixels", watch=".jp-Notebook", timeout_s=120)
    assert re.search(r"pixel", text, re.I), text
    nb.assert_no_tracebacks(".jp-Notebook")
    nb.screenshot(screenshots, "04-attack-panel-invalid-input", scroll_to=run)


PATTERN_REFUSED = (
    "() => { const root = (" + _panel_js() + ")(); if (!root) return null;"
    " const t = root.innerText.split('\\n').filter(l => l.includes('Cannot run'));"
    " return t.length ? t.join('\\n') : null; }"
)

PATTERN_DONE = (
    "(n) => { const root = (" + _panel_js() + ")(); if (!root) return null;"
    " const m = root.innerText.match(/after (\\d+) iterations/);"
    " return m && parseInt(m[1]) === n && root.querySelector('img') ? root.innerText : null; }"
)


def test_pattern_panel_search_grows_the_fitness_plot(lab_notebook, screenshots):
    _need(PATTERN_NB)
    nb = lab_notebook(PATTERN_NB)
    seconds = nb.run_all()
    assert nb.cell_errors() == []
    print(f"{PATTERN_NB}: Run All took {seconds:.0f} s")

    iterations = 60  # the panel redraws every 25 iterations: two live pictures, then the final one
    run = nb.widget_button("Run")
    run.scroll_into_view_if_needed()
    nb.set_widget_text("iterations", iterations)
    nb.watch_images("fitness", _panel_js())
    before = nb.image_count("fitness")
    run.click()
    text = nb.wait_for_widget(f"() => ({PATTERN_DONE})({iterations})", f"the search to finish {iterations} iterations",
                              watch=".jp-Notebook", fail_js=PATTERN_REFUSED)
    drawn = nb.image_count("fitness") - before
    print(f"pattern search: {drawn} new fitness plots while it ran; panel says: {text.strip().splitlines()[-1][:200]}")
    assert drawn >= 2, f"the fitness plot should be redrawn as the search goes on, saw {drawn} new picture(s)"
    nb.assert_no_tracebacks(".jp-Notebook")
    nb.screenshot(screenshots, "06-pattern-panel-search", scroll_to=run)
