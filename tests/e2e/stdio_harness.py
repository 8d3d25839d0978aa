"""Run the packaged plugin the way the Dify plugin daemon does, and talk to it over stdio.

What it reproduces (see the daemon's local_runtime and the SDK's stdio server):

1. build the .difypkg with scripts/build_pkg.py (or take a given one);
2. unzip it into a fresh working directory;
3. give it `<workdir>/.venv`, a Python 3.12 venv with the package's requirements.txt installed
   (pip). Venvs are cached per (requirements.txt, interpreter) hash under
   `$COMFYUI_BIZYAIR_E2E_CACHE` (default `<tmp>/comfyui_bizyair_e2e`), and `.venv` is a symlink
   to the cached one, so only the first run pays for the install; a first run works from scratch;
4. launch `.venv/bin/python -m main` with cwd = workdir and `INSTALL_METHOD=local`;
5. read stdout line by line in a thread, treat the instance as ready at the first heartbeat;
6. send requests as the daemon does (one JSON object per line on stdin, fresh session id) and
   collect that session's `session` events until `end`, re-assembling `blob_chunk` streams.

API
---
    from stdio_harness import PluginProcess

    with PluginProcess.start(env={"HTTP_PROXY": ""}) as plugin:     # builds, installs, launches
        check = plugin.validate("comfyui_bizyair", {"comfyui_base_url": "http://127.0.0.1:8188"})
        check.ok, check.error                  # True/False, first error message or None
        run = plugin.invoke("comfyui_bizyair", "comfyui_workflow", credentials,
                            {"prompt": "a fox", "workflow_json": "{...}"}, timeout=120)
        run.errors      # [{"error_type", "message", "args"}]  (session "error" events)
        run.stream      # tool messages in order: {"type", "message", "meta"}; blob chunks merged
                        #   into one {"type": "blob", "message": {"id", "blob": bytes}, "meta"}
        run.blobs       # {blob_id: Blob(data=bytes, meta=dict)}
        run.texts, run.text, run.variables, run.jsons, run.of_type("link")
        run.messages    # raw session payloads {"type": "stream"|"invoke"|"error"|"end", "data"}
        list(run), len(run), run[0]                # a result also behaves like the messages list
        plugin.lines    # every stdout/stderr line so far: [("stdout"|"stderr", text)]
        plugin.output_text()                       # all of them joined, for grepping secrets
        plugin.heartbeats, plugin.logs, plugin.declaration (the manifest line the SDK prints)

    PluginProcess.start(pkg=None, *, env=None, workdir=None, python=None, cache_venv=True,
                        ready_timeout=180)
        pkg: path of a .difypkg; None builds one from the repository into a temp dir.
        env: extra environment variables for the plugin process (added to os.environ).
        workdir: where to unzip (must not exist or be empty); default: a new temp dir, removed
                 on close.
        python: interpreter for the venv; default find_python312().
        cache_venv: False makes a real, uncached `<workdir>/.venv`.
    plugin.invoke(provider, tool, credentials, parameters, *, timeout=600, user_id="e2e-user",
                  conversation_id=None, message_id=None, app_id=None, on_invoke=None)
        on_invoke(payload) is called for backwards invocations ({"type", "backwards_request_id",
        "request"}); return a dict to answer with it, or raise to answer with an error. Without a
        handler the invocation is answered with an error so the plugin does not wait 250 s.
    plugin.invoke(..., storage=DaemonStorage())   answers `storage` backwards invocations as the
        daemon does (see DaemonStorage); other kinds are refused like without a handler.
    plugin.validate(provider, credentials, *, timeout=120)
    plugin.send(data, session_id=None) -> session_id; plugin.collect(session_id, timeout, on_invoke)
    plugin.close()   (also on leaving the with-block): terminate, then kill after 5 s.

Helpers: find_python312(), build_package(out_dir), cached_venv(requirements_path, python),
prepare_workdir(pkg, workdir, ...), DaemonStorage (Dify's plugin storage, shared by every plugin
process given the same instance).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import json
import os
import posixpath
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from script_loader import load_script

ROOT = Path(__file__).resolve().parents[2]
CACHE_ENV = "COMFYUI_BIZYAIR_E2E_CACHE"
READY_MARK = ".e2e-ready"


# ---- interpreter, package, venv -------------------------------------------------------------------

def find_python312() -> str:
    """A real Python 3.12 executable: this one, else $PYTHON312 (set by scripts/dev), else
    pyenv's python3.12 (with PYENV_VERSION=3.12.1), else ~/.pyenv/versions/3.12*."""
    if sys.version_info[:2] == (3, 12):
        return sys.executable
    probe = "import sys; assert sys.version_info[:2] == (3, 12); print(sys.executable)"
    for candidate in filter(None, (os.environ.get("PYTHON312"), "python3.12")):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([candidate, "-c", probe], capture_output=True, text=True, timeout=30,
                                 env={**os.environ, "PYENV_VERSION": os.environ.get("PYENV_VERSION", "3.12.1")})
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
    for candidate in sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python"), reverse=True):
        if candidate.is_file():
            return str(candidate)
    raise RuntimeError("no Python 3.12 found (tried sys.executable, python3.12 via pyenv, ~/.pyenv/versions/3.12*)")


