"""Start the simulated ComfyUI server (comfyui_server.py) as a real process, for tests.

    with start_comfy_server(token="T") as comfy:
        requests.get(comfy.url + "/system_stats", headers=comfy.auth_headers())
        comfy.config(history_status=500)

Pytest fixtures (registered in tests/conftest.py):
    comfy_server          function-scoped handle on one session-wide process, reset before each test
    comfy_server_session  the session-wide process itself (no reset; for module-scoped setups)
    comfy_server_fresh    a new process for this test only (destructive tests: SIGSTOP, restart)
    comfy_server_factory  callable(**options) -> a new process per call, all stopped after the test
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

SERVER_SCRIPT = Path(__file__).resolve().parent / "comfyui_server.py"
START_TIMEOUT = 30.0


class ComfyServer:
    """A running simulated ComfyUI process and its /_test control routes."""

    def __init__(self, process: subprocess.Popen, host: str, port: int, base_dir: Path, log_path: Path,
                 token: str | None, require_header: str | None):
        self.process = process
        self.host = host
        self.port = port
        self.base_dir = base_dir
        self.log_path = log_path
        self.token = token
        self.require_header = require_header
        self.url = f"http://{host}:{port}"
        self.ws_url = f"ws://{host}:{port}/ws"
        self._http = requests.Session()
        self._http.trust_env = False

    # ---- control -------------------------------------------------------------------------

    def _control(self, method: str, path: str, json_body=None, timeout: float = 10.0):
        resp = self._http.request(method, self.url + path, json=json_body, timeout=timeout)
        resp.raise_for_status()
        return resp.json()

    def config(self, **faults) -> dict:
        """Merge faults/knobs into the runtime config (see comfysim.engine.DEFAULT_CONFIG); returns it."""
        return self._control("POST", "/_test/config", faults)

    def stats(self) -> dict:
        return self._control("GET", "/_test/stats")

    def reset(self) -> None:
        self._control("POST", "/_test/reset")

    def release(self) -> None:
        """Let nodes held by the hang_class fault finish."""
        self._control("POST", "/_test/release")

    def restart(self, down_seconds: float = 0.0) -> None:
        """Forget queue, history and websockets like a restart; optionally refuse connections for a while."""
        self._control("POST", "/_test/restart", {"down_seconds": down_seconds})
        if down_seconds:
            time.sleep(0.1)
            self.wait_ready(timeout=down_seconds + 10)

    def files(self) -> dict:
        return self._control("GET", "/_test/files")

    def wait_idle(self, timeout: float = 20.0) -> dict:
        """Wait until nothing is running or pending; returns the last stats."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if not stats["queue"]["running"] and not stats["queue"]["pending"]:
                return stats
            if time.monotonic() > deadline:
                raise TimeoutError(f"simulated ComfyUI still busy: {stats['queue']}")
            time.sleep(0.02)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._http.get(self.url + "/_test/stats", timeout=1.0).raise_for_status()
                return
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    # ---- client helpers ------------------------------------------------------------------

    def auth_headers(self) -> dict:
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.require_header:
            name, _, value = self.require_header.partition(":")
            headers[name.strip()] = value.strip()
        return headers

    def history_entry(self, prompt_id: str) -> dict | None:
        """GET /history/{prompt_id} as a client sees it: the prompt's entry, or None while there is none."""
        resp = self._http.get(f"{self.url}/history/{prompt_id}", headers=self.auth_headers(), timeout=10)
        resp.raise_for_status()
        return resp.json().get(prompt_id)

    def finished_entry(self, prompt_id: str, timeout: float = 10.0) -> dict:
        """The prompt's history entry once it has one (the run ended); AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        while (entry := self.history_entry(prompt_id)) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"prompt {prompt_id} did not finish within {timeout} s")
            time.sleep(0.02)
        return entry

    def queued_graph(self, prompt_id: str) -> dict:
        """The graph ComfyUI ran for `prompt_id`, as its history keeps it."""
        entry = self.history_entry(prompt_id)
        assert entry is not None, f"no history for {prompt_id}"
        return entry["prompt"][2]

    def file_path(self, type_: str, subfolder: str, filename: str) -> Path:
        """Where the server keeps a file it lists as {type, subfolder, filename}."""
        base = Path(self.base_dir)
        root = base / "root" if (base / "root").is_dir() else base
        return root / type_ / subfolder / filename

    def saved_file(self, prompt_id: str, node: str) -> Path:
        """The one file `node` of `prompt_id` saved, as its history lists it."""
        entry = self.history_entry(prompt_id)
        assert entry is not None, f"no history for {prompt_id}"
        (item,) = entry["outputs"][node]["images"]
        return self.file_path(item["type"], item["subfolder"], item["filename"])

    # ---- process -------------------------------------------------------------------------

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a frozen process cannot handle SIGTERM
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._http.close()
        if self.process.stdout:
            self.process.stdout.close()

    def __enter__(self) -> ComfyServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_comfy_server(token: str | None = None, require_header: str | None = None, plugins: tuple = (),
                       base_dir: str | Path | None = None, extra_args: tuple = ()) -> ComfyServer:
    """Start comfyui_server.py on a free loopback port and wait for its `listening` line."""
    base = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="comfysim-"))
    base.mkdir(parents=True, exist_ok=True)
    log_path = base / "server.log"
    cmd = [sys.executable, str(SERVER_SCRIPT), "--port", "0", "--base-dir", str(base / "root"), "--exit-with-parent"]
    if token:
        cmd += ["--token", token]
    if require_header:
        cmd += ["--require-header", require_header]
    for plugin in plugins:
        cmd += ["--plugin", str(plugin)]
    cmd += list(extra_args)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=env)
    line = _first_line(process, START_TIMEOUT)
    if not line.startswith("listening "):
        process.kill()
        process.wait()
        raise RuntimeError(f"simulated ComfyUI did not start ({line!r}):\n"
                           f"{log_path.read_text(errors='replace')[-3000:]}")
    host, _, port = line.split(" ", 1)[1].rpartition(":")
    return ComfyServer(process, host, int(port), base, log_path, token, require_header)


def _first_line(process: subprocess.Popen, timeout: float) -> str:
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: lines.put(process.stdout.readline().decode(errors="replace")), daemon=True).start()
    try:
        return lines.get(timeout=timeout).strip()
    except queue.Empty:
        return ""


# ---- pytest fixtures --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def comfy_server_session(tmp_path_factory):
    server = start_comfy_server(base_dir=tmp_path_factory.mktemp("comfysim"))
    yield server
    server.stop()


@pytest.fixture
def comfy_server(comfy_server_session):
    comfy_server_session.reset()
    return comfy_server_session


@pytest.fixture
def comfy_server_factory(tmp_path):
    started: list[ComfyServer] = []

    def start(**options) -> ComfyServer:
        server = start_comfy_server(base_dir=tmp_path / f"comfysim{len(started)}", **options)
        started.append(server)
        return server
    yield start
    for server in started:
        server.stop()


@pytest.fixture
def comfy_server_fresh(comfy_server_factory):
    return comfy_server_factory()
