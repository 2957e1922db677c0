"""Drive JupyterLab in headless Chromium the way a student would: open, Run All, click, read.

Used by the browser tests (``tests/browser/``); the fixtures that start the server and the browser are in
``conftest.py``. Every wait is on a condition in the page (never a fixed sleep) and every wait also watches
for the things that mean "this will never happen": an error output in a cell, a traceback in a widget's
output area or in JupyterLab's log console (where exceptions raised in widget callbacks land), or a dead
kernel. Those raise :class:`StudentSeesError` at once, with what the student would see, instead of
running into the timeout.

The server runs with ``--LabApp.expose_app_in_browser=True`` so the notebook *model* can be read
(``window.jupyterapp``): a cell's execution count and output types are facts there, where the DOM only
offers rendered text (JupyterLab renders an error and a plain stderr write with the same mime type).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import quote

# Generous: the reference machine has 2 slow cores shared with other work.
LOAD_TIMEOUT_S = 180
RUN_ALL_TIMEOUT_S = 600
WIDGET_TIMEOUT_S = 300

TRACEBACK_RE = re.compile(r"Traceback \(most recent call last\)|^\w*(Error|Exception): ", re.M)


INSTALL_HINT = "sudo scripts/install_browser_deps.sh  (Debian's chromium)  and  .venv/bin/pip install -e '.[test]'  (playwright)"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def unavailable(reason: str) -> None:
    """Skip on a developer machine (with the install command); fail loudly under CI, never skip there."""
    import pytest

    if in_ci():
        pytest.fail(f"browser tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(f"{reason}; to run the browser tests: {INSTALL_HINT}")


class StudentSeesError(AssertionError):
    """The student would see an error: a failing cell, a traceback in a panel or in the log console."""


@dataclass
class CellError:
    index: int  # position of the cell in the notebook (0-based, markdown cells included)
    ename: str
    evalue: str

    def __str__(self) -> str:
        return f"cell {self.index}: {self.ename}: {self.evalue}"


# JavaScript run in the page. `nb()` is the notebook panel currently shown in the main area.
_JS_NB = "const w = window.jupyterapp.shell.currentWidget;"

_JS_KERNEL_READY = (
    "() => { " + _JS_NB + " if (!w || !w.sessionContext) return false;"
    " const k = w.sessionContext.session && w.sessionContext.session.kernel;"
    " return !!k && k.status === 'idle' && k.connectionStatus === 'connected'"
    " && !!w.context && w.context.isReady; }"
)

_JS_CELL_STATE = (
    "() => { " + _JS_NB + " const cells = w.content.widgets; const out = [];"
    " cells.forEach((c, i) => { if (c.model.type !== 'code') return;"
    "  const o = c.model.outputs; const errors = [];"
    "  for (let j = 0; j < o.length; j++) { const it = o.get(j);"
    "   if (it.type === 'error') { const js = it.toJSON(); errors.push([js.ename, js.evalue]); } }"
    "  out.push({index: i, count: c.model.executionCount, state: c.model.executionState || 'idle',"
    "   empty: c.model.sharedModel.getSource().trim() === '', errors: errors}); });"
    " const k = w.sessionContext.session && w.sessionContext.session.kernel;"
    " return {cells: out, kernel: k ? k.status : 'none'}; }"
)


class NotebookPage:
    """One notebook open in JupyterLab in a Playwright page.

    >>> nb = NotebookPage(page, server, "04_one_pixel_attack.ipynb").open()
    >>> nb.run_all()                     # Run menu > Run All Cells, waits, fails on any error output
    >>> nb.page.locator(".maskedu-attack-run").click()
    """

    def __init__(self, page, server, notebook: str, *, ui: str = "lab"):
        self.page = page
        self.server = server
        self.notebook = notebook
        self.ui = ui
        self.workspace = "t" + uuid.uuid4().hex[:10]
        self._log_seen = 0

    # ------------------------------------------------------------------ opening and running

    @property
    def url(self) -> str:
        nb = quote(self.notebook)
        if self.ui == "notebook":  # Jupyter Notebook 7
            return f"{self.server.url}notebooks/{nb}?token={self.server.token}"
        return f"{self.server.url}lab/workspaces/{self.workspace}/tree/{nb}?reset&token={self.server.token}"

    def open(self, timeout_s: float = LOAD_TIMEOUT_S) -> "NotebookPage":
        """Load the page and wait until the notebook is shown and its kernel is connected and idle."""
        self.page.goto(self.url, timeout=timeout_s * 1000)
        self.page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout_s * 1000)
        self._wait_js(_JS_KERNEL_READY, timeout_s, "the kernel to start and become idle", accept_dialogs=True)
        return self

    def run_all(self, timeout_s: float = RUN_ALL_TIMEOUT_S) -> float:
        """Run > Run All Cells from the menu bar, then wait until every code cell has run.

        Returns the seconds it took. Raises :class:`StudentSeesError` as soon as a cell shows an error.
        """
        start = time.monotonic()
        self.menu("Run", "Run All Cells")
        self.wait_until_executed(timeout_s)
        return time.monotonic() - start

    def menu(self, top: str, item: str) -> None:
        """Click a menu bar entry, then an item of the menu it opens (exact labels)."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(top)}$")).first.click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).first.click()

    def cell_state(self) -> dict:
        return self.page.evaluate(_JS_CELL_STATE)

    def cell_errors(self) -> list[CellError]:
        """Error outputs of code cells, read from the notebook model (not guessed from rendered text)."""
        return [CellError(c["index"], e[0], e[1]) for c in self.cell_state()["cells"] for e in c["errors"]]

    def wait_until_executed(self, timeout_s: float = RUN_ALL_TIMEOUT_S) -> None:
        def done() -> bool:
            state = self.cell_state()
            errors = [CellError(c["index"], e[0], e[1]) for c in state["cells"] for e in c["errors"]]
            if errors:
                raise StudentSeesError(f"{self.notebook}: a cell shows an error after Run All: {errors[0]}"
                                       + self._error_text_hint())
            if state["kernel"] in ("dead", "unknown") and any(c["state"] == "running" for c in state["cells"]):
                raise StudentSeesError(f"{self.notebook}: the kernel died while running the cells")
            pending = [c for c in state["cells"] if not c["empty"] and (c["count"] is None or c["state"] == "running")]
            return not pending and state["kernel"] == "idle"

        self._poll(done, timeout_s, "every code cell of the notebook to finish running")

    def _error_text_hint(self) -> str:
        texts = self.page.locator(
            ".jp-Cell .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
        ).all_inner_texts()
        tracebacks = [t for t in texts if TRACEBACK_RE.search(t)]
        return ("\n--- what the cell shows ---\n" + tracebacks[0][-2000:]) if tracebacks else ""

    # ------------------------------------------------------------------ what a student sees

    def tracebacks_in(self, selector: str) -> list[str]:
        """Texts of outputs under ``selector`` that look like Python tracebacks (error or stderr mime)."""
        texts = self.page.locator(f"{selector} .jp-OutputArea-output").all_inner_texts()
        return [t for t in texts if TRACEBACK_RE.search(t)]

    def log_tracebacks(self) -> list[str]:
        """Tracebacks in JupyterLab's log console (where widget callback exceptions land).

        Opens the log console only when its status-bar item shows entries; plain stderr writes (warnings)
        are entries too and are not tracebacks.
        """
        item = self.page.locator(".jp-LogConsoleStatusItem")
        if item.count() == 0 or "lm-mod-hidden" in (item.first.get_attribute("class") or ""):
            return []
        if self.page.locator(".jp-LogConsole").count() == 0:
            item.first.click()
            self.page.wait_for_selector(".jp-LogConsole", timeout=30_000)
        texts = self.page.locator(".jp-LogConsole .jp-OutputArea-output").all_inner_texts()
        return [t for t in texts if TRACEBACK_RE.search(t)]

    def _log_count(self) -> int:
        item = self.page.locator(".jp-LogConsoleStatusItem [title]")
        if item.count() == 0:
            return 0
        m = re.search(r"(\d+) log entr", item.first.get_attribute("title") or "")
        return int(m.group(1)) if m else 0

    def assert_no_tracebacks(self, selector: str) -> None:
        found = self.tracebacks_in(selector) + self.log_tracebacks()
        if found:
            raise StudentSeesError(f"{self.notebook}: the student sees a traceback:\n{found[0][-2500:]}")

    def wait_for_widget(self, condition_js: str, what: str, *, watch: str, fail_js: str | None = None,
                        timeout_s: float = WIDGET_TIMEOUT_S):
        """Wait until ``condition_js`` (a JS function returning a truthy value) holds in the page.

        ``watch`` is a CSS selector of the panel being used: a traceback appearing there or in the log
        console, or a dead kernel, fails at once; so does ``fail_js`` returning a truthy value (e.g. the
        panel's own "cannot run" message where a run was expected). Returns the condition's value.
        """
        result = {}

        def check():
            value = self.page.evaluate(condition_js)
            if value:
                result["value"] = value
                return True
            if fail_js and (bad := self.page.evaluate(fail_js)):
                raise StudentSeesError(f"{self.notebook}: while waiting for {what}, the panel says: {str(bad)[-1500:]}")
            if self.tracebacks_in(watch):
                self.assert_no_tracebacks(watch)
            n = self._log_count()
            if n != self._log_seen:  # something was logged (stderr or an exception): look at it once
                self._log_seen = n
                if self.log_tracebacks():
                    self.assert_no_tracebacks(watch)
            kernel = self.page.evaluate(
                "() => { " + _JS_NB + " const k = w.sessionContext.session && w.sessionContext.session.kernel;"
                " return k ? k.status : 'none'; }"
            )
            if kernel == "dead":
                raise StudentSeesError(f"{self.notebook}: the kernel died while waiting for {what}")
            return False

        self._poll(check, timeout_s, what)
        return result["value"]

    def screenshot(self, directory: Path, name: str, *, scroll_to=None, element=None) -> Path:
        """Save a PNG of the page (after scrolling ``scroll_to`` into view) or of ``element``; print its path.

        ``scroll_to``/``element`` are CSS selectors or Playwright locators.
        """
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}.png"
        target = element if element is not None else scroll_to
        if isinstance(target, str):
            target = self.page.locator(target).first
        if target is not None:
            target.scroll_into_view_if_needed()
        if element is not None:
            target.screenshot(path=str(path))
        else:
            self.page.screenshot(path=str(path))
        print(f"screenshot: {path}")
        return path

    # ------------------------------------------------------------------ widgets by their visible labels

    def widget_input(self, description: str):
        """The text box of the ipywidgets control whose label reads ``description`` (IntText, FloatText, Text)."""
        label = self.page.locator(".widget-label", has_text=re.compile(f"^\\s*{re.escape(description)}\\s*$"))
        return self.page.locator(".widget-inline-hbox").filter(has=label).locator("input").first

    def set_widget_text(self, description: str, value) -> None:
        """Type a value into a labelled box and press Enter, as a student does (syncs to the kernel)."""
        box = self.widget_input(description)
        box.scroll_into_view_if_needed()
        box.fill(str(value))
        box.press("Enter")

    def widget_button(self, text: str):
        """The ipywidgets button showing ``text`` (icons ignored)."""
        return self.page.locator("button.jupyter-button", has_text=re.compile(f"^\\s*{re.escape(text)}\\s*$")).first

    def watch_images(self, key: str, root_js: str) -> None:
        """Record every distinct ``src`` of the <img> elements under the element ``root_js`` returns.

        ``image_count(key)`` then tells how many different pictures were shown (a redrawn plot is a new one).
        """
        self.page.evaluate(
            "([key, rootSrc]) => { const root = (new Function('return (' + rootSrc + ')()'))();"
            " window.__maskeduSrcs = window.__maskeduSrcs || {}; const seen = new Set();"
            " window.__maskeduSrcs[key] = seen;"
            " const grab = () => root.querySelectorAll('img').forEach(i => { if (i.src) seen.add(i.src); });"
            " grab(); new MutationObserver(grab).observe(root, {subtree: true, childList: true, attributes: true,"
            " attributeFilter: ['src']}); }",
            [key, root_js],
        )

    def image_count(self, key: str) -> int:
        return self.page.evaluate("(key) => window.__maskeduSrcs[key].size", key)

    # ------------------------------------------------------------------ waiting

    def _wait_js(self, js: str, timeout_s: float, what: str, *, accept_dialogs: bool = False) -> None:
        def ready() -> bool:
            if accept_dialogs:
                self._accept_kernel_dialog()
            return bool(self.page.evaluate(js))

        self._poll(ready, timeout_s, what)

    def _accept_kernel_dialog(self) -> None:
        """'Select Kernel' appears where a notebook's kernelspec is unknown: take the default, as a student would."""
        dialog = self.page.locator(".jp-Dialog")
        if dialog.count() and "Kernel" in (dialog.first.inner_text() or ""):
            dialog.first.locator(".jp-Dialog-button.jp-mod-accept").click()

    def _poll(self, check: Callable[[], bool], timeout_s: float, what: str, interval_ms: int = 500) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if check():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.notebook}: gave up after {timeout_s:.0f} s waiting for {what}")
            # Playwright's own wait keeps the page's event loop running (a sleep would not).
            self.page.wait_for_timeout(interval_ms)
