"""The straight path: request → plan → server → queue → follow → outputs → RunResult.

Dify-free: the plugin's tools, the command line and the benchmarks all call `Engine.run`.
One `Deadline` (the request's `timeout`) bounds everything that waits; time is kept back from it
to stop our prompt and fetch what finished, so a call always ends by its timeout and says what
finished and what did not.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from . import bizyair, lifecycle, metadata, routing
from .budget import RUN_OUTPUT_LIMIT, OutputBudget
from .client import ComfyClient
from .deadline import Deadline
from .endpoint import ServerConfig
from .errors import (
    BadResponse,
    BridgeError,
    ConnectionFailed,
    ExecutionFailed,
    InputError,
    PromptRejected,
    RunLost,
    RunTimeout,
)
from .images import rename_images
from .jobs import Job
from .jsonsafe import shown
from .media import classify, extension
from .models import NodeFailure, OutputFile, OutputRef, Plan, RunRequest, RunResult
from .nodeinfo import NodeInfo
from .outputs import collect_refs, download, make_file
from .plan import build_plan
from .rejections import describe_rejection
from .run import Outcome, Progress, RunFollower, settle
from .scrub import one_line
from .ws import close_quietly, open_run_socket

log = logging.getLogger(__name__)
_T = TypeVar("_T")

CANCEL_RESERVE = 4.0        # seconds kept back from the deadline to stop our prompt and fetch outputs
LOOKUP_BUDGET = 8.0         # all node-definition lookups of one run together
SUBMIT_LIMIT = 60.0         # submitting (plan, uploads, queue) never takes longer than this
COLLECT_MARGIN = 30.0       # after a collect's wait: time to download what finished
CLEANUP_WINDOW = 120.0      # a prompt we could not stop is retried (and its history deleted) this long
# ComfyUI rejections that may come from definitions we cached before the server changed.
_STALE_DEFINITION_KINDS = {"required_input_missing", "value_not_in_list", "return_type_mismatch",
                           "invalid_input_type", "invalid_prompt"}


@dataclass
class _Ready:
    """A request planned for one server, ready to queue."""

    request: RunRequest
    nodeinfo: NodeInfo
    uploaded: list[str]
    plan: Plan
    key: str                       # the server-mode key injected into plan.graph ("" if none)


@dataclass
class Submitted:
    job: Job
    status: str                    # "queued" | "running"
    position: int                  # 1-based among pending, 0 when running
    plan: Plan


@dataclass
class Collected:
    job: Job
    status: str                    # "queued" | "running" | "finished"
    position: int = 0
    node: str = ""                 # the node running, as "<id> (<class> "<title>")"
    step: tuple[int, int] | None = None
    result: RunResult | None = None


def _refuse_while_stopping(what: str) -> None:
    if lifecycle.stopping():
        raise ConnectionFailed(f"The plugin is shutting down; {what} the workflow again in a moment.",
                               message_zh="插件正在关闭，请稍后重新运行或提交工作流。", code="shutting_down")


class _Watch:
    """Forwards progress and remembers the last node and step (for a collect that returns early)."""

    def __init__(self, forward: Progress):
        self.forward = forward
        self.node = ""
        self.step: tuple[int, int] | None = None

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "node":
            self.node, self.step = str(data.get("node") or ""), None
        elif kind == "progress" and isinstance(data.get("value"), (int, float)):
            # A collect that joins a node already running learns the node from its progress events.
            self.node = str(data.get("node") or self.node)
            self.step = (int(data["value"]), int(data.get("max") or 0))
        self.forward(kind, data)


class Engine:
    """Runs workflows on one or several ComfyUI servers (one run = one server)."""

    def __init__(self, servers: list[ServerConfig], *, bizyair_key: str = "", comfy_org_key: str = "",
                 output_limit: int = RUN_OUTPUT_LIMIT,
                 client_factory: Callable[[ServerConfig], ComfyClient] = ComfyClient):
        if not servers:
            raise ValueError("at least one server")
        self.servers = servers
        self.bizyair_key = bizyair_key.strip()
        self.comfy_org_key = comfy_org_key.strip()
        self.output_limit = output_limit      # bytes of output one run may hold (budget.py)
        self.client_factory = client_factory

    def secrets(self) -> list[str]:
        out = [s for server in self.servers for s in server.secrets()]
        return out + [k for k in (self.bizyair_key, self.comfy_org_key) if k]

    def extra_data(self) -> dict[str, str]:
        """The `extra_data` of every /prompt: the Comfy.org API key for ComfyUI's partner API nodes.
        ComfyUI (server.py post_prompt) moves `api_key_comfy_org` out of extra_data into the queue
        item's sensitive part before storing anything, so it is in neither /queue nor /history, and
        hands it to the nodes' hidden API_KEY_COMFY_ORG input (execution.py get_input_data)."""
        return {"api_key_comfy_org": self.comfy_org_key} if self.comfy_org_key else {}

    # ---- entry point ------------------------------------------------------------------------------

    def run(self, request: RunRequest, on_progress: Progress | None = None) -> RunResult:
        """Run one request. Raises BridgeError for failures before the prompt was accepted
        (bad input, unreachable server, validation 400); failures after that come back in
        RunResult (status + error) together with every output that did finish."""
        _refuse_while_stopping("run")
        deadline = Deadline.after(request.timeout)
        notify = on_progress or (lambda kind, data: None)
        prompt_id = str(uuid.uuid4())
        return self._on_a_server(deadline, lambda client: self._run_on(client, request, prompt_id, deadline, notify))

    def _on_a_server(self, deadline: Deadline, work: Callable[[ComfyClient], _T]) -> _T:
        """`work(client)` on the first server that can take it: in the order routing chooses, moving
        on only when the failure proves nothing was queued there (routing.is_failover_error)."""
        last_error: BridgeError | None = None
        for server in self._candidates(deadline):
            client = self.client_factory(server)
            try:
                return work(client)
            except BridgeError as exc:
                if not routing.is_failover_error(exc) or len(self.servers) == 1:
                    raise
                log.warning("server %s unusable, trying the next one: %s", server.label, exc.code)
                last_error = exc
            finally:
                client.close()
        raise last_error or ConnectionFailed("No ComfyUI server is reachable.",
                                             message_zh="没有可用的 ComfyUI 服务器。")

    def _candidates(self, deadline: Deadline) -> list[ServerConfig]:
        if len(self.servers) == 1:
            return list(self.servers)
        ordered = routing.choose_server(self.servers, self.client_factory, deadline=deadline.within(2.0))
        return ordered or list(self.servers)

    # ---- one server -------------------------------------------------------------------------------

    def _run_on(self, client: ComfyClient, request: RunRequest, prompt_id: str, deadline: Deadline,
                notify: Progress) -> RunResult:
        started = time.monotonic()
        timings: dict[str, float] = {}
        ready = self._prepare(client, request, prompt_id, deadline)
        client_id = uuid.uuid4().hex
        ws = None
        budget = OutputBudget(self.output_limit)
        try:
            try:
                ws = open_run_socket(client.server, client_id, deadline.within(5.0))
            except BridgeError as exc:
                if exc.code != "ws_failed":
                    raise
                log.info("websocket unavailable on %s, following by polling", client.server.label)
            timings["ws_connected"] = time.monotonic() - started
            plan = self._queue(client, ready, prompt_id, client_id, deadline)
            lifecycle.register(lifecycle.ActiveRun(
                client.server.label, prompt_id,
                lambda d: stop(self.client_factory(client.server), prompt_id, d, forget_history=bool(ready.key))))
            timings["queued"] = time.monotonic() - started
            notify("accepted", {"prompt_id": prompt_id})
            # Keep time back to stop our prompt and fetch what finished, inside the user's timeout.
            reserve = min(CANCEL_RESERVE, 0.25 * request.timeout)
            follower = RunFollower(client, prompt_id, client_id, deadline.reserve(reserve), ws,
                                   _titled(notify, plan.graph), websocket_nodes=_websocket_nodes(plan.graph),
                                   budget=budget)
            ws = None  # the follower owns and closes it
            try:
                outcome = follower.follow()
            finally:
                timings["finished"] = time.monotonic() - started
            result = self._result(client, plan, prompt_id, outcome, deadline, budget, ready.key)
        finally:
            close_quietly(ws)
            lifecycle.unregister(prompt_id)
        timings["downloaded"] = time.monotonic() - started
        result.timings = {k: round(v, 4) for k, v in timings.items()}
        result.deadline = deadline
        return result

    def _prepare(self, client: ComfyClient, request: RunRequest, prompt_id: str, deadline: Deadline) -> _Ready:
        """Everything before queueing: definitions, checks, image uploads, the plan, the key."""
        nodeinfo = node_info(client, deadline)
        # Planned once, with placeholder image names: a bad request fails before anything is
        # uploaded; the names ComfyUI gives the uploads replace the placeholders afterwards.
        plan = build_plan(request.workflow, request, nodeinfo, [f"pending_{i}.png" for i in range(len(request.images))])
        uploaded = self._upload_images(client, request, deadline)
        rename_images(plan.graph, plan.changes, uploaded)
        key = self._server_mode_key(client, deadline)
        if key:
            bizyair.apply_server_mode_key(plan.graph, key, prompt_id)
        return _Ready(request, nodeinfo, uploaded, plan, key)

    # ---- submit now, collect later ----------------------------------------------------------------

    def submit(self, request: RunRequest, on_progress: Progress | None = None) -> Submitted:
        """Queue the request and return at once with a Job that `collect` (in this or another
        process) follows to its end. Raises BridgeError when nothing was queued."""
        _refuse_while_stopping("submit")
        deadline = Deadline.after(min(request.timeout, SUBMIT_LIMIT))
        notify = on_progress or (lambda kind, data: None)
        prompt_id = str(uuid.uuid4())

        def submit_on(client: ComfyClient) -> Submitted:
            ready = self._prepare(client, request, prompt_id, deadline)
            client_id = uuid.uuid4().hex
            plan = self._queue(client, ready, prompt_id, client_id, deadline)
            notify("accepted", {"prompt_id": prompt_id})
            try:
                state, position = client.queue_state(prompt_id, deadline=deadline.within(2.0))
            except BridgeError:
                state, position = "queued", 0
            job = Job.create(client.server.base_url, prompt_id, client_id, plan, bool(ready.key))
            return Submitted(job, "running" if state == "running" else "queued", position, plan)

        return self._on_a_server(deadline, submit_on)

    def collect(self, job: Job, wait: float = 0.0, on_progress: Progress | None = None) -> Collected:
        """Follow a submitted job for up to `wait` seconds. Returns its state ("queued"/"running",
        with the queue position or the node running) or, once it ended, the RunResult with every
        output that finished (downloaded within COLLECT_MARGIN seconds after the wait); a job the
        server has forgotten ends as lost. Raises BridgeError when the server does not answer."""
        client = self.client_factory(self._server_of(job))
        plan = job.plan()
        notify = on_progress or (lambda kind, data: None)
        watch = _Watch(_titled(notify, plan.graph))
        follow_until = Deadline.after(max(0.0, wait))
        deadline = Deadline.after(max(0.0, wait) + COLLECT_MARGIN)
        budget = OutputBudget(self.output_limit)
        try:
            try:
                entry = client.history(job.prompt_id, deadline=deadline.within(10.0))
            except BridgeError:
                entry = None    # a flaky history: the follower below tries again
            if entry is not None:
                outcome = settle(Outcome(ending="success"), entry)
            else:
                ws = None
                if wait > 0:
                    try:   # the job's own client id: ComfyUI sends this prompt's events to it
                        ws = open_run_socket(client.server, job.client_id, follow_until.within(5.0))
                    except BridgeError:
                        ws = None
                follower = RunFollower(client, job.prompt_id, job.client_id, follow_until, ws, watch,
                                       websocket_nodes=set(), budget=budget)
                outcome = follower.follow() if wait > 0 else follower.peek()
                if outcome.ending == "timeout":
                    return self._still_going(client, job, deadline, watch, outcome)
            key = self.bizyair_key if job.key_injected else ""
            result = self._result(client, plan, job.prompt_id, outcome, deadline, budget, key)
            result.deadline = deadline
            if result.outputs:
                job.outputs = [f.ref for f in result.outputs if f.ref.type != "websocket"]
            return Collected(job, "finished", result=result)
        finally:
            client.close()

    def fetch_outputs(self, job: Job, deadline: Deadline | None = None) -> RunResult:
        """Download a collected job's outputs again by name (its history may be gone by now)."""
        client = self.client_factory(self._server_of(job))
        deadline = deadline or Deadline.after(COLLECT_MARGIN)
        try:
            files, failed = download(client, list(job.outputs), job.prompt_id, deadline,
                                     OutputBudget(self.output_limit))
            plan = job.plan()
            plan.warnings = []   # the plan's notes went out with the first delivery; only new ones here
            if job.key_injected:
                files, withheld = _without_key(files, self.bizyair_key)
                plan.warnings.extend(withheld)
            plan.warnings.extend(f"output {shown(ref.filename, 80)} of node {shown(ref.node_id, 40)} could not be "
                                 f"fetched again: {why}" for ref, why in failed[:20])
            result = RunResult(prompt_id=job.prompt_id, server=client.server.label, ending="success",
                               outputs=files, missing=[r for r, _ in failed], warnings=plan.warnings, plan=plan)
            result.deadline = deadline
            return result
        finally:
            client.close()

    def state(self, job: Job, deadline: Deadline | None = None) -> str:
        """Where a submitted job is, by looking only: "finished" (its history entry exists),
        "queued", "running", or "lost" (neither in the history nor in the queue, twice, half a
        second apart: history is written just before the queue entry is released). Downloads
        nothing and deletes nothing, unlike `collect`. Raises BridgeError when the server does not
        answer."""
        client = self.client_factory(self._server_of(job))
        deadline = deadline or Deadline.after(8.0)
        try:
            for attempt in range(2):
                if attempt:
                    deadline.sleep(0.5)
                if client.history(job.prompt_id, deadline=deadline.within(3.0)) is not None:
                    return "finished"
                state, _ = client.queue_state(job.prompt_id, deadline=deadline.within(3.0))
                if state != "absent":
                    return "queued" if state == "pending" else "running"
            return "lost"
        finally:
            client.close()

    def cancel(self, job: Job, deadline: Deadline | None = None) -> bool:
        """Stop a submitted job on its server (dequeue or interrupt). True when it is gone."""
        client = self.client_factory(self._server_of(job))
        try:
            return stop(client, job.prompt_id, deadline or Deadline.after(6.0), forget_history=job.key_injected)
        finally:
            client.close()

    def _server_of(self, job: Job) -> ServerConfig:
        for server in self.servers:
            if server.base_url == job.server:
                return server
        label = ServerConfig(job.server).label
        raise InputError(
            f"The job ran on {label}, which is no longer in the plugin's ComfyUI addresses. Add it back to "
            "collect the job, or submit the workflow again.",
            message_zh=f"该任务运行在 {label} 上，但插件的 ComfyUI 地址中已没有该服务器。"
                       "请重新添加后再收取，或重新提交工作流。",
            code="job_server_gone")

    def _still_going(self, client: ComfyClient, job: Job, deadline: Deadline, watch: _Watch,
                     outcome: Outcome) -> Collected:
        # A server that does not answer now: say so (the caller keeps the job and may try again).
        state, position = client.queue_state(job.prompt_id, deadline=deadline.within(3.0))
        if state == "absent" and self.state(job, deadline.within(4.0)) == "lost":
            result = self._result(client, job.plan(), job.prompt_id, Outcome(ending="lost"), deadline,
                                  OutputBudget(self.output_limit), "")
            return Collected(job, "finished", result=result)
        status = "queued" if state == "pending" else "running"
        node = outcome.current_node or watch.node
        return Collected(job, status, position=position, node=_label(job.graph, node) if node else "",
                         step=watch.step)

    def _server_mode_key(self, client: ComfyClient, deadline: Deadline) -> str:
        """The BizyAir key, only for a server that says it runs in server mode: a plain ComfyUI
        would refuse the extra node, and a container with its own key must not receive ours."""
        if not self.bizyair_key:
            return ""
        return self.bizyair_key if bizyair.ask_server_mode(client, deadline) is True else ""

    def _queue(self, client: ComfyClient, ready: _Ready, prompt_id: str, client_id: str,
               deadline: Deadline) -> Plan:
        """POST /prompt; returns the plan that was queued. When ComfyUI rejects the workflow for
        something our cached definitions may have got wrong (the server's custom nodes changed),
        forget them and, if the plan used them, plan again with fresh ones and queue once more."""
        plan = ready.plan
        try:
            accepted = client.queue_prompt(plan.graph, prompt_id, client_id, extra_data=self.extra_data(),
                                           deadline=deadline)
        except PromptRejected as exc:
            if not set(exc.detail.get("error_types") or ()) & _STALE_DEFINITION_KINDS:
                raise
            used_live = ready.nodeinfo.used_live
            ready.nodeinfo.forget_live()
            if not used_live:
                raise
            log.info("ComfyUI rejected a plan made with cached definitions; planning again")
            plan = build_plan(ready.request.workflow, ready.request, ready.nodeinfo, ready.uploaded)
            if ready.key:
                bizyair.apply_server_mode_key(plan.graph, ready.key, prompt_id)
            accepted = client.queue_prompt(plan.graph, prompt_id, client_id, extra_data=self.extra_data(),
                                           deadline=deadline)
        plan.warnings.extend(_skipped_outputs(accepted, plan.graph))
        return plan

    def _upload_images(self, client: ComfyClient, request: RunRequest, deadline: Deadline) -> list[str]:
        names = []
        for filename, data in request.images:
            ext = extension(filename) or "png"
            mime, _ = classify(filename)
            # Our own unique name: concurrent users must never overwrite each other's inputs.
            unique = f"dify_{uuid.uuid4().hex}.{ext}"
            names.append(client.upload_image(unique, data, mime, deadline=deadline))
        return names

    # ---- after the run ----------------------------------------------------------------------------

    def _result(self, client: ComfyClient, plan: Plan, prompt_id: str, outcome: Outcome,
                deadline: Deadline, budget: OutputBudget, key: str) -> RunResult:
        result = RunResult(prompt_id=prompt_id, server=client.server.label, ending=outcome.ending,
                           cached_nodes=outcome.cached_nodes)
        if outcome.ending in ("timeout", "gone"):
            stopped = outcome.ending == "gone" or stop(client, prompt_id, deadline, forget_history=bool(key))
            if not stopped:
                cleanup_later(self.client_factory(client.server), prompt_id, forget_history=bool(key))
            if outcome.ending == "timeout":
                # Whatever finished before the deadline is still worth returning.
                try:
                    outcome.history = client.history(prompt_id, deadline=deadline.within(2.0))
                except BridgeError:
                    outcome.history = None
                result.error = _timeout_error(plan, stopped, outcome)
            else:
                result.error = _gone_error(client.server.label)
        elif outcome.ending == "lost":
            result.error = RunLost(
                f"ComfyUI at {client.server.label} lost the run: it is neither queued nor in the history "
                "(the server probably restarted). Run it again.",
                message_zh=f"{client.server.label} 上的 ComfyUI 丢失了这次运行（服务器可能已重启），请重新运行。")
        elif key:
            forget(client, prompt_id, deadline)
        history = outcome.history
        if history is not None and history.problems:
            plan.warnings.append(f"ComfyUI's history entry was partly unreadable ({'; '.join(history.problems[:3])}).")
        if outcome.ending == "unreadable":
            result.ending = "error"
            result.error = BadResponse(
                f"ComfyUI at {client.server.label} answered /history in an unexpected form: the run is over but "
                "its status cannot be read.",
                message_zh=f"{client.server.label} 上的 ComfyUI 对 /history 的响应格式异常："
                           "运行已结束，但无法读取其状态。",
                detail={"server": client.server.label}, code="bad_response")
        # /history unreadable (500, not JSON) but the socket saw the outputs: use those.
        listed = history.outputs if history is not None and history.outputs else (
            outcome.ws_outputs if history is None else {})
        refs, result.texts = collect_refs(listed)
        files, failed = download(client, refs, prompt_id, deadline, budget)
        files += _websocket_files(outcome, prompt_id)
        files, placeholder_nodes = _drop_placeholders(files)
        if key:
            files, withheld = _without_key(files, key)
            plan.warnings.extend(withheld)
        result.outputs = files
        result.missing = [ref for ref, _ in failed]
        if failed:
            plan.warnings.extend(f"output {shown(ref.filename, 80)} of node {shown(ref.node_id, 40)} was not "
                                 f"delivered: {why}" for ref, why in failed[:20])
            if len(failed) > 20:
                plan.warnings.append(f"… and {len(failed) - 20} more output(s) were not delivered")
        if outcome.ws_incomplete:
            plan.warnings.append(f"The websocket closed before the run ended: images sent by SaveImageWebsocket may be "
                                 f"missing ({len(outcome.ws_frames)} received).")
        if outcome.ws_dropped:
            plan.warnings.append(f"{outcome.ws_dropped} SaveImageWebsocket image(s) were not kept: the run's outputs "
                                 f"exceed the {budget.limit // (1024 * 1024)} MB limit.")
        if outcome.ending in ("error", "interrupted"):
            result.failure, result.error = self._failure(outcome, plan, files)
        elif placeholder_nodes and result.error is None:
            result.ending = "error"
            result.failure, result.error = _placeholder_failure(plan.graph, placeholder_nodes[0])
        if outcome.ending == "success" and not files and not result.texts and not failed:
            plan.warnings.append("the workflow finished but produced no file (add a SaveImage/PreviewImage node)")
        result.warnings = plan.warnings
        result.plan = plan
        return result

    def _failure(self, outcome: Outcome, plan: Plan, files: list[OutputFile]) -> tuple[NodeFailure, BridgeError]:
        payload = outcome.error or {}
        node = one_line(payload.get("node_id") or "?", 40)
        node_type = one_line(payload.get("node_type") or _class_of(plan.graph, node), 80)
        exc_type = one_line(payload.get("exception_type") or "", 120)
        secrets = self.secrets()
        text = one_line(payload.get("exception_message") or "", 400, secrets)
        failure = NodeFailure(node, node_type, exc_type, text)
        finished = (f" {len(files)} output file(s) that finished before the failure are still returned."
                    if files else "")
        detail = {"node_id": node, "class_type": node_type, "exception_type": exc_type}
        if payload.get("_event") == "execution_interrupted":
            err = ExecutionFailed(
                f"The run was interrupted at node {_label(plan.graph, node)} (someone pressed Cancel or "
                f"called /interrupt on the server).{finished}",
                message_zh=f"运行在节点 {_label(plan.graph, node)} 处被中断（有人在服务器上取消了任务）。",
                detail=detail, code="interrupted")
            return failure, err
        raw_message = payload.get("exception_message")
        mapped = bizyair.explain_failure(node_type, exc_type, raw_message if isinstance(raw_message, str) else "",
                                         secrets)
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


