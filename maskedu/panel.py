"""The Run/Stop panel base under the notebooks' widget panels (the attack explorer, the pattern search).

A panel turns its widgets' raw values into checked settings with a plain function (``panel_settings``
in each panel module, which raises ValueError/TypeError with a message naming the field), runs one
search with them, and shows what happened. This base does the part every panel shares:

* **Run** starts :meth:`RunStopPanel.run` in a background thread, so the kernel still hears **Stop**;
  ``run()`` itself works without a browser (ipywidgets swallows exceptions raised in a button's callback);
* **Stop** sets a flag the search reads through :attr:`RunStopPanel.stop_requested`, and it ends after the
  current step;
* every error shows in the panel in one format (:func:`friendly_error`), never as a lost traceback.

A subclass builds its widgets, then implements :meth:`~RunStopPanel.parse` (raw values -> settings) and
:meth:`~RunStopPanel.search` (settings -> result, or None), and calls :meth:`~RunStopPanel.say`.

>>> print(friendly_error(ValueError("popsize must be at least 5, got 3."), "attack"))
<div style='color:#c62828'><b>Cannot run this attack:</b> popsize must be at least 5, got 3.<br><i>Change the setting and press Run again.</i></div>
"""

from __future__ import annotations

import html
import threading
from typing import Any

__all__ = ["friendly_error", "RunStopPanel", "COLOURS"]

#: The colour of a panel message of each kind.
COLOURS = {"info": "#37474f", "error": "#c62828", "done": "#2e7d32"}


def friendly_error(exc: BaseException, what: str = "search") -> str:
    """The panel's message (HTML) for an error: what is wrong, and that nothing ran."""
    text = html.escape(str(exc) or type(exc).__name__)
    return (f"<div style='color:{COLOURS['error']}'><b>Cannot run this {html.escape(what)}:</b> {text}<br>"
            "<i>Change the setting and press Run again.</i></div>")


class RunStopPanel:
    """Run/Stop buttons, a background thread, one message line and one error format.

    ``what`` names the job in messages ("attack", "search"). Subclasses call ``super().__init__()`` first,
    then put :attr:`run_button`, :attr:`stop_button` and :attr:`status` into their layout.
    """

    what = "search"

    def __init__(self) -> None:
        import ipywidgets as W

        self.run_button = W.Button(description="Run", button_style="success", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.status = W.HTML()
        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.result: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- what a subclass provides
    def parse(self) -> Any:
        """The panel's current values, checked (raise ValueError/TypeError with the message to show)."""
        raise NotImplementedError

    def search(self, settings: Any) -> Any:
        """Run one search with checked settings; return its result (None when it could not run)."""
        raise NotImplementedError

    # ---- shared
    def say(self, text: str, kind: str = "info") -> None:
        """Show one line of plain text in the panel's message line (``kind``: info, error or done)."""
        self.status.value = f"<span style='color:{COLOURS[kind]}'>{html.escape(text)}</span>"

    def show_error(self, exc: BaseException) -> None:
        """Show an error in the panel (the one format, :func:`friendly_error`)."""
        self.status.value = friendly_error(exc, self.what)

    @property
    def stop_requested(self) -> bool:
        """True once Stop was pressed: the search ends after its current step."""
        return self._stop.is_set()

    def run(self) -> Any:
        """Check the settings and run one search here and now (what Run does, minus the thread).

        Bad settings or a failing search give a message in the panel and None, never a traceback.
        """
        try:
            settings = self.parse()
        except (ValueError, TypeError, ImportError) as exc:
            self.show_error(exc)
            return None
        if not self.running:  # a background run clears the flag in start(), before a quick Stop can come in
            self._stop.clear()
        try:
            result = self.search(settings)
        except Exception as exc:  # shown in the panel, never lost in a thread
            self.show_error(exc)
            return None
        if result is not None:
            self.result = result
        return result

    def start(self) -> threading.Thread | None:
        """What Run does: :meth:`run` in a background thread. None (and a message) if one is running."""
        if self.running:
            self.say(f"An {self.what} is already running; press Stop first." if self.what[0] in "aeiou"
                     else f"A {self.what} is already running; press Stop first.", "error")
            return None
        self._stop.clear()
        self.run_button.disabled, self.stop_button.disabled = True, False

        def work():
            try:
                self.run()
            finally:
                self.run_button.disabled, self.stop_button.disabled = False, True

        self._thread = threading.Thread(target=work, name=f"maskedu-{self.what}", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        """What Stop does: ask the running search to end after its current step."""
        self._stop.set()
        self.say("stopping...")

    @property
    def running(self) -> bool:
        """True while a background run is going."""
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> Any:
        """Wait for a background run to finish and return the latest result."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.result

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
