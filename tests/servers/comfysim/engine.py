"""ServerState: queue, worker thread, history, cache and websocket message routing.

Mirrors ComfyUI 0.8.0's PromptQueue, main.prompt_worker and PromptExecutor.execute_async:
one worker thread runs prompts serially; messages are queued thread-safely to the event loop
(send_sync) and routed there (app.Publisher) to one socket (the prompt's client_id) or to all
sockets (sid None). Which events are sent, to whom and in which order follows the captures.

This object is the `server_state` handed to plugins (see comfyui_server.py's docstring).
"""

from __future__ import annotations

import copy
import heapq
import json
import struct
import sys
import threading
import time
import traceback as tb_module
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from . import graph, nodes
from .files import FileStore, SaveOutsideOutput, file_sha256

BINARY = "__binary__"           # send_sync event for a binary frame; data = the whole frame
MAX_HISTORY = 10000
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")
SAVE_OUTSIDE_TRACEBACK = [
    '  File "/opt/ComfyUI/execution.py", line 518, in execute\n'
    '    output_data, output_ui, has_subgraph, has_pending_tasks = await get_output_data(...)\n',
    '  File "/opt/ComfyUI/nodes.py", line 1601, in save_images\n'
    '    full_output_folder, filename, counter, subfolder, filename_prefix = folder_paths.get_save_image_path('
    'filename_prefix, self.output_dir, images[0].shape[1], images[0].shape[0])\n',
    '  File "/opt/ComfyUI/folder_paths.py", line 451, in get_save_image_path\n    raise Exception(err)\n',
]

DEFAULT_CONFIG: dict[str, Any] = {
    "ws_silent": False,          # accept websockets but never send a frame
    "ws_drop_after": None,       # abort each websocket after it was sent N frames
    "history_status": None,      # status code for GET /history/{id}
    "history_html": False,       # GET /history/{id} answers 200 text/html
    "non_json": [],              # route keys ("GET /queue") answering 200 text/html
    "route_status": {},          # {route key: status}
    "route_delay": {},           # {route key: seconds before answering}
    "view_status": None,         # status code for GET /view
    "view_truncate": False,      # True (half) or a byte count: Content-Length says more, then close
    "node_delay": {},            # {class_type: seconds} extra run time (not interruptible)
    "hang_class": None,          # class_type (or list) that never finishes until POST /_test/release
    "html_everywhere": False,    # every route answers 200 text/html (a wrong URL)
    "image_bytes": None,         # byte size of PNGs written by SaveImage/PreviewImage
    "paused_queue": False,       # the worker does not start pending prompts
    "blur_seconds": 0.2,         # run time of one ImageBlur
    "ws_image_seconds": 0.0,     # pause after each SaveImageWebsocket image
    "clock_scale": 1.0,          # simulated seconds per real second for every node's run time (ctx.sleep:
                                 # node_delay, blur_seconds, ws_image_seconds): 30 runs 15 minutes in 30 s
    "max_upload_size": 104857600,
    "bizyair_installed": True,   # BizyAir classes exist (object_info and validation)
    # A hostile or broken server, per route key ("GET /history/{id}"): see app.hostile_response.
    # {"trickle": bytes/s} the real body, sent slowly; {"trickle_headers": bytes/s} the status line and
    # headers too; {"patch": {...}} merged into the real JSON (for /history/{id}: into our entry);
    # {"body": <json>, "status": 200} this JSON instead; {"raw": text, "content_type": ..., "status": ...};
    # {"gzip_bomb": n} gzip of n spaces; {"pad": n} real JSON + n spaces; {"deep": n} "[" * n;
    # {"headers": {...}} the real answer with these headers replaced.
    "hostile": {},
    "ws_extra": [],              # JSON frames sent to each new websocket right after its status message
    "ws_redirect": None,         # /ws answers 302 to this Location instead of upgrading
    "ws_trickle": None,          # seconds between bytes of each websocket frame (a slow-loris frame)
    "ws_binary_delay": 0.0,      # the publisher waits this long before each binary frame: the run (and its
                                 # history) can end while its SaveImageWebsocket images are still on the way
    "text_output_bytes": None,   # PreviewAny's text repeated (lines) to this many characters
    "output_name_chars": None,   # saved files listed under a name padded to this many characters (not on disk)
}


def now_ms() -> int:
    return int(time.time() * 1000)


