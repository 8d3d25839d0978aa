"""The straight path: request → plan → server → queue → follow → outputs → RunResult.

Dify-free: the plugin's tools, the command line and the benchmarks all call `Engine.run`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from . import bizyair, routing
from .client import ComfyClient
from .endpoint import ServerConfig
from .errors import BridgeError, ConnectionFailed, ExecutionFailed, RunLost, RunTimeout
from .media import classify, extension
from .models import NodeFailure, OutputFile, OutputRef, Plan, RunRequest, RunResult
from .nodeinfo import NodeInfo
from .outputs import collect_refs, download, make_file
from .plan import build_plan, preflight
from .rejections import describe_rejection
from .run import Outcome, Progress, RunFollower, close_quietly, open_socket
from .scrub import one_line

log = logging.getLogger(__name__)

MAX_OUTPUT_BYTES = 512 * 1024 * 1024   # per file; a run's outputs live in memory
CANCEL_RESERVE = 4.0                    # seconds kept back from the deadline to stop our prompt


class Engine:
    """Runs workflows on one or several ComfyUI servers (one run = one server)."""

    def __init__(self, servers: list[ServerConfig], *, bizyair_key: str = "",
                 max_output_bytes: int = MAX_OUTPUT_BYTES,
                 client_factory: Callable[[ServerConfig], ComfyClient] = ComfyClient):
        if not servers:
            raise ValueError("at least one server")
        self.servers = servers
        self.bizyair_key = bizyair_key.strip()
        self.max_output_bytes = max_output_bytes
        self.client_factory = client_factory

    def secrets(self) -> list[str]:
        out = [s for server in self.servers for s in server.secrets()]
        return out + ([self.bizyair_key] if self.bizyair_key else [])

    # ---- entry point ------------------------------------------------------------------------------

    def run(self, request: RunRequest, on_progress: Progress | None = None) -> RunResult:
        """Run one request. Raises BridgeError for failures before the prompt was accepted
        (bad input, unreachable server, validation 400); failures after that come back in
        RunResult (status + error) together with every output that did finish."""
        started = time.monotonic()
        deadline = started + max(1.0, request.timeout)
        notify = on_progress or (lambda kind, data: None)
        prompt_id = str(uuid.uuid4())
        last_error: BridgeError | None = None
        for server in self._candidates(deadline):
            client = self.client_factory(server)
            try:
                return self._run_on(client, request, prompt_id, started, deadline, notify)
            except BridgeError as exc:
                if not routing.is_failover_error(exc) or len(self.servers) == 1:
                    raise
                log.warning("server %s unusable, trying the next one: %s", server.label, exc.code)
                last_error = exc
            finally:
                client.close()
        raise last_error or ConnectionFailed("No ComfyUI server is reachable.",
                                             message_zh="没有可用的 ComfyUI 服务器。")

    def _candidates(self, deadline: float) -> list[ServerConfig]:
        if len(self.servers) == 1:
            return list(self.servers)
        ordered = routing.choose_server(self.servers, self.client_factory,
                                        limit=min(2.0, max(0.1, deadline - time.monotonic())))
        return ordered or list(self.servers)

    # ---- one server -------------------------------------------------------------------------------

    def _run_on(self, client: ComfyClient, request: RunRequest, prompt_id: str, started: float,
                deadline: float, notify: Progress) -> RunResult:
        timings: dict[str, float] = {}
        nodeinfo = node_info(client)
        if request.images:
            preflight(request.workflow, request, nodeinfo)  # fail on bad input before uploading anything
        uploaded = self._upload_images(client, request, deadline)
        plan = build_plan(request.workflow, request, nodeinfo, uploaded)
        extra_data: dict[str, Any] = {}
        if self.bizyair_key:
            bizyair.apply_server_mode_key(plan.graph, extra_data, self.bizyair_key, prompt_id)
        client_id = uuid.uuid4().hex
        ws = None
        try:
            try:
                ws = open_socket(client, client_id, min(5.0, max(0.1, deadline - time.monotonic())))
            except BridgeError as exc:
                if exc.code not in ("ws_failed",):
                    raise
                log.info("websocket unavailable on %s, following by polling", client.server.label)
            timings["ws_connected"] = time.monotonic() - started
            accepted = client.queue_prompt(plan.graph, prompt_id, client_id, extra_data or None,
                                           limit=max(0.1, deadline - time.monotonic()))
            timings["queued"] = time.monotonic() - started
            plan.warnings.extend(_skipped_outputs(accepted, plan.graph))
            notify("accepted", {"prompt_id": prompt_id})
            # Keep time back to stop our prompt and fetch what finished, inside the user's timeout.
            reserve = min(CANCEL_RESERVE, 0.25 * request.timeout)
            follower = RunFollower(client, prompt_id, client_id, deadline - reserve, ws,
                                   _titled(notify, plan.graph), websocket_nodes=_websocket_nodes(plan.graph))
            ws = None  # the follower owns and closes it
            outcome = follower.follow()
        finally:
            close_quietly(ws)
        timings["finished"] = time.monotonic() - started
        result = self._result(client, plan, prompt_id, outcome, deadline)
        timings["downloaded"] = time.monotonic() - started
        if self.bizyair_key:
            forget(client, prompt_id)
        result.timings = {k: round(v, 4) for k, v in timings.items()}
        return result

    def _upload_images(self, client: ComfyClient, request: RunRequest, deadline: float) -> list[str]:
        names = []
        for filename, data in request.images:
            ext = extension(filename) or "png"
            mime, _ = classify(filename)
            # Our own unique name: concurrent users must never overwrite each other's inputs.
            unique = f"dify_{uuid.uuid4().hex}.{ext}"
            names.append(client.upload_image(unique, data, mime, limit=max(0.1, deadline - time.monotonic())))
        return names

    # ---- after the run ----------------------------------------------------------------------------

    def _result(self, client: ComfyClient, plan: Plan, prompt_id: str, outcome: Outcome,
                deadline: float) -> RunResult:
        result = RunResult(prompt_id=prompt_id, server=client.server.label, status=outcome.status,
                           cached_nodes=outcome.cached_nodes)
        if outcome.status == "timeout":
            stopped = cancel(client, prompt_id, deadline)
            if not stopped:
                cancel_later(self.client_factory(client.server), prompt_id)
            # Whatever finished before the deadline is still worth returning.
            try:
                outcome.history = client.history(prompt_id, limit=max(0.1, min(2.0, deadline - time.monotonic())))
            except BridgeError:
                outcome.history = None
            result.error = _timeout_error(plan, stopped, outcome)
        elif outcome.status == "lost":
            result.error = RunLost(
                f"ComfyUI at {client.server.label} lost the run: it is neither queued nor in the history "
                "(the server probably restarted). Run it again.",
                message_zh=f"{client.server.label} 上的 ComfyUI 丢失了这次运行（服务器可能已重启），请重新运行。")
        history = outcome.history or {}
        # /history unreadable (500, not JSON) but the socket saw the outputs: use those.
        listed = history.get("outputs") or ({} if outcome.history is not None else outcome.ws_outputs)
        refs, result.texts = collect_refs(listed)
        files, failed = download(client, refs, prompt_id, deadline, self.max_output_bytes)
        files += _websocket_files(outcome, prompt_id)
        files, placeholder_nodes = _drop_placeholders(files)
        result.outputs = files
        result.missing = [ref for ref, _ in failed]
        if failed:
            plan.warnings.extend(f"output {ref.filename} of node {ref.node_id} was not delivered: {why}"
                                 for ref, why in failed)
        if outcome.status in ("error", "interrupted"):
            result.failure, result.error = self._failure(outcome, plan, files)
        elif placeholder_nodes and result.error is None:
            result.status = "error"
            result.failure, result.error = _placeholder_failure(plan.graph, placeholder_nodes[0])
        if outcome.status == "success" and not files and not result.texts and not failed:
            plan.warnings.append("the workflow finished but produced no file (add a SaveImage/PreviewImage node)")
        result.warnings = plan.warnings
        result.plan = plan
        return result

    def _failure(self, outcome: Outcome, plan: Plan, files: list[OutputFile]) -> tuple[NodeFailure, BridgeError]:
        payload = outcome.error or {}
        node = str(payload.get("node_id") or "?")
        node_type = str(payload.get("node_type") or _class_of(plan.graph, node))
        exc_type = str(payload.get("exception_type") or "")
        secrets = self.secrets()
        text = one_line(payload.get("exception_message") or "", 400, secrets)
        failure = NodeFailure(node, node_type, exc_type, text)
        finished = (f" {len(files)} output file(s) that finished before the failure are still returned."
                    if files else "")
        detail = {"node_id": node, "class_type": node_type, "exception_type": one_line(exc_type, 120)}
        if payload.get("_event") == "execution_interrupted":
            err = ExecutionFailed(
                f"The run was interrupted at node {_label(plan.graph, node)} (someone pressed Cancel or "
                f"called /interrupt on the server).{finished}",
                message_zh=f"运行在节点 {_label(plan.graph, node)} 处被中断（有人在服务器上取消了任务）。",
                detail=detail, code="interrupted")
            return failure, err
        mapped = bizyair.explain_failure(node_type, exc_type, str(payload.get("exception_message") or ""), secrets)
        if mapped:
            en, zh, extra = mapped
            detail.update(extra)
            err = ExecutionFailed(f"Node {_label(plan.graph, node)} failed: {en}{finished}",
                                  message_zh=f"节点 {_label(plan.graph, node)} 执行失败：{zh}", detail=detail)
        else:
            short_type = exc_type.rsplit(".", 1)[-1] or "error"
            err = ExecutionFailed(f"Node {_label(plan.graph, node)} failed with {short_type}: {text}{finished}",
                                  message_zh=f"节点 {_label(plan.graph, node)} 执行失败（{short_type}）：{text}",
                                  detail=detail)
        return failure, err


def forget(client: ComfyClient, prompt_id: str) -> None:
    """Drop our history entry: in BizyAir server mode it holds the API key (inside the graph)."""
    try:
        client.delete_history(prompt_id, limit=2.0)
    except BridgeError:
        log.info("could not delete history entry %s", prompt_id)


def node_info(client: ComfyClient) -> NodeInfo:
    """Bundled definitions, completed per class from the server for custom nodes we do not ship
    (cached per server). A short limit: one slow class must not eat the run's time."""
    return NodeInfo(fetch=lambda cls: client.object_info(cls, limit=5.0), server=client.server.label)