# ---- cleaning up on the server ------------------------------------------------------------------

def forget(client: ComfyClient, prompt_id: str, deadline: Deadline) -> bool:
    """Drop our history entry: in BizyAir server mode it holds the API key (inside the graph)."""
    try:
        client.delete_history(prompt_id, deadline=deadline.within(2.0))
        return True
    except BridgeError:
        log.info("could not delete history entry %s", prompt_id)
        return False


def node_info(client: ComfyClient, deadline: Deadline | None = None) -> NodeInfo:
    """Bundled definitions, completed per class from the server for custom nodes we do not ship
    (cached per server and credentials). All lookups of one run share LOOKUP_BUDGET seconds of
    the run's deadline: slow classes cannot eat the run's time."""
    lookups = (deadline or Deadline.after(LOOKUP_BUDGET)).within(LOOKUP_BUDGET)
    return NodeInfo(fetch=lambda cls: client.object_info(cls, deadline=lookups),
                    server=":".join(client.server.identity()))


def stop(client: ComfyClient, prompt_id: str, deadline: Deadline, *, forget_history: bool = False) -> bool:
    """Dequeue or interrupt our own prompt (and, when asked, delete its history entry once it is
    gone). True when it is confirmed gone from the queue."""
    budget = deadline.within(3.5)
    try:
        state, _ = client.queue_state(prompt_id, deadline=budget.within(1.5))
        if state == "pending":
            client.delete_queued(prompt_id, deadline=budget.within(1.5))
        elif state == "running":
            client.interrupt(prompt_id, deadline=budget.within(1.5))
        while state != "absent":
            if budget.remaining() < 0.3:
                return False
            budget.sleep(0.1)
            state, _ = client.queue_state(prompt_id, deadline=budget.within(1.0))
    except BridgeError:
        return False
    if forget_history:
        forget(client, prompt_id, deadline)
    return True


