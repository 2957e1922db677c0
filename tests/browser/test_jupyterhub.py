"""A class on JupyterHub, end to end: two students log in, each runs notebook 01 of the student release.

A real JupyterHub (this environment's ``jupyterhub``) on 127.0.0.1, free ports, its config, database, cookie
secret and logs in a temporary folder; ``DummyAuthenticator`` with a password; ``configurable-http-proxy``
from npm (``scripts/install_hub_deps.sh``); the single-user servers started by ``LocalProcessSpawner``.

Why real Unix users and ``LocalProcessSpawner`` (not ``SimpleLocalProcessSpawner``): the simple spawner
gives each user a home folder but runs every server and kernel as the hub's own user (root here), so any
student's code could read and overwrite any other student's notebooks; only the hub's routing keeps them
apart. With real users (``student1``, ``student2``, made with ``useradd`` by this test and removed after
it) each server and kernel runs under its own uid in a home only that uid can enter, so the kernel itself
is refused the other student's files: that is the isolation a class needs, and what is checked here,
through the Jupyter contents API (the other student's server refuses the request) and on disk (the other
uid cannot read the file).

The class's environment has to be usable by every student. Where this interpreter lives somewhere only
root may enter (a pyenv under ``/root``), the test makes a small virtual environment from a system Python
of the same version that reads this environment's packages (a ``.pth`` file) and shares its
``share/jupyter`` and ``etc/jupyter``: the same packages, reachable by the students. Where neither works
the test skips with the reason, as it does where it is not root or the proxy is missing (under CI it fails).

The shared precomputed data: the instructor's layer is built once (as root, fast mode, read-only for the
students) and named by ``MASKEDU_SHARED_DATA``; each student's own writable folder is ``MASKEDU_DATA=
~/maskedu-data``. After the run the shared layer is unchanged, byte for byte, and no dataset or sample file
was written into a student's own folder: the sample came from the shared layer, not a copy.

At the end (even on failure) the servers are stopped through the hub's API, the hub is terminated, any
process of the test's students, the proxy and the servers are ended by their ids, the users are removed,
and every port the test used is checked closed.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from labdriver import NotebookPage, in_ci

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
STUDENTS = ("student1", "student2")
MARK = "maskedu hub test account"  # the GECOS field of the accounts this test makes (and may remove)
NOTEBOOK = "01_get_the_data.ipynb"
COURSE_FOLDER = "maskedu"  # the release lands in ~/maskedu/ of each student
HINT = "sudo scripts/install_hub_deps.sh  (Node.js and configurable-http-proxy)  and  .venv/bin/pip install -e '.[test]'  (jupyterhub)"


def unavailable(reason: str) -> None:
    """Skip on a developer machine, with what to do; fail under CI (never a silent skip there)."""
    if in_ci():
        pytest.fail(f"the JupyterHub test cannot run under CI: {reason}", pytrace=False)
    pytest.skip(f"{reason}; to run the JupyterHub test: {HINT}")


# --------------------------------------------------------------------------- small helpers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _request(url: str, *, token: str | None = None, method: str = "GET", body: dict | None = None,
             timeout: float = 30) -> tuple[int, object]:
    """(status, parsed JSON or text) of an HTTP request; HTTP errors are returned, not raised."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"token {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    text = raw.decode(errors="replace")
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text


def _run(cmd: list[str], *, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def _as_user(user: str, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return _run(["runuser", "-u", user, "--", *cmd], timeout=timeout)


def _pids_of_uid(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def _kill(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder``: kind, mode, size, mtime and (for files) the SHA-256 of the bytes."""
    snap = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        rel = str(path.relative_to(folder))
        if stat.S_ISREG(st.st_mode):
            snap[rel] = ("file", st.st_mode, st.st_size, st.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
        else:
            snap[rel] = ("dir" if stat.S_ISDIR(st.st_mode) else "other", st.st_mode, st.st_mtime_ns)
    return snap


# --------------------------------------------------------------------------- the students' accounts


def _remove_user(name: str) -> None:
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        return
    _kill(_pids_of_uid(uid))
    result = _run(["userdel", name])
    if result.returncode not in (0, 6):  # 6: no such user
        raise RuntimeError(f"userdel {name} failed: {result.stderr.strip()}")


def _make_students(homes: Path) -> dict[str, pwd.struct_passwd]:
    if os.geteuid() != 0:
        unavailable("making the students' Unix accounts needs root (useradd), and the local-process spawner "
                    "needs root to start servers as them")
    if shutil.which("useradd") is None or shutil.which("runuser") is None:
        unavailable("useradd/runuser are not available on this machine")
    made = {}
    for name in STUDENTS:
        try:
            existing = pwd.getpwnam(name)
        except KeyError:
            existing = None
        if existing is not None:
            if existing.pw_gecos != MARK:
                unavailable(f"a Unix user {name!r} already exists here and was not made by this test; the test "
                            "does not touch real accounts")
            _remove_user(name)  # left over from an interrupted run of this test
        home = homes / name
        result = _run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/sh",
                       "--comment", MARK, "--user-group", name])
        if result.returncode != 0:
            unavailable(f"useradd {name} failed: {result.stderr.strip()}")
        home.chmod(0o700)  # only its owner may enter
        made[name] = pwd.getpwnam(name)
    return made


# --------------------------------------------------------------------------- the class environment


_PROBE = "import maskedu, jupyterhub.singleuser, jupyterlab, ipykernel, nbformat; print('ok')"


def _class_python(base: Path, student: str) -> str:
    """An interpreter with this environment's packages that ``student`` can run (see the module docstring)."""
    probe = _as_user(student, sys.executable, "-c", _PROBE)
    if probe.returncode == 0:
        return sys.executable
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [shutil.which(version), f"/usr/bin/{version}", f"/usr/local/bin/{version}"]
    system = next((c for c in candidates if c and os.access(c, os.X_OK)
                   and _as_user(student, c, "-c", "print()").returncode == 0), None)
    if system is None:
        unavailable(f"this interpreter ({sys.executable}) cannot be run by another user ({probe.stderr.strip()[-200:]}), "
                    f"and no {version} that every user can run was found to make a class environment from")
    env = base / "classenv"
    made = _run([system, "-m", "venv", "--without-pip", str(env)])
    if made.returncode != 0:
        unavailable(f"{system} -m venv failed: {made.stderr.strip()[-300:]}")
    site = Path(_run([str(env / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    ours = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    (site / "maskedu-class-env.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in ours))
    for sub in ("share", "etc"):  # JupyterLab's assets, kernelspecs and server-extension config
        if (Path(sys.prefix) / sub).is_dir():
            (env / sub).symlink_to(Path(sys.prefix) / sub)
    probe = _as_user(student, str(env / "bin" / "python"), "-c", _PROBE)
    if probe.returncode != 0:
        unavailable(f"the class environment made from {system} cannot import what the single-user server needs: "
                    f"{probe.stderr.strip()[-400:]}")
    return str(env / "bin" / "python")


def _start_instructor_work(base: Path) -> dict[str, subprocess.Popen]:
    """The instructor's once-only work, started in parallel: the shared data layer (fast mode) and the release."""
    shared, release = base / "shared", base / "release"
    env = dict(os.environ, MASKEDU_FAST="1", MASKEDU_DATA=str(shared), TF_CPP_MIN_LOG_LEVEL="3", MASKEDU_NO_PROGRESS="1")
    env.pop("MASKEDU_SHARED_DATA", None)
    env.pop("MASKEDU_DATASET", None)
    jobs = {
        "the shared data": subprocess.Popen([sys.executable, "-c", "import maskedu; maskedu.get_dataset()"], env=env,
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
        "the release": subprocess.Popen([sys.executable, "-m", "maskedu", "course", "release", str(release),
                                         "--only", NOTEBOOK[:2]], env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True),
    }
    return jobs


def _finish_instructor_work(base: Path, jobs: dict[str, subprocess.Popen]) -> tuple[Path, Path]:
    """Wait for :func:`_start_instructor_work`; make the shared layer read-only for the students."""
    shared, release = base / "shared", base / "release"
    for what, proc in jobs.items():
        out, _ = proc.communicate(timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"building {what} failed (exit {proc.returncode}):\n{out[-3000:]}")
    # read-only for everyone but root, as an instructor would share it
    for path in (shared, *shared.rglob("*")):
        mode = path.stat().st_mode
        path.chmod((mode | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
                    | (stat.S_IXGRP | stat.S_IXOTH if path.is_dir() else 0)) & ~(stat.S_IWGRP | stat.S_IWOTH))
    return shared, release


def _hand_out(release: Path, account: pwd.struct_passwd) -> Path:
    """Copy the release into the student's home, owned by the student (what an instructor's script does).

    Also JupyterLab's setting that it should not ask about news (a toast over the screenshots)."""
    home = Path(account.pw_dir)
    dest = home / COURSE_FOLDER
    shutil.copytree(release, dest)
    settings = home / ".jupyter" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    for path in (dest, home / ".jupyter", *dest.rglob("*"), *(home / ".jupyter").rglob("*")):
        os.chown(path, account.pw_uid, account.pw_gid)
    return dest


# --------------------------------------------------------------------------- the hub


@dataclass
class Hub:
    url: str  # http://127.0.0.1:PORT/ (the proxy's public address)
    password: str
    admin_token: str  # a service token with admin rights over users and servers
    base: Path
    shared: Path
    accounts: dict
    log: Path
    process: subprocess.Popen
    proxy_api: str
    proxy_token: str
    ports: dict[str, int]
    user_ports: dict[str, int] = field(default_factory=dict)
    user_pids: dict[str, int] = field(default_factory=dict)

    def api(self, path: str, *, method: str = "GET", body: dict | None = None, token: str | None = None):
        return _request(f"{self.url}hub/api/{path}", token=token or self.admin_token, method=method, body=body)

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no hub log)"

    def spawn(self, name: str) -> None:
        status, body = self.api(f"users/{name}/server", method="POST")
        assert status in (201, 202), f"the hub refused to start {name}'s server: {status} {body}\n{self.log_tail()}"

    def wait_ready(self, name: str, timeout_s: float = 240) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            status, user = self.api(f"users/{name}")
            server = (user or {}).get("servers", {}).get("") if status == 200 else None
            if server and server.get("ready"):
                self.user_pids[name] = int(server.get("state", {}).get("pid") or 0)
                break
            if server is None and status == 200:  # spawn() saw it pending: gone means it failed to start
                raise AssertionError(f"{name}'s server is gone (it failed to start):\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}'s server was not ready within {timeout_s:.0f} s:\n{self.log_tail()}")
            time.sleep(1)
        _, routes = _request(f"{self.proxy_api}/api/routes", token=self.proxy_token)
        target = next((r["target"] for spec, r in routes.items() if spec.rstrip("/") == f"/user/{name}"), None)
        assert target, f"the proxy has no route to {name}'s server: {routes}"
        self.user_ports[name] = int(target.rsplit(":", 1)[1].split("/")[0])

    def user_token(self, name: str) -> str:
        status, body = self.api(f"users/{name}/tokens", method="POST", body={"note": "maskedu hub test", "expires_in": 3600})
        assert status == 201, f"could not make an API token for {name}: {status} {body}"
        return body["token"]

    def contents(self, owner: str, path: str = "", *, token: str):
        return _request(f"{self.url}user/{owner}/api/contents/{path}", token=token)


def _hub_config(*, port, hub_port, proxy_port, proxy_token, admin_token, password, chp, python, shared, state) -> str:
    return textwrap.dedent(f"""\
        # written by tests/browser/test_jupyterhub.py
        c = get_config()  # noqa
        c.JupyterHub.ip = "127.0.0.1"
        c.JupyterHub.port = {port}
        c.JupyterHub.hub_ip = "127.0.0.1"
        c.JupyterHub.hub_port = {hub_port}
        c.JupyterHub.db_url = "sqlite:///{state}/jupyterhub.sqlite"
        c.JupyterHub.cookie_secret_file = "{state}/jupyterhub_cookie_secret"
        c.JupyterHub.pid_file = "{state}/jupyterhub.pid"
        c.JupyterHub.cleanup_servers = True
        c.JupyterHub.cleanup_proxy = True
        c.ConfigurableHTTPProxy.command = [{chp!r}]
        c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_port}"
        c.ConfigurableHTTPProxy.auth_token = {proxy_token!r}
        c.ConfigurableHTTPProxy.pid_file = "{state}/proxy.pid"

        c.JupyterHub.authenticator_class = "jupyterhub.auth.DummyAuthenticator"
        c.DummyAuthenticator.password = {password!r}
        c.Authenticator.allowed_users = {set(STUDENTS)!r}

        c.JupyterHub.services = [{{"name": "maskedu-test", "api_token": {admin_token!r}}}]
        c.JupyterHub.load_roles = [{{
            "name": "maskedu-test",
            "scopes": ["admin:users", "admin:servers", "admin:server_state", "tokens", "list:users"],
            "services": ["maskedu-test"],
        }}]

        # each student's server runs as that student (setuid), in their own home
        c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"
        c.Spawner.cmd = [{python!r}, "-m", "jupyterhub.singleuser"]
        c.Spawner.notebook_dir = "~"
        c.Spawner.default_url = "/lab"
        c.Spawner.start_timeout = 240
        c.Spawner.http_timeout = 240
        c.Spawner.args = [
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--ServerApp.terminals_enabled=False",
        ]
        c.Spawner.environment = {{
            "MASKEDU_FAST": "1",                     # the notebooks in fast mode
            "MASKEDU_STRICT": "1",                   # a claim the run contradicts stops it, as in make test
            "MASKEDU_DATA": "~/maskedu-data",        # each student's own writable data folder
            "MASKEDU_SHARED_DATA": {str(shared)!r},  # the instructor's precomputed, read-only layer
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }}
        """)


def _stop_hub(hub: Hub) -> None:
    """Stop the servers through the API, then the hub; end what is left (proxy, servers, kernels) by pid."""
    if hub.process.poll() is None:
        for name in STUDENTS:
            try:
                hub.api(f"users/{name}/server", method="DELETE")
            except OSError:
                pass
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                gone = all(not (hub.api(f"users/{n}")[1] or {}).get("servers") for n in STUDENTS)
            except (OSError, AttributeError):
                break
            if gone:
                break
            time.sleep(1)
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(hub.process.pid, sig)
        except ProcessLookupError:
            break
        try:
            hub.process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    left = []  # the proxy, if the hub left it running (checked by name: its pid may be another process's by now)
    pid_file = hub.base / "hub" / "proxy.pid"
    try:
        pid = int(pid_file.read_text().strip())
        if b"configurable-http-proxy" in Path(f"/proc/{pid}/cmdline").read_bytes():
            left.append(pid)
    except (OSError, ValueError):
        pass
    for account in hub.accounts.values():  # servers and kernels: whatever still runs as the test's students
        left += _pids_of_uid(account.pw_uid)
    _kill(left)


@pytest.fixture(scope="module")
def hub(screenshots):
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        unavailable("the Python package 'jupyterhub' is not installed")
    chp = os.environ.get("MASKEDU_CHP") or shutil.which("configurable-http-proxy")
    if not chp or not os.access(chp, os.X_OK) or _run([chp, "--version"], timeout=60).returncode != 0:
        unavailable("configurable-http-proxy (JupyterHub's proxy, from npm) was not found or does not run")

    start = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="maskedu-hub-"))  # not under pytest's root-only tmp: students enter it
    base.chmod(0o755)
    accounts: dict = {}
    jobs: dict[str, subprocess.Popen] = {}
    hub_obj = None
    try:
        (base / "homes").mkdir(mode=0o755)
        accounts.update(_make_students(base / "homes"))
        python = _class_python(base, STUDENTS[0])
        jobs.update(_start_instructor_work(base))  # runs while the hub starts
        shared = base / "shared"

        state = base / "hub"
        state.mkdir(mode=0o700)
        ports = {"public": _free_port(), "hub": _free_port(), "proxy api": _free_port()}
        password, admin_token, proxy_token = (secrets.token_hex(16) for _ in range(3))
        config = state / "jupyterhub_config.py"
        config.write_text(_hub_config(port=ports["public"], hub_port=ports["hub"], proxy_port=ports["proxy api"],
                                      proxy_token=proxy_token, admin_token=admin_token, password=password, chp=chp,
                                      python=python, shared=shared, state=state))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MASKEDU_", "JUPYTER"))}
        env["PATH"] = f"{Path(chp).parent}{os.pathsep}{env.get('PATH', '')}"  # the proxy's node
        log = state / "jupyterhub.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(config)], cwd=state, env=env,
                                    stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        hub_obj = Hub(f"http://127.0.0.1:{ports['public']}/", password, admin_token, base, shared, accounts, log, proc,
                      f"http://127.0.0.1:{ports['proxy api']}", proxy_token, ports)
        _, release = _finish_instructor_work(base, jobs)
        for account in accounts.values():
            _hand_out(release, account)
        print(f"\nhub test: accounts, class environment ({python}), shared data and release ready after "
              f"{time.monotonic() - start:.0f} s")
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterHub exited with code {proc.returncode}:\n{hub_obj.log_tail()}")
            try:
                if _request(f"{hub_obj.url}hub/api/", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterHub did not answer within 120 s:\n{hub_obj.log_tail()}")
            time.sleep(0.5)
        print(f"hub test: JupyterHub at {hub_obj.url} after {time.monotonic() - start:.0f} s (log {log})")
        yield hub_obj
    finally:
        for proc in jobs.values():  # still running only where something failed first
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if hub_obj is not None:
            _stop_hub(hub_obj)
        for name in accounts:
            _remove_user(name)
        if hub_obj is not None and hub_obj.log.is_file():  # kept beside the screenshots (a CI artifact)
            kept = screenshots / "hub-jupyterhub.log"
            shutil.copyfile(hub_obj.log, kept)
            print(f"hub test: the hub's log: {kept}")
        shutil.rmtree(base, ignore_errors=True)
        if hub_obj is not None:
            ports = {**hub_obj.ports, **{f"{n}'s server": p for n, p in hub_obj.user_ports.items()}}
            still = {what: port for what, port in ports.items() if _port_open(port)}
            assert not still, f"after stopping the hub these ports still answer: {still}"
            print(f"hub test: hub stopped, ports closed ({', '.join(f'{k} {v}' for k, v in ports.items())})")


# --------------------------------------------------------------------------- the students, in Chromium


class HubNotebookPage(NotebookPage):
    """The lab driver on a user's server behind the hub: the login cookie authenticates, no token in the URL."""

    @property
    def url(self) -> str:
        from urllib.parse import quote

        return f"{self.server.url}lab/workspaces/{self.workspace}/tree/{quote(self.notebook)}?reset"


@dataclass
class UserServer:  # what NotebookPage needs of a server
    url: str
    token: str = ""


def _log_in(browser, hub: Hub, name: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.goto(f"{hub.url}hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", hub.password)
    page.click("#login_submit")
    page.wait_for_url(lambda url: "/hub/login" not in url, timeout=60_000)
    return page


def _text_outputs(nb: dict) -> str:
    parts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if "text" in out:
                parts.append(out["text"] if isinstance(out["text"], str) else "".join(out["text"]))
            for mime in ("text/plain",):
                value = out.get("data", {}).get(mime)
                if value:
                    parts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(parts)


def test_two_students_run_notebook_01_on_the_hub(hub, browser, screenshots):
    start = time.monotonic()
    shared_before = _snapshot(hub.shared)
    assert any(p.startswith("sample") for p in shared_before), f"the shared layer holds no sample: {sorted(shared_before)[:10]}"
    for name in STUDENTS:  # both servers start at once, as a class arriving does
        hub.spawn(name)
    for name in STUDENTS:
        hub.wait_ready(name)
    print(f"hub test: both servers up after {time.monotonic() - start:.0f} s "
          f"(pids {hub.user_pids}, ports {hub.user_ports})")

    path = f"{COURSE_FOLDER}/{NOTEBOOK}"
    pages, notebooks = {}, {}
    try:
        for name in STUDENTS:
            pages[name] = _log_in(browser, hub, name)
            notebooks[name] = HubNotebookPage(pages[name], UserServer(f"{hub.url}user/{name}/"), path).open()
        for name in STUDENTS:  # Run All in both, then wait for each: the two kernels run side by side
            notebooks[name].menu("Run", "Run All Cells")
        for name in STUDENTS:
            nb = notebooks[name]
            nb.wait_until_executed()
            assert nb.cell_errors() == []
            nb.assert_no_tracebacks(".jp-Notebook")
            nb.page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
            nb.screenshot(screenshots, f"hub-{name}-01-run-all", scroll_to=".jp-Notebook .jp-Cell >> nth=-1")
        print(f"hub test: both students ran {NOTEBOOK} in the browser after {time.monotonic() - start:.0f} s")

        tokens = {name: hub.user_token(name) for name in STUDENTS}
        for name, other in (STUDENTS, STUDENTS[::-1]):
            account = hub.accounts[name]
            # the student's own server: their notebook, with the outputs of their run, saved
            status, model = hub.contents(name, path, token=tokens[name])
            assert status == 200, f"{name} cannot read their own notebook: {status} {model}"
            text = _text_outputs(model["content"])
            assert str(hub.shared / "sample-fast") in text, (
                f"{name}'s notebook does not show the sample read from the shared layer {hub.shared}:\n{text[:1500]}")
            # the other student's server refuses them, for the listing and for the notebook
            for what in ("", path):
                status, body = hub.contents(other, what, token=tokens[name])
                assert status == 403, f"{name} could read {other}'s {what or 'home listing'}: {status} {str(body)[:300]}"
            # in the browser too: the other's lab is refused with the login cookie
            response = pages[name].goto(f"{hub.url}user/{other}/api/contents/{path}")
            assert response is not None and response.status == 403, (
                f"{name}'s browser got {response and response.status} for {other}'s notebook")
            # on disk: owned by the student, and the other uid cannot read it (their kernel could not either)
            on_disk = Path(account.pw_dir) / path
            assert on_disk.stat().st_uid == account.pw_uid
            assert str(hub.shared / "sample-fast") in _text_outputs(json.loads(on_disk.read_text())), (
                f"{on_disk} was not saved with the run's outputs")
            denied = _as_user(other, "cat", str(on_disk))
            assert denied.returncode != 0 and "Permission denied" in denied.stderr, (
                f"{other} could read {on_disk}: exit {denied.returncode} {denied.stderr}")
            # nothing of the sample was copied into the student's own data folder
            own = Path(account.pw_dir) / "maskedu-data"
            written = sorted(str(p.relative_to(own)) for p in own.rglob("*")) if own.is_dir() else []
            copied = [w for w in written if Path(w).parts[0].lstrip(".").startswith("sample")
                      or Path(w).suffix.lower() in {".jpg", ".jpeg", ".png", ".json", ".csv"}]
            assert not copied, f"{name}'s own data folder got dataset/sample files instead of reading the shared layer: {copied[:10]}"
            print(f"hub test: {name}: own notebook saved with outputs, {other}'s server and files refused, "
                  f"own data folder holds {written or 'nothing'}")
        assert _snapshot(hub.shared) == shared_before, "the shared data layer was changed by the students' runs"
        print(f"hub test: shared layer unchanged ({len(shared_before)} entries); "
              f"test body took {time.monotonic() - start:.0f} s")
    except BaseException:
        for name, page in pages.items():
            try:
                page.screenshot(path=str(screenshots / f"hub-{name}-FAILED.png"))
                print(f"screenshot of the failure: {screenshots / f'hub-{name}-FAILED.png'}")
            except Exception:
                pass
        print(f"--- hub log ---\n{hub.log_tail(80)}")
        raise
    finally:
        for page in pages.values():
            page.context.close()