class Run:
    """One prompt being executed."""

    def __init__(self, state: ServerState, item: tuple, epoch: int):
        self.state = state
        self.item = item
        self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs = item[:5]
        self.sensitive = item[5] if len(item) > 5 else {}
        self.client_id = self.extra_data.get("client_id")
        self.epoch = epoch
        self.messages: list = []
        self.executed: list[str] = []
        self.ui_outputs: dict[str, dict] = {}
        self.results: dict[str, tuple] = {}
        self.progress: dict[str, dict] = {}
        self.sigs: dict[str, str] = {}

    @property
    def abandoned(self) -> bool:
        return self.epoch != self.state.epoch

    def send(self, event: str, data: Any, sid: str | None) -> None:
        self.state.send_sync(event, data, sid, self.epoch)

    def add_message(self, event: str, data: dict, broadcast: bool) -> None:
        data = {**data, "timestamp": now_ms()}
        self.messages.append([event, data])
        if self.client_id is not None or broadcast:
            self.send(event, data, self.client_id)

    # progress_state (comfy_execution/progress.py)
    def _entry(self, node_id: str, value, maximum, state: str) -> dict:
        return {"value": value, "max": maximum, "state": state, "node_id": node_id, "prompt_id": self.prompt_id,
                "display_node_id": node_id, "parent_node_id": None, "real_node_id": node_id}

    def _send_progress(self) -> None:
        self.send("progress_state", {"prompt_id": self.prompt_id, "nodes": copy.deepcopy(self.progress)},
                  self.client_id)

    def ps_start(self, node_id: str) -> None:
        self.progress[node_id] = self._entry(node_id, 0.0, 1.0, "running")
        self._send_progress()

    def ps_update(self, node_id: str, value, maximum) -> None:
        self.progress[node_id] = self._entry(node_id, value, maximum, "running")
        self._send_progress()

    def ps_finish(self, node_id: str) -> None:
        entry = self.progress.get(node_id) or self._entry(node_id, 0, 1, "pending")
        entry.update(state="finished", value=entry["max"])
        self.progress[node_id] = entry
        self._send_progress()


class NodeContext:
    """What an executor gets besides its inputs. See comfyui_server.py for the contract."""

    def __init__(self, state: ServerState, run: Run, node_id: str, info: dict):
        self.state = state
        self.run = run
        self.node_id = node_id
        self.info = info
        self.class_type = run.prompt[node_id]["class_type"]

    prompt_id = property(lambda self: self.run.prompt_id)
    prompt = property(lambda self: self.run.prompt)
    extra_data = property(lambda self: self.run.extra_data)
    sensitive = property(lambda self: self.run.sensitive)
    client_id = property(lambda self: self.run.client_id)
    config = property(lambda self: self.state.config)
    signature = property(lambda self: self.run.sigs.get(self.node_id, "0" * 64))
    return_types = property(lambda self: graph.Registry.return_types(self.info))

    @property
    def files(self) -> FileStore:
        self.check_abandoned()
        return self.state.files

    def input_type(self, name: str) -> Any:
        return graph.Registry.input_info(self.info, name)[0]

    def fail(self, exception_type: str, exception_message: str, traceback: list[str] | None = None,
             current_inputs: dict | None = None):
        raise nodes.NodeError(exception_type, exception_message, traceback, current_inputs)

    def check_abandoned(self) -> None:
        if self.run.abandoned:
            raise nodes.Abandoned()

    def check_interrupted(self) -> None:
        self.check_abandoned()
        if self.state.interrupt_flag.is_set():
            raise nodes.Interrupted()

    def sleep(self, seconds: float, interruptible: bool = False) -> None:
        """Spend `seconds` of simulated time (real time divided by the config's clock_scale)."""
        scale = float(self.config.get("clock_scale") or 1.0)
        deadline = time.monotonic() + max(0.0, seconds) / max(scale, 1e-3)
        while True:
            if interruptible:
                self.check_interrupted()
            else:
                self.check_abandoned()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.02))

    def progress(self, value, maximum, preview_png: bytes | None = None) -> None:
        """A ProgressBar update: progress_state, progress and the binary preview frame."""
        self.check_interrupted()
        run, nid = self.run, self.node_id
        run.ps_update(nid, value, maximum)
        modern = self.state.supports_preview_metadata(run.client_id)
        if preview_png is not None and modern:
            meta = json.dumps({"node_id": nid, "prompt_id": run.prompt_id, "display_node_id": nid,
                               "parent_node_id": None, "real_node_id": nid, "image_type": "image/png"}).encode()
            run.send(BINARY, struct.pack(">II", 4, len(meta)) + meta + preview_png, run.client_id)
        run.send("progress", {"value": value, "max": maximum, "prompt_id": run.prompt_id, "node": nid}, run.client_id)
        if preview_png is not None and not modern:
            run.send(BINARY, struct.pack(">II", 1, 2) + preview_png, run.client_id)

    def send(self, event: str, data: Any) -> None:
        """A custom ws event, routed like ComfyUI's send_sync(event, data, client_id)."""
        self.run.send(event, data, self.run.client_id)

    def passthrough(self, inputs: dict | None = None) -> tuple:
        return nodes.passthrough(self, inputs if inputs is not None else {})

    def image(self, width: int, height: int, color: int = 0, batch: int = 1) -> nodes.SimImage:
        return nodes.SimImage(width, height, (nodes.rgb_of(color),) * batch)

    def save_images(self, images: nodes.SimImage, filename_prefix: str = "ComfyUI", kind: str = "output") -> list[dict]:
        return nodes.save_images(self, images, filename_prefix, kind)