def cleanup_later(client: ComfyClient, prompt_id: str, *, forget_history: bool = False,
                  window: float = CLEANUP_WINDOW) -> threading.Thread:
    """Keep trying to dequeue/interrupt our prompt in the background after we returned to the
    user (a frozen server may come back): no GPU work is left behind for nobody, and in server
    mode the history entry holding the key is deleted once the run has ended."""
    def retry() -> None:
        end = Deadline.after(window)
        try:
            while not end.expired():
                if stop(client, prompt_id, end.within(6.0), forget_history=forget_history):
                    return
                end.sleep(2.0)
        finally:
            client.close()
    thread = threading.Thread(target=retry, name=f"cancel-{prompt_id[:8]}", daemon=True)
    thread.start()
    return thread


# ---- messages ----------------------------------------------------------------------------------

def _timeout_error(plan: Plan, stopped: bool, outcome: Outcome) -> RunTimeout:
    frozen = outcome.last_error is not None and outcome.last_error.code in ("timeout", "unreachable", "refused")
    why = " ComfyUI stopped answering during the run (frozen or overloaded)." if frozen else ""
    why_zh = "运行期间 ComfyUI 停止了响应（卡死或过载）。" if frozen else ""
    if stopped:
        tail = " The run was cancelled on the server, so it does not keep using it."
        tail_zh = "已在服务器上取消该任务，不会继续占用资源。"
    elif _class_of(plan.graph, outcome.current_node).startswith("BizyAir"):
        tail = (f" The server could not stop the run: node {_label(plan.graph, outcome.current_node)} waits for "
                "the BizyAir cloud, which ignores interrupts until it returns; the plugin keeps trying to "
                "cancel it for two minutes.")
        tail_zh = "服务器无法停止该任务：BizyAir 节点正在等待云端返回，返回前会忽略中断；插件会在两分钟内继续尝试取消。"
    else:
        tail = (" The run could not be cancelled on the server" + (" (it did not answer)" if frozen else "") +
                "; the plugin keeps trying for two minutes, and it may keep the queue busy until then.")
        tail_zh = "无法在服务器上取消该任务；插件会在两分钟内继续尝试，在此之前队列可能仍被占用。"
    return RunTimeout(
        f"The workflow did not finish within the time limit.{why}{tail} Raise the tool's timeout "
        "or use a lighter workflow.",
        message_zh=f"工作流未在时限内完成。{why_zh}{tail_zh}可调大工具的超时时间或使用更轻量的工作流。",
        detail={"cancelled": stopped})