def cancel(client: ComfyClient, prompt_id: str, deadline: float) -> bool:
    """Dequeue or interrupt our own prompt. True when it is confirmed gone from the queue."""
    budget = lambda cap: max(0.2, min(cap, deadline - time.monotonic()))  # noqa: E731
    try:
        state, _ = client.queue_state(prompt_id, limit=budget(1.5))
        if state == "pending":
            client.delete_queued(prompt_id, limit=budget(1.5))
        elif state == "running":
            client.interrupt(prompt_id, limit=budget(1.5))
        elif state == "absent":
            return True
        end = time.monotonic() + min(2.0, max(0.0, deadline - time.monotonic() - 0.3))
        while time.monotonic() < end:
            if client.queue_state(prompt_id, limit=budget(1.0))[0] == "absent":
                return True
            time.sleep(0.1)
    except BridgeError:
        pass
    return False


def cancel_later(client: ComfyClient, prompt_id: str, window: float = 120.0) -> threading.Thread:
    """Keep trying to dequeue/interrupt our prompt in the background after we returned to the
    user (a frozen server may come back): no GPU work is left behind for nobody."""
    def retry() -> None:
        end = time.monotonic() + window
        try:
            while time.monotonic() < end:
                if cancel(client, prompt_id, time.monotonic() + 5.0):
                    return
                time.sleep(2.0)
        finally:
            client.close()
    thread = threading.Thread(target=retry, name=f"cancel-{prompt_id[:8]}", daemon=True)
    thread.start()
    return thread