class ServerState:
    def __init__(self, registry: graph.Registry, files: FileStore):
        self.registry = registry
        self.files = files
        self.config_defaults = copy.deepcopy(DEFAULT_CONFIG)
        self.config: dict[str, Any] = copy.deepcopy(DEFAULT_CONFIG)
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.queue: list = []
        self.running: dict[str, tuple] = {}
        self.history: dict[str, dict] = {}
        self.cache: dict[str, tuple] = {}
        self.number = 0
        self.seq = 0
        self.epoch = 0
        self.release_gen = 0
        self.interrupt_flag = threading.Event()
        self.current_client_id: str | None = None
        self.last_node_id: str | None = None
        self.executors: dict[str, Callable] = dict(nodes.BUILTIN)
        self.not_cacheable: set[str] = set(nodes.NOT_CACHEABLE)
        self.reset_hooks: list[Callable[[], None]] = []
        self.sockets: dict[str, Any] = {}          # sid -> connection (ComfyUI's self.sockets)
        self.sockets_metadata: dict[str, dict] = {}
        self.connections: set = set()              # every open ws, registered or not
        self.loop = None
        self.outbox = None
        self.stopping = False
        self._new_stats()
        self.worker = threading.Thread(target=self._worker, name="prompt_worker", daemon=True)

    # ---- plugin API ---------------------------------------------------------------------

    def register_executor(self, class_type: str, fn: Callable, cacheable: bool = True) -> None:
        """Run `fn(inputs, ctx)` for nodes of `class_type` (replaces the simulator or pass-through)."""
        self.executors[class_type] = fn
        (self.not_cacheable.discard if cacheable else self.not_cacheable.add)(class_type)

    def add_config_defaults(self, defaults: dict) -> None:
        """Declare extra /_test/config keys (with their defaults) for a plugin."""
        with self.lock:
            for key, value in defaults.items():
                self.config_defaults[key] = copy.deepcopy(value)
                self.config.setdefault(key, copy.deepcopy(value))

    def add_reset_hook(self, fn: Callable[[], None]) -> None:
        """Called on POST /_test/reset (after the state was cleared)."""
        self.reset_hooks.append(fn)

    # ---- messaging ----------------------------------------------------------------------

    def send_sync(self, event: str, data: Any, sid: str | None = None, epoch: int | None = None) -> None:
        if self.loop is None or self.outbox is None:
            return
        message = (event, data, sid, self.epoch if epoch is None else epoch)
        try:
            self.loop.call_soon_threadsafe(self.outbox.put_nowait, message)
        except RuntimeError:  # loop closed during shutdown
            pass

    def queue_info(self) -> dict:
        with self.lock:
            return {"exec_info": {"queue_remaining": len(self.queue) + len(self.running)}}

    def queue_updated(self, epoch: int | None = None) -> None:
        self.send_sync("status", {"status": self.queue_info()}, None, epoch)

    def supports_preview_metadata(self, sid: str | None) -> bool:
        if sid is None:
            return False
        flags = self.sockets_metadata.get(sid, {}).get("feature_flags", {})
        return bool(flags.get("supports_preview_metadata"))

    # ---- POST /prompt ------------------------------------------------------------------

    def submit(self, json_data: Any) -> tuple[int, dict]:
        """server.post_prompt after request.json(); exceptions become plain-text 500s."""
        with self.lock:
            if "number" in json_data:
                number = float(json_data["number"])
            else:
                number = self.number
                if "front" in json_data and json_data["front"]:
                    number = -number
                self.number += 1
        if "prompt" not in json_data:
            self.stats_data["prompts_rejected"] += 1
            error = {"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided",
                     "extra_info": {}}
            return 400, {"error": error, "node_errors": {}}
        prompt = json_data["prompt"]
        prompt_id = str(json_data.get("prompt_id", uuid.uuid4()))
        partial = json_data.get("partial_execution_targets") if "partial_execution_targets" in json_data else None
        validator = graph.Validator(self.registry, self.files.exists_annotated)
        ok, error, good_outputs, node_errors = validator.validate_prompt(prompt, partial)
        extra_data = json_data["extra_data"] if "extra_data" in json_data else {}
        if "client_id" in json_data:
            extra_data["client_id"] = json_data["client_id"]
        if not ok:
            self.stats_data["prompts_rejected"] += 1
            return 400, {"error": error, "node_errors": node_errors}
        sensitive = {k: extra_data.pop(k) for k in SENSITIVE_EXTRA_DATA_KEYS if k in extra_data}
        extra_data["create_time"] = now_ms()
        self.put((number, prompt_id, prompt, extra_data, good_outputs, sensitive))
        self.stats_data["prompts_accepted"] += 1
        return 200, {"prompt_id": prompt_id, "number": number, "node_errors": node_errors}

    def put(self, item: tuple) -> None:
        with self.cond:
            self.seq += 1
            heapq.heappush(self.queue, (item[0], self.seq, item))
            self.cond.notify_all()
        self.queue_updated()

    # ---- queue / history / interrupt ------------------------------------------------------

    def queue_snapshot(self) -> dict:
        with self.lock:
            running = [list(copy.deepcopy(item[:5])) for item in self.running.values()]
            pending = [list(copy.deepcopy(entry[2][:5])) for entry in sorted(self.queue, key=lambda e: (e[0], e[1]))]
        return {"queue_running": running, "queue_pending": pending}

    def queue_post(self, json_data: Any) -> None:
        record: dict[str, Any] = {}
        if "clear" in json_data and json_data["clear"]:
            with self.cond:
                record["cleared"] = [entry[2][1] for entry in self.queue]
                self.queue.clear()
            self.queue_updated()
        if "delete" in json_data:
            record["delete"] = list(json_data["delete"])
            record["removed"] = []
            for prompt_id in json_data["delete"]:
                with self.cond:
                    index = next((i for i, e in enumerate(self.queue) if e[2][1] == prompt_id), None)
                    if index is None:
                        continue
                    self.queue.pop(index)
                    heapq.heapify(self.queue)
                    record["removed"].append(prompt_id)
                self.queue_updated()
        self.stats_data["deletes"].append(record)

    def interrupt(self, prompt_id: str | None) -> None:
        with self.lock:
            running = list(self.running)
            applied = not prompt_id or prompt_id in self.running
            if applied:
                self.interrupt_flag.set()
        self.stats_data["interrupts"].append({"prompt_id": prompt_id, "running": running, "applied": applied})

    def history_get(self, prompt_id: str | None = None, max_items: int | None = None, offset: int = -1) -> dict:
        with self.lock:
            if prompt_id is not None:
                return {prompt_id: copy.deepcopy(self.history[prompt_id])} if prompt_id in self.history else {}
            out = {}
            if offset < 0 and max_items is not None:
                offset = len(self.history) - max_items
            for index, key in enumerate(self.history):
                if index >= offset:
                    out[key] = self.history[key]
                    if max_items is not None and len(out) >= max_items:
                        break
            return copy.deepcopy(out)

    def history_post(self, json_data: Any) -> None:
        with self.lock:
            if "clear" in json_data and json_data["clear"]:
                self.history.clear()
            if "delete" in json_data:
                for prompt_id in json_data["delete"]:
                    self.history.pop(prompt_id, None)

    # ---- test control --------------------------------------------------------------------

    def fill_history(self, n: int) -> int:
        """Append n finished entries shaped like a tiny EmptyImage → SaveImage run (no files are
        written), oldest dropped past MAX_HISTORY like ComfyUI. For benchmarks of clients whose
        cost might grow with the history. Returns the history size."""
        with self.lock:
            for _ in range(max(0, n)):
                prompt_id = str(uuid.uuid4())
                number = self.number
                self.number += 1
                stamp = now_ms()
                prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1,
                                                                        "color": number % 0xFFFFFF}},
                          "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0],
                                                                      "filename_prefix": "filled"}}}
                image = {"filename": f"filled_{number:05}_.png", "subfolder": "", "type": "output"}
                if len(self.history) >= MAX_HISTORY:
                    self.history.pop(next(iter(self.history)))
                self.history[prompt_id] = {
                    "prompt": [number, prompt_id, prompt, {"create_time": stamp}, ["2"]],
                    "outputs": {"2": {"images": [image]}},
                    "status": {"status_str": "success", "completed": True, "messages": [
                        ["execution_start", {"prompt_id": prompt_id, "timestamp": stamp}],
                        ["execution_cached", {"nodes": [], "prompt_id": prompt_id, "timestamp": stamp}],
                        ["execution_success", {"prompt_id": prompt_id, "timestamp": stamp}]]},
                    "meta": {"2": {"node_id": "2", "display_node": "2", "parent_node": None, "real_node_id": "2"}}}
            return len(self.history)

    def update_config(self, patch: dict) -> dict:
        unknown = sorted(set(patch) - set(self.config_defaults))
        if unknown:
            raise KeyError(f"unknown config keys {unknown}; known: {sorted(self.config_defaults)}")
        with self.cond:
            self.config.update(copy.deepcopy(patch))
            self.registry.set_enabled({"bizyair"} if self.config.get("bizyair_installed") else set())
            self.cond.notify_all()
            return copy.deepcopy(self.config)

    def release(self) -> None:
        with self.lock:
            self.release_gen += 1

    def restart(self) -> None:
        """Forget queue, history, cache and the running prompt, like a process restart."""
        with self.cond:
            self.epoch += 1
            self.queue.clear()
            self.running.clear()
            self.history.clear()
            self.cache.clear()
            self.number = 0
            self.release_gen += 1
            self.interrupt_flag.clear()
            self.current_client_id = None
            self.last_node_id = None
            self.cond.notify_all()
        self.files.wipe("temp")

    def reset(self) -> None:
        self.restart()
        with self.lock:
            self.config = copy.deepcopy(self.config_defaults)
            self.registry.set_enabled({"bizyair"} if self.config.get("bizyair_installed") else set())
            self._new_stats()
        self.files.wipe("input", "output", "temp")
        for hook in self.reset_hooks:
            hook()

    def _new_stats(self) -> None:
        self.stats_data = {"requests": Counter(), "requests_raw": Counter(), "ws_connects": 0, "interrupts": [],
                           "deletes": [], "prompts_accepted": 0, "prompts_rejected": 0, "executed_nodes": Counter()}

    def count_request(self, key: str, raw_key: str) -> None:
        self.stats_data["requests"][key] += 1
        self.stats_data["requests_raw"][raw_key] += 1

    def stats(self) -> dict:
        with self.lock:
            data = copy.deepcopy(self.stats_data)
            data["requests"] = dict(data["requests"])
            data["requests_raw"] = dict(data["requests_raw"])
            data["executed_nodes"] = dict(data["executed_nodes"])
            data["open_ws"] = len(self.connections)
            data["open_ws_by_client"] = dict(Counter(conn.sid for conn in self.connections))
            data["registered_ws"] = sorted(self.sockets)
            data["queue"] = {"running": list(self.running),
                             "pending": [e[2][1] for e in sorted(self.queue, key=lambda e: (e[0], e[1]))]}
            data["history"] = list(self.history)
            data["epoch"] = self.epoch
            return data

    # ---- worker ----------------------------------------------------------------------------

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.epoch += 1
            self.cond.notify_all()

    def _worker(self) -> None:
        while True:
            with self.cond:
                while not self.stopping and (not self.queue or self.config.get("paused_queue")):
                    self.cond.wait(0.2)
                if self.stopping:
                    return
                item = heapq.heappop(self.queue)[2]
                self.running[item[1]] = item
                epoch = self.epoch
            self.queue_updated(epoch)
            try:
                self._execute(Run(self, item, epoch))
            except nodes.Abandoned:
                pass
            except Exception:  # noqa: BLE001 - a bug in the simulator must not kill the worker
                tb_module.print_exc(file=sys.stderr)
                with self.lock:
                    if self.epoch == epoch:
                        self.running.pop(item[1], None)

    def _execute(self, run: Run) -> None:
        with self.lock:
            self.current_client_id = run.client_id
            self.interrupt_flag.clear()
        run.add_message("execution_start", {"prompt_id": run.prompt_id}, broadcast=False)
        nonce = uuid.uuid4().hex
        run.sigs = graph.signatures(run.prompt, lambda nid, node: self._is_changed(node, nonce))
        with self.lock:
            used = set(run.sigs.values())
            self.cache = {k: v for k, v in self.cache.items() if k in used}
            cached_nodes = [nid for nid in run.prompt if run.sigs[nid] in self.cache]
        run.add_message("execution_cached", {"nodes": cached_nodes, "prompt_id": run.prompt_id}, broadcast=False)
        order = graph.ExecutionList(run.prompt, self.registry, lambda nid: run.sigs.get(nid) in self.cache)
        for node_id in run.outputs:
            order.add_node(node_id)
        success = True
        while not order.is_empty():
            node_id = order.stage()
            failure = self._execute_node(run, node_id)
            if failure is not None:
                self._handle_failure(run, failure)
                success = False
                break
            order.complete()
        else:
            run.add_message("execution_success", {"prompt_id": run.prompt_id}, broadcast=False)
        self._task_done(run, success)

    def _is_changed(self, node: dict, nonce: str) -> Any:
        class_type = node.get("class_type")
        if class_type in self.not_cacheable:
            return nonce
        if class_type == "LoadImage" and isinstance(node.get("inputs", {}).get("image"), str):
            return file_sha256(self.files.annotated_path(node["inputs"]["image"]))
        return None

    def _gather_inputs(self, run: Run, node_id: str, info: dict) -> dict:
        values = {}
        for name, value in run.prompt[node_id]["inputs"].items():
            if graph.is_link(value):
                source, index = value[0], int(value[1])
                outputs = run.results.get(source)
                if outputs is None:
                    outputs = self.cache[run.sigs[source]][0]
                values[name] = outputs[index]
            else:
                values[name] = value
        hidden = info.get("input", {}).get("hidden") or {}
        for name, spec in hidden.items():
            kind = spec[0] if isinstance(spec, list) and spec else spec
            if not isinstance(kind, str):
                continue  # e.g. {"default": …}: ComfyUI ignores hidden specs it does not know
            value = {"PROMPT": run.prompt, "DYNPROMPT": run.prompt, "UNIQUE_ID": node_id,
                     "EXTRA_PNGINFO": run.extra_data.get("extra_pnginfo"),
                     "AUTH_TOKEN_COMFY_ORG": run.sensitive.get("auth_token_comfy_org"),
                     "API_KEY_COMFY_ORG": run.sensitive.get("api_key_comfy_org")}.get(kind, KeyError)
            if value is not KeyError:
                values[name] = value
        return values

    def _execute_node(self, run: Run, node_id: str) -> dict | None:
        if run.abandoned:
            raise nodes.Abandoned()
        sig = run.sigs[node_id]
        cached = self.cache.get(sig)
        if cached is not None:
            outputs, ui = cached
            if run.client_id is not None:
                run.send("executed", {"node": node_id, "display_node": node_id, "output": ui,
                                      "prompt_id": run.prompt_id}, run.client_id)
            if ui is not None:
                run.ui_outputs[node_id] = {"output": ui, "meta": self._meta(node_id)}
            run.ps_finish(node_id)
            run.results[node_id] = outputs
            return None

        class_type = run.prompt[node_id]["class_type"]
        info = self.registry.get(class_type) or {}
        run.ps_start(node_id)
        inputs: dict = {}
        ctx = NodeContext(self, run, node_id, info)
        try:
            inputs = self._gather_inputs(run, node_id, info)
            if run.client_id is not None:
                self.last_node_id = node_id
                run.send("executing", {"node": node_id, "display_node": node_id, "prompt_id": run.prompt_id},
                         run.client_id)
            ctx.check_interrupted()
            self._configured_delays(ctx, class_type)
            executor = self.executors.get(class_type)
            result = executor(inputs, ctx) if executor else None
            outputs, ui = self._normalize(result, ctx, inputs)
        except nodes.Abandoned:
            raise
        except nodes.Interrupted:
            return {"node_id": node_id, "interrupted": True}
        except nodes.NodeError as err:
            return self._error_details(node_id, inputs, err.exception_type, err.exception_message,
                                       err.traceback or [], err.current_inputs)
        except SaveOutsideOutput as err:
            return self._error_details(node_id, inputs, "Exception", str(err), SAVE_OUTSIDE_TRACEBACK)
        except Exception as err:  # noqa: BLE001 - ComfyUI reports any node exception
            return self._error_details(node_id, inputs, graph.full_type_name(err), str(err),
                                       tb_module.format_tb(err.__traceback__))
        if ui:
            run.ui_outputs[node_id] = {"meta": self._meta(node_id), "output": ui}
            if run.client_id is not None:
                run.send("executed", {"node": node_id, "display_node": node_id, "output": ui,
                                      "prompt_id": run.prompt_id}, run.client_id)
        with self.lock:
            if not run.abandoned:
                self.cache[sig] = (outputs, ui or None)
                self.stats_data["executed_nodes"][class_type] += 1
        run.results[node_id] = outputs
        run.ps_finish(node_id)
        run.executed.append(node_id)
        return None

    def _configured_delays(self, ctx: NodeContext, class_type: str) -> None:
        hang = self.config.get("hang_class")
        if hang and (class_type == hang or (isinstance(hang, list) and class_type in hang)):
            generation = self.release_gen
            while self.release_gen == generation:
                ctx.check_abandoned()
                time.sleep(0.02)
        delay = (self.config.get("node_delay") or {}).get(class_type)
        if delay:
            ctx.sleep(float(delay))

    @staticmethod
    def _normalize(result: Any, ctx: NodeContext, inputs: dict) -> tuple[tuple, dict]:
        ui: dict = {}
        if isinstance(result, dict):
            ui = result.get("ui") or {}
            result = result.get("result")
        defaults = nodes.passthrough(ctx, inputs)
        if result is None:
            return defaults, ui
        outputs = tuple(result)
        if len(outputs) < len(defaults):
            outputs += defaults[len(outputs):]
        return outputs, ui

    @staticmethod
    def _meta(node_id: str) -> dict:
        return {"node_id": node_id, "display_node": node_id, "parent_node": None, "real_node_id": node_id}

    @staticmethod
    def _error_details(node_id, inputs, exception_type, message, traceback, current_inputs=None) -> dict:
        formatted = current_inputs if current_inputs is not None else \
            {name: [nodes.format_value(value)] for name, value in inputs.items()}
        return {"node_id": node_id, "exception_message": f"{message}\n", "exception_type": exception_type,
                "traceback": list(traceback), "current_inputs": formatted}

    def _handle_failure(self, run: Run, failure: dict) -> None:
        node_id = failure["node_id"]
        base = {"prompt_id": run.prompt_id, "node_id": node_id, "node_type": run.prompt[node_id]["class_type"],
                "executed": list(run.executed)}
        if failure.get("interrupted"):
            run.add_message("execution_interrupted", base, broadcast=True)
            return
        details = {k: failure[k] for k in ("exception_message", "exception_type", "traceback", "current_inputs")}
        run.add_message("execution_error", {**base, **details, "current_outputs": list(run.prompt)}, broadcast=False)

    def _task_done(self, run: Run, success: bool) -> None:
        outputs = {nid: info["output"] for nid, info in run.ui_outputs.items()}
        meta = {nid: info["meta"] for nid, info in run.ui_outputs.items()}
        with self.lock:
            if run.abandoned:
                raise nodes.Abandoned()
            self.last_node_id = None
            self.running.pop(run.prompt_id, None)
            if len(self.history) > MAX_HISTORY:
                self.history.pop(next(iter(self.history)))
            self.history[run.prompt_id] = {
                "prompt": list(run.item[:5]), "outputs": outputs,
                "status": {"status_str": "success" if success else "error", "completed": success,
                           "messages": run.messages},
                "meta": meta}
        self.queue_updated(run.epoch)
        if run.client_id is not None:
            run.send("executing", {"node": None, "prompt_id": run.prompt_id}, run.client_id)
