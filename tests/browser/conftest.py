"""Fixtures for the browser tests: a private JupyterLab server and headless Chromium (Playwright).

The server is started from this interpreter's environment (``sys.executable -m jupyterlab``) on 127.0.0.1,
on a free port, with a random token, a temporary root folder holding copies of ``notebooks/*.ipynb``, its
own settings/workspaces/runtime folders (nothing of the user's JupyterLab state leaks in or out), and
``MASKEDU_FAST=1`` so kernels run the notebooks in fast mode. It is stopped at the end of the session
(kernels shut down through the API, then the server's process group is terminated).

Kernels write their data (sample dataset, crops, model) to ``$MASKEDU_BROWSER_DATA`` if set, else to the
checkout's ``data/`` folder: fast-mode artifacts carry a ``-fast`` suffix (``common.artifact_path``) so
they never replace the real ones, and sharing them with nbval's notebook run in ``make test`` means
each is built once.

Screenshots go to ``$MASKEDU_SCREENSHOTS`` (default ``data/screenshots/`` in the checkout; git-ignored,
CI keeps it as an artifact). A failing test also leaves ``<test name>-FAILED.png`` there.

Chromium: ``$MASKEDU_CHROMIUM`` or Debian's ``/usr/bin/chromium`` (``scripts/install_browser_deps.sh``
installs it). Where it or Playwright is missing the tests are skipped on a developer machine with the
command to run, and FAIL under CI (``CI`` set to true/1), never skipping silently there.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from labdriver import INSTALL_HINT, in_ci, unavailable

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def find_chromium() -> str | None:
    env = os.environ.get("MASKEDU_CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot_dir() -> Path:
    env = os.environ.get("MASKEDU_SCREENSHOTS")
    path = Path(env).expanduser() if env else REPO / "data" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives JupyterLab in headless Chromium (tests/browser)")


def pytest_collection_modifyitems(config, items):
    """Every test here is marked ``browser``; those that drive JupyterLab (``lab_notebook``) are ``slow`` too:
    starting the server and Chromium alone takes tens of seconds."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            if "lab_notebook" in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.slow)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        page = item.funcargs.get("page")
        if page is not None:
            try:
                path = screenshot_dir() / f"{_safe(item.name)}-FAILED.png"
                page.screenshot(path=str(path))
                report.sections.append(("browser", f"screenshot of the failure: {path}"))
                print(f"\nscreenshot of the failure: {path}")
            except Exception as exc:  # the page may be gone; the failure itself matters more
                report.sections.append(("browser", f"no failure screenshot: {exc}"))


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


# --------------------------------------------------------------------------- the JupyterLab server


@dataclass
class LabServer:
    url: str  # http://127.0.0.1:PORT/ (trailing slash)
    token: str
    root: Path  # the server's root folder (copies of the notebooks live here)
    data: Path  # MASKEDU_DATA of the kernels
    log: Path
    process: subprocess.Popen

    def api(self, path: str, method: str = "GET", timeout: float = 10):
        req = urllib.request.Request(f"{self.url}api/{path}", method=method)
        req.add_header("Authorization", f"token {self.token}")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Close every session and kernel (each test gets fresh ones; frees the kernels' memory)."""
        try:
            for s in self.api("sessions"):
                self.api(f"sessions/{s['id']}", method="DELETE", timeout=60)
            for k in self.api("kernels"):
                self.api(f"kernels/{k['id']}", method="DELETE", timeout=60)
        except (urllib.error.URLError, OSError):
            pass

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _copy_notebooks(dest: Path) -> None:
    for nb in sorted(NOTEBOOKS.glob("*.ipynb")):
        shutil.copy2(nb, dest / nb.name)


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory) -> LabServer:
    """JupyterLab from this environment on a random loopback port with a random token; stopped at the end."""
    base = tmp_path_factory.mktemp("lab")
    root, settings, workspaces, runtime, config = (base / n for n in ("root", "settings", "workspaces", "runtime", "config"))
    for d in (root, settings, workspaces, runtime, config):
        d.mkdir()
    _copy_notebooks(root)
    # Quiet start: no "get news?" toast, no update check, every cell kept in the DOM (no virtual windowing).
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    (settings / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"})
    )

    data_env = os.environ.get("MASKEDU_BROWSER_DATA")
    data = Path(data_env).expanduser() if data_env else REPO / "data"
    data.mkdir(parents=True, exist_ok=True)

    port, token = _free_port(), secrets.token_hex(24)
    env = dict(os.environ)
    env.update(
        MASKEDU_FAST="1",
        MASKEDU_DATA=str(data.resolve()),
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_RUNTIME_DIR=str(runtime),
        JUPYTERLAB_WORKSPACES_DIR=str(workspaces),
        PYTHONUNBUFFERED="1",
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    cmd = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--allow-root",  # CI containers run as root
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={workspaces}",
        "--LabApp.expose_app_in_browser=True",
        "--JupyterNotebookApp.expose_app_in_browser=True",
        "--LabApp.extension_manager=readonly",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--ServerApp.terminals_enabled=False",
    ]
    log = base / "server.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    server = LabServer(f"http://127.0.0.1:{port}/", token, root, data, log, proc)
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {proc.returncode}:\n{server.log_tail()}")
            try:
                server.api("status", timeout=5)
                break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not answer /api/status within 180 s:\n{server.log_tail()}")
                time.sleep(0.5)
        print(f"\nJupyterLab for the browser tests: {server.url} (root {root}, data {server.data}, log {log})")
        yield server
    finally:
        _stop(server)


def _stop(server: LabServer) -> None:
    proc = server.process
    if proc.poll() is None:
        server.shutdown_kernels()
        try:
            server.api("shutdown", method="POST", timeout=10)
            proc.wait(timeout=30)
        except (urllib.error.URLError, OSError, subprocess.TimeoutExpired):
            pass
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


# --------------------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        unavailable("Chromium was not found (looked at $MASKEDU_CHROMIUM, /usr/bin/chromium, chromium, chromium-browser)")
    return path


@pytest.fixture(scope="session")
def browser(chromium_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the Python package 'playwright' is not installed")
    with sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        except Exception as exc:
            unavailable(f"Chromium at {chromium_path} did not start: {exc}")
        yield b
        b.close()


@pytest.fixture
def page(browser, lab_server):
    """A fresh browser context and page; kernels opened during the test are shut down afterwards."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
    context.set_default_timeout(60_000)
    pg = context.new_page()
    console_errors: list[str] = []
    pg.on("pageerror", lambda exc: console_errors.append(str(exc)))
    pg.console_errors = console_errors
    yield pg
    context.close()
    lab_server.shutdown_kernels()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    return screenshot_dir()


@pytest.fixture
def lab_notebook(page, lab_server):
    """Open a notebook (a name from the server's root) in JupyterLab: ``nb = lab_notebook("04_x.ipynb")``."""
    from labdriver import NotebookPage

    def open_(name: str, *, ui: str = "lab") -> NotebookPage:
        if not (lab_server.root / name).is_file():
            raise FileNotFoundError(f"{name} is not in the server's root {lab_server.root}")
        return NotebookPage(page, lab_server, name, ui=ui).open()

    return open_