def _timeout_error(plan: Plan, stopped: bool, outcome: Outcome) -> RunTimeout:
    frozen = outcome.last_error is not None and outcome.last_error.code in ("timeout", "unreachable", "refused")
    why = (" ComfyUI stopped answering during the run (frozen or overloaded)." if frozen else "")
    if stopped:
        tail = " The run was cancelled on the server, so it does not keep using it."
        tail_zh = "已在服务器上取消该任务，不会继续占用资源。"
    else:
        tail = (" The server could not stop the run (a BizyAir cloud call ignores interrupts until it returns);"
                " it may keep the queue busy for a while.")
        tail_zh = "服务器无法停止该任务（BizyAir 云端调用在返回前会忽略中断），队列可能会继续被占用一段时间。"
    return RunTimeout(
        f"The workflow did not finish within the time limit.{why}{tail} Raise the tool's timeout "
        "(max 590 s) or use a lighter workflow.",
        message_zh=f"工作流未在时限内完成。{tail_zh}可调大工具的超时时间（最多 590 秒）或使用更轻量的工作流。",
        detail={"cancelled": stopped})


def _skipped_outputs(accepted: dict, graph: dict) -> list[str]:
    if not accepted.get("node_errors"):
        return []
    _, lines = describe_rejection({"node_errors": accepted["node_errors"]}, graph)
    return [f"skipped (invalid): {line}" for line in lines]