def _gone_error(label: str) -> ConnectionFailed:
    return ConnectionFailed(
        f"ComfyUI at {label} stopped accepting connections during the run (it was stopped or crashed) and did "
        "not come back. Start it again and run the workflow again.",
        message_zh=f"运行期间 {label} 上的 ComfyUI 停止接受连接（已停止或崩溃）且没有恢复。请重新启动后再运行工作流。",
        detail={"server": label}, code="server_gone")


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
        ref = OutputRef(node_id=node, filename=f"ws_{index}.{ext}", subfolder="", type="websocket",
                        listed_under="images")
        files.append(make_file(ref, data, "", prompt_id, counters))
    return files


def _without_key(files: list[OutputFile], key: str) -> tuple[list[OutputFile], list[str]]:
    """Remove the server-mode key from every file's embedded metadata (ComfyUI writes the queued
    prompt, which carries it, into PNG/WebP/video/audio metadata); withhold what still holds it."""
    kept, notes = [], []
    for f in files:
        cleaned = metadata.remove_secrets(f.data, f.mime_type, [key])
        if cleaned.clean:
            f.data = cleaned.data
            kept.append(f)
        else:
            notes.append(f"{f.name} was withheld: ComfyUI wrote the queued prompt, which carries the BizyAir API "
                         f"key in server mode, into it, and the key could not be removed ({cleaned.problem}).")
    return kept, notes


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
    cls = one_line(_class_of(graph, node), 80)
    title = ""
    if isinstance(entry, dict) and isinstance(entry.get("_meta"), dict):
        title = one_line(entry["_meta"].get("title") or "", 60)
    return f'{one_line(node, 40)} ({cls}' + (f' "{title}")' if title and title != cls else ")")


def _titled(notify: Progress, graph: dict) -> Progress:
    def forward(kind: str, data: dict[str, Any]) -> None:
        if "node" in data:
            data = dict(data, title=_label(graph, data["node"]))
        notify(kind, data)
    return forward