def _packer():
    return load_script("build_pkg")


def build_package(out_dir: Path) -> Path:
    """Build the repository's .difypkg into out_dir with scripts/build_pkg.py; returns its path."""
    return _packer().build(ROOT, Path(out_dir)).path


def _cache_root() -> Path:
    root = Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "comfyui_bizyair_e2e")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _pip_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    return env


def _make_venv(target: Path, requirements: Path, python: str) -> None:
    subprocess.run([python, "-m", "venv", str(target)], check=True, capture_output=True, timeout=300,
                   env=_pip_env())
    vpy = target / "bin" / "python"
    proc = subprocess.run([str(vpy), "-m", "pip", "install", "-q", "-r", str(requirements)],
                          capture_output=True, text=True, timeout=900, env=_pip_env())
    if proc.returncode != 0:
        raise RuntimeError(f"pip install -r {requirements.name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    # The daemon warms the venv up the same way before the first launch.
    subprocess.run([str(vpy), "-c", "import dify_plugin"], check=True, capture_output=True, timeout=300)
    (target / READY_MARK).write_text(str(time.time()), encoding="utf-8")


def cached_venv(requirements: Path, python: str | None = None) -> Path:
    """A venv with `requirements` installed, shared by every run with the same requirements and
    interpreter. Built under a lock, in a temp dir moved into place, so a crash leaves no half venv."""
    python = python or find_python312()
    version = subprocess.run([python, "-c", "import sys, platform; print(sys.version, platform.machine())"],
                             capture_output=True, text=True, check=True, timeout=60).stdout
    key = hashlib.sha256(Path(requirements).read_bytes() + version.encode()).hexdigest()[:16]
    root = _cache_root()
    final = root / f"venv-{key}"
    if (final / READY_MARK).is_file():
        return final
    with open(root / f"venv-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / READY_MARK).is_file():
            return final
        shutil.rmtree(final, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"venv-{key}.tmp-", dir=root))
        try:
            _make_venv(tmp, Path(requirements), python)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def prepare_workdir(pkg: Path, workdir: Path, *, python: str | None = None, cache_venv: bool = True) -> Path:
    """Unzip the package into workdir and give it a `.venv`, like the daemon's install step."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if any(workdir.iterdir()):
        raise RuntimeError(f"{workdir} is not empty")
    with zipfile.ZipFile(pkg) as zf:
        for info in zf.infolist():
            if info.is_dir():
                raise RuntimeError(f"{pkg} has a directory entry ({info.filename}); Dify cannot install it")
            zf.extract(info, workdir)
    requirements = workdir / "requirements.txt"
    if cache_venv:
        (workdir / ".venv").symlink_to(cached_venv(requirements, python), target_is_directory=True)
    else:
        _make_venv(workdir / ".venv", requirements, python or find_python312())
    return workdir


# ---- results ------------------------------------------------------------------------------------

@dataclass
class Blob:
    data: bytes
    meta: dict[str, Any] | None


@dataclass
class SessionResult:
    """Everything one request produced, in order."""

    session_id: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    stream: list[dict[str, Any]] = field(default_factory=list)
    blobs: dict[str, Blob] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    ended: bool = False

    def __iter__(self):
        return iter(self.messages)

    def __len__(self) -> int:
        return len(self.messages)

    def __getitem__(self, index):
        return self.messages[index]

    @property
    def ok(self) -> bool:
        """validate(): the SDK answered {"result": true} and raised nothing."""
        return self.ended and not self.errors and any(m == {"result": True} for m in self.stream)

    @property
    def error(self) -> str | None:
        return self.errors[0].get("message") if self.errors else None

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.stream if isinstance(m, dict) and m.get("type") == kind]

    @property
    def texts(self) -> list[str]:
        return [m["message"]["text"] for m in self.of_type("text")]

    @property
    def text(self) -> str:
        return "".join(self.texts)

    @property
    def jsons(self) -> list[Any]:
        return [m["message"]["json_object"] for m in self.of_type("json")]

    @property
    def variables(self) -> dict[str, Any]:
        """Like Dify's tool node: the last value wins, streamed string pieces are concatenated."""
        out: dict[str, Any] = {}
        for m in self.of_type("variable"):
            msg = m["message"]
            name, value = msg["variable_name"], msg["variable_value"]
            if msg.get("stream"):
                out[name] = (out.get(name) or "") + value
            else:
                out[name] = value
        return out


class _BlobAssembler:
    def __init__(self) -> None:
        self.parts: dict[str, list[bytes]] = {}

    def add(self, result: SessionResult, item: dict[str, Any]) -> None:
        msg, meta = item["message"], item.get("meta")
        blob_id = msg["id"]
        if blob_id not in self.parts:
            self.parts[blob_id] = []
            result.stream.append({"type": "blob", "message": {"id": blob_id, "blob": b""}, "meta": meta})
        if msg["end"]:
            data = b"".join(self.parts.pop(blob_id))
            if len(data) != msg["total_length"]:
                raise AssertionError(f"blob {blob_id}: got {len(data)} bytes, announced {msg['total_length']}")
            result.blobs[blob_id] = Blob(data, meta)
            for entry in result.stream:
                if entry["type"] == "blob" and entry["message"]["id"] == blob_id:
                    entry["message"]["blob"] = data
            return
        if msg["sequence"] != len(self.parts[blob_id]):
            raise AssertionError(f"blob {blob_id}: chunk {msg['sequence']} out of order")
        self.parts[blob_id].append(base64.b64decode(msg["blob"]))


# ---- Dify's plugin storage ------------------------------------------------------------------------

class DaemonStorage:
    """`self.session.storage` as the plugin daemon serves it (internal/core/io_tunnel/
    backwards_invocation/task.go and internal/core/persistence/persistence.go, langgenius/
    dify-plugin-daemon), backed by a dict. Give the same instance to several plugin processes (or
    several calls) and they share it, like the daemon's database does for one tenant.

    * Refused unless the plugin's declaration (the manifest line it prints first) enables
      `resource.permission.storage`: "permission denied, you need to enable storage access in
      plugin manifest".
    * Requests `{"opt": "set"|"get"|"del"|"exist", "key", "value" (hex)}`; answers `{"data": "ok"}`,
      `{"data": <hex>}`, `{"data": "ok", "deleted_num": n}`, `{"data": bool, "exist_num": n}`.
    * Keys: path.Clean(key) may not contain "..", "//" or "\\"; a key to set is at most 256
      characters.
    * Quota: the manifest's `storage.size`, capped by PERSISTENCE_STORAGE_MAX_SIZE (100 MiB by
      default). As in the daemon, the value is written before the quota is checked: a set over the
      quota answers an error but the value stays (and is not counted).
    * Errors carry the daemon's texts: "load data failed, please check if the key is correct or you
      have not set it" (every failed get), "save data failed: …", "delete data failed: …" (also for
      a key that does not exist), "decode data failed: …"."""

    MAX_SIZE = 100 * 1024 * 1024      # PERSISTENCE_STORAGE_MAX_SIZE default

    def __init__(self, max_size: int = MAX_SIZE) -> None:
        self.values: dict[str, bytes] = {}
        self.used = 0                  # the daemon's tenant_storage.size
        self.max_size = max_size
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def handler(self, declaration: dict[str, Any] | None) -> Callable[[dict[str, Any]], Any]:
        """on_invoke for PluginProcess.collect, with the permission and quota of `declaration`."""
        permission = ((declaration or {}).get("resource") or {}).get("permission") or {}
        storage = permission.get("storage") or {}
        enabled = storage.get("enabled") is True
        size = storage.get("size") if isinstance(storage.get("size"), int) else -1

        def on_invoke(payload: dict[str, Any]) -> Any:
            kind = payload.get("type")
            if kind != "storage":
                raise RuntimeError(f"backwards invocation '{kind}' is not available in the stdio harness")
            if not enabled:
                raise RuntimeError("permission denied, you need to enable storage access in plugin manifest")
            return self.serve(payload.get("request") or {}, size)
        return on_invoke

    def serve(self, request: dict[str, Any], max_size: int = -1) -> dict[str, Any]:
        opt, key = request.get("opt"), request.get("key")
        with self._lock:
            self.requests.append({"opt": opt, "key": key})
            if opt not in ("get", "set", "del", "exist") or not isinstance(key, str) or not key:
                raise RuntimeError("invalid request")     # the daemon's request validation
            bad_key = self._check_key(key)
            if opt == "get":
                if bad_key or key not in self.values:
                    raise RuntimeError("load data failed, please check if the key is correct or you have not set it")
                return {"data": self.values[key].hex()}
            if opt == "set":
                try:
                    data = binascii.unhexlify(request.get("value") or "")
                except (binascii.Error, ValueError) as exc:
                    raise RuntimeError(f"decode data failed: {exc}") from None
                if bad_key:
                    raise RuntimeError(f"save data failed: {bad_key}")
                if len(key) > 256:
                    raise RuntimeError("save data failed: key length must be less than 256 characters")
                limit = self.max_size if max_size == -1 else max_size
                old = len(self.values.get(key, b""))
                self.values[key] = data
                grown = len(data) - old
                if grown + self.used > limit or grown + self.used > self.max_size:
                    raise RuntimeError("save data failed: allocated size is greater than max storage size")
                self.used += grown
                return {"data": "ok"}
            if opt == "del":
                if bad_key:
                    raise RuntimeError(f"delete data failed: {bad_key}")
                if key not in self.values:
                    raise RuntimeError(f"delete data failed: stat {key}: no such file or directory")
                self.used -= len(self.values.pop(key))
                return {"data": "ok", "deleted_num": 1}
            if bad_key:
                raise RuntimeError(f"exist data failed: {bad_key}")
            return {"data": key in self.values, "exist_num": int(key in self.values)}

    @staticmethod
    def _check_key(key: str) -> str:
        clean = posixpath.normpath(key) if key else "."   # Go's path.Clean
        if clean.startswith("//"):
            clean = "/" + clean.lstrip("/")
        if ".." in clean or "//" in clean or "\\" in clean:
            return "invalid key: path traversal attempt detected"
        return ""


# ---- the process --------------------------------------------------------------------------------

class PluginProcess:
    def __init__(self, proc: subprocess.Popen, workdir: Path, own_workdir: Path | None) -> None:
        self.proc = proc
        self.workdir = workdir
        self._own_workdir = own_workdir
        self.lines: list[tuple[str, str]] = []
        self.logs: list[dict[str, Any]] = []
        self.declaration: dict[str, Any] | None = None
        self.heartbeats = 0
        self._ready = threading.Event()
        self._sessions: dict[str, queue.Queue] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._threads = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for t in self._threads:
            t.start()

    # -- start / stop --

    @classmethod
    def start(cls, pkg: Path | None = None, *, env: dict[str, str] | None = None, workdir: Path | None = None,
              python: str | None = None, cache_venv: bool = True, ready_timeout: float = 180) -> PluginProcess:
        own = None
        if workdir is None:
            own = Path(tempfile.mkdtemp(prefix="comfyui_bizyair_wd_"))
            workdir = own / "plugin"
        try:
            if pkg is None:
                with tempfile.TemporaryDirectory(prefix="comfyui_bizyair_dist_") as dist:
                    prepare_workdir(build_package(Path(dist)), Path(workdir), python=python, cache_venv=cache_venv)
            else:
                prepare_workdir(Path(pkg), Path(workdir), python=python, cache_venv=cache_venv)
            full_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
            full_env.update(env or {})
            full_env["INSTALL_METHOD"] = "local"
            proc = subprocess.Popen([str(Path(workdir) / ".venv" / "bin" / "python"), "-m", "main"],
                                    cwd=workdir, env=full_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
        except BaseException:
            if own:
                shutil.rmtree(own, ignore_errors=True)
            raise
        plugin = cls(proc, Path(workdir), own)
        try:
            plugin.wait_ready(ready_timeout)
        except BaseException:
            plugin.close()
            raise
        return plugin

    def wait_ready(self, timeout: float = 180) -> None:
        """Ready = first heartbeat (the daemon's rule); fails early if the process exits."""
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.1):
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the readers drain
                raise RuntimeError(f"plugin exited with {self.proc.returncode} before its first heartbeat:\n"
                                   f"{self.output_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no heartbeat within {timeout} s:\n{self.output_text()[-3000:]}")

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for t in self._threads:
            t.join(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.close()
        if self._own_workdir:
            shutil.rmtree(self._own_workdir, ignore_errors=True)
            self._own_workdir = None

    def __enter__(self) -> PluginProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading --

    def _read_stdout(self) -> None:
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(("stdout", line))
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue  # the daemon logs non-JSON lines as errors and goes on
            if not isinstance(event, dict):
                continue
            kind = event.get("event")
            if kind is None and self.declaration is None:
                self.declaration = event  # the SDK prints the manifest first; the daemon ignores it
            elif kind == "heartbeat":
                self.heartbeats += 1
                self._ready.set()
            elif kind == "log":
                self.logs.append(event.get("data") or {})
            elif kind == "session":
                self._queue(event.get("session_id")).put(event.get("data") or {})
            elif kind == "error":
                self.logs.append({"level": "ERROR", "message": json.dumps(event.get("data"))})

    def _read_stderr(self) -> None:
        for raw in iter(self.proc.stderr.readline, b""):
            self.lines.append(("stderr", raw.decode("utf-8", "replace").rstrip("\n")))

    def _queue(self, session_id: str | None) -> queue.Queue:
        with self._lock:
            return self._sessions.setdefault(str(session_id), queue.Queue())

    def output_text(self) -> str:
        return "\n".join(line for _, line in list(self.lines))

    # -- requests --

    def send(self, data: dict[str, Any], session_id: str | None = None, *, conversation_id: str | None = None,
             message_id: str | None = None, app_id: str | None = None) -> str:
        """Write one daemon → plugin request line; returns its session id."""
        session_id = session_id or str(uuid.uuid4())
        self._queue(session_id)
        self._write({"session_id": session_id, "conversation_id": conversation_id, "message_id": message_id,
                     "app_id": app_id, "endpoint_id": None, "context": None, "event": "request", "data": data})
        return session_id

    def respond(self, session_id: str, backwards_request_id: str, data: Any = None, error: str | None = None) -> None:
        """Answer a backwards invocation, as the daemon does (response + end, or error)."""
        events = ([("error", error, None)] if error is not None else [("response", "", data), ("end", "", None)])
        for kind, message, payload in events:
            self._write({"session_id": session_id, "event": "backwards_response",
                         "data": {"backwards_request_id": backwards_request_id, "event": kind,
                                  "message": message, "data": payload}})

    def _write(self, obj: dict[str, Any]) -> None:
        line = (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")
        with self._write_lock:
            self.proc.stdin.write(line)
            self.proc.stdin.flush()

    def collect(self, session_id: str, timeout: float = 600,
                on_invoke: Callable[[dict[str, Any]], Any] | None = None) -> SessionResult:
        """Session events for session_id until `end` (or TimeoutError after `timeout` seconds)."""
        result = SessionResult(session_id)
        blobs = _BlobAssembler()
        q = self._queue(session_id)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"session {session_id}: no end after {timeout} s; got {result.messages[-5:]}")
            try:
                item = q.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.proc.poll() is not None and q.empty():
                    raise RuntimeError(f"plugin exited ({self.proc.returncode}) during session {session_id}:\n"
                                       f"{self.output_text()[-3000:]}") from None
                continue
            result.messages.append(item)
            kind, data = item.get("type"), item.get("data")
            if kind == "stream":
                if isinstance(data, dict) and data.get("type") == "blob_chunk":
                    blobs.add(result, data)
                else:
                    result.stream.append(data)
            elif kind == "error":
                result.errors.append(data or {})
            elif kind == "invoke":
                self._answer_invoke(session_id, data or {}, on_invoke)
            elif kind == "end":
                result.ended = True
                break
        with self._lock:
            self._sessions.pop(session_id, None)
        return result

    def _answer_invoke(self, session_id: str, payload: dict[str, Any], handler) -> None:
        request_id = payload.get("backwards_request_id", "")
        if handler is None:
            self.respond(session_id, request_id, error=f"backwards invocation '{payload.get('type')}' "
                                                       "is not available in the stdio harness")
            return
        try:
            answer = handler(payload)
        except Exception as exc:  # noqa: BLE001 - becomes the plugin's error, like the daemon's
            self.respond(session_id, request_id, error=str(exc))
        else:
            self.respond(session_id, request_id, data=answer)

    def validate(self, provider: str, credentials: dict[str, Any], *, timeout: float = 120,
                 user_id: str = "e2e-user") -> SessionResult:
        sid = self.send({"user_id": user_id, "type": "tool", "action": "validate_tool_credentials",
                         "provider": provider, "credentials": credentials})
        return self.collect(sid, timeout)

    def invoke(self, provider: str, tool: str, credentials: dict[str, Any], parameters: dict[str, Any], *,
               timeout: float = 600, user_id: str = "e2e-user", conversation_id: str | None = None,
               message_id: str | None = None, app_id: str | None = None,
               on_invoke: Callable[[dict[str, Any]], Any] | None = None,
               storage: DaemonStorage | None = None) -> SessionResult:
        if storage is not None and on_invoke is None:
            on_invoke = storage.handler(self.declaration)
        sid = self.send({"user_id": user_id, "type": "tool", "action": "invoke_tool", "provider": provider,
                         "tool": tool, "credentials": credentials, "credential_type": "api-key",
                         "tool_parameters": parameters},
                        conversation_id=conversation_id, message_id=message_id, app_id=app_id)
        return self.collect(sid, timeout, on_invoke)