def _websocket_nodes(graph: dict) -> set[str]:
    return {nid for nid, node in graph.items()
            if isinstance(node, dict) and "websocket" in str(node.get("class_type", "")).lower()}


def _websocket_files(outcome: Outcome, prompt_id: str) -> list[OutputFile]:
    counters: dict[str, int] = {}
    files = []
    for index, (node, data) in enumerate(outcome.ws_frames):
        ext = "png" if data[:4] == b"\x89PNG" else "jpg"
        ref = OutputRef(node_id=node, filename=f"ws_{index}.{ext}", subfolder="", type="websocket", key="images")
        files.append(make_file(ref, data, "", prompt_id, counters))
    return files


def _bizyair_source(graph: dict, node: str) -> str:
    """The BizyAir node upstream of an output node (the one whose API call failed), else the node."""
    queue, seen = [node], {node}
    while queue:
        current = queue.pop(0)
        if current != node and _class_of(graph, current).startswith("BizyAir"):
            return current
        for value in (graph.get(current) or {}).get("inputs", {}).values():
            if isinstance(value, list) and len(value) == 2 and str(value[0]) not in seen:
                seen.add(str(value[0]))
                queue.append(str(value[0]))
    return node


def _placeholder_failure(graph: dict, output_node: str) -> tuple[NodeFailure, ExecutionFailed]:
    node = _bizyair_source(graph, output_node)
    failure = NodeFailure(node, _class_of(graph, node), "placeholder", "placeholder output")
    return failure, ExecutionFailed(
        f"Node {_label(graph, node)} returned BizyAir's stock placeholder instead of a result "
        "(its cloud API call failed); the placeholder was not delivered. Run it again, or check the "
        "container's log for the API error.",
        message_zh=f"节点 {_label(graph, node)} 返回的是 BizyAir 的占位图而不是结果（云端 API 调用失败），"
                   "占位图未被返回。请重试，或查看容器日志中的 API 错误。",
        detail={"node_id": node, "class_type": _class_of(graph, node)}, code="placeholder")


def _drop_placeholders(files: list[OutputFile]) -> tuple[list[OutputFile], list[str]]:
    kept, nodes = [], []
    for f in files:
        if bizyair.is_placeholder(f.data):
            nodes.append(f.node_id)
        else:
            kept.append(f)
    return kept, nodes


def _class_of(graph: dict, node: str) -> str:
    entry = graph.get(node)
    return str(entry.get("class_type", "?")) if isinstance(entry, dict) else "?"


def _label(graph: dict, node: str) -> str:
    entry = graph.get(node) if isinstance(graph, dict) else None
    cls = _class_of(graph, node)
    title = ""
    if isinstance(entry, dict) and isinstance(entry.get("_meta"), dict):
        title = str(entry["_meta"].get("title") or "")
    return f'{node} ({cls}' + (f' "{one_line(title, 60)}")' if title and title != cls else ")")


def _titled(notify: Progress, graph: dict) -> Progress:
    def forward(kind: str, data: dict[str, Any]) -> None:
        if "node" in data:
            data = dict(data, title=_label(graph, data["node"]))
        notify(kind, data)
    return forward
