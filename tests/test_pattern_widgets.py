"""The notebook 06 panel: its callbacks are plain functions, exercised here without a browser."""

from __future__ import annotations

import numpy as np
import pytest

from maskedu import pattern_widgets as PW


def test_panel_settings_parses_and_checks():
    s = PW.panel_settings({"n_copies": "3", "t0": "2.5", "iterations": 50, "schedule": "geometric"})
    assert (s.n_copies, s.t0, s.iterations, s.schedule) == (3, 2.5, 50, "geometric")
    assert s.search_kwargs()["max_iters"] == 50
    with pytest.raises(ValueError, match="number of copies"):
        PW.panel_settings({"n_copies": 0})
    with pytest.raises(ValueError, match="initial temperature must be above 0"):
        PW.panel_settings({"t0": -1.0})
    with pytest.raises(ValueError, match="t0 must be a number"):
        PW.panel_settings({"t0": "hot"})
    with pytest.raises(ValueError, match="detector"):
        PW.panel_settings({"detector": "haar"})
    with pytest.raises(ValueError, match="schedule"):
        PW.panel_settings({"schedule": "logarithmic"})
    with pytest.raises(ValueError, match="unknown setting"):
        PW.panel_settings({"colour": "red"})


def test_live_png_is_a_picture():
    png = PW.live_png([0, 1, 1], [0, 1, 1], [1.0, 0.9, 0.8], np.zeros((32, 48, 3), np.uint8), [[1, 1, 10, 10]], max_iters=10)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


@pytest.mark.slow
def test_panel_runs_draws_and_reports():
    panel = PW.pattern_panel(iterations=30, decoy="photo", n_copies=2, draw_every=10)
    result = panel.run()
    assert result is not None and len(result.search.history) == 30
    assert len(panel._fitness) == 30 and panel._temperature[0] > panel._temperature[-1]
    assert panel.picture.value[:4] == b"\x89PNG"
    assert "face(s) detected" in panel.status.value and "#2e7d32" in panel.status.value


def test_panel_bad_input_gives_a_message_not_a_traceback():
    panel = PW.pattern_panel()
    assert panel.run(n_copies=0) is None
    assert "Cannot run" in panel.status.value and "copies" in panel.status.value
    panel.t0.value = -2.0
    panel.n_copies.value = 2
    assert panel.run() is None and "temperature" in panel.status.value
    assert panel.run(brightness=3) is None and "unknown setting" in panel.status.value


def test_stop_button_stops_the_background_search():
    panel = PW.pattern_panel(iterations=5000, decoy="cartoon", n_copies=2, draw_every=1000)
    thread = panel.start()
    assert thread is not None and panel.running
    assert panel.start() is None  # a second Run while running is refused politely
    panel.stop()
    result = panel.wait(30)
    assert not panel.running
    assert result is not None and result.search.stopped == "callback" and len(result.search.history) < 5000
    assert panel.run_button.disabled is False


def test_both_panels_share_one_run_stop_base_and_one_error_format():
    from maskedu.attack_widgets import AttackExplorer, friendly_error as attack_error
    from maskedu.panel import RunStopPanel

    assert issubclass(PW.PatternPanel, RunStopPanel) and issubclass(AttackExplorer, RunStopPanel)
    a, p = attack_error(ValueError("pixels must be at least 1")), PW.friendly_error(ValueError("iterations <a>"))
    assert a.startswith("<div style='color:#c62828'><b>Cannot run this attack:</b> pixels must be at least 1<br>")
    assert p.startswith("<div style='color:#c62828'><b>Cannot run this search:</b> iterations &lt;a&gt;<br>")
    assert a.endswith(p[p.index("<br>"):])
