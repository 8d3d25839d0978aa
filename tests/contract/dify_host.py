"""What Dify's API does around its workflow engine, for running our example apps in graphon.

graphon (Dify's graph engine on PyPI) runs the graph; Dify's API supplies everything around it:
where uploaded and tool-made files live and how their signed URLs look, how a tool node reaches
the plugin, and how the chat turns engine events into the reply. This module supplies the same,
on loopback, so a test can ask "what does the user see?":

    with DifyHost() as host:
        upload = host.files.upload(data, "wf.json", "application/json")
        turn = host.run_chat(dsl_text, invoker=..., credentials={...},
                             start_inputs={"prompt": "a fox", "workflow": upload}, query="a fox")
        turn.answer      # the reply text, as Dify streams and stores it
        turn.files       # the files attached to the reply (the Answer node's files)
        turn.outputs     # {node_id: outputs} for every node that finished
        turn.error       # the run's error, if it failed

Traps of graphon 0.8.0 handled here (see issue 16):
* its DSL path refuses files returned by tools: a tool-file manager and a file runtime are given
  to the tool node (subclasses of its tool runtime and node factory);
* `loads()` takes no factory: ours is swapped in for the duration of the import;
* the file runtime must be active while `loads()` builds the engine (the engine captures it);
* with an `action_invoker` graphon asks the plugin for `get_tool_runtime_parameters` instead of
  reading the manifest: `tool_parameters_from_yaml` gives the declared parameters (what Dify
  reads from the plugin's declaration); without them every form setting is silently dropped;
* streamed chunks are ordered and filtered only through `ResponseStreamFilter` (Dify does it);
* a failed run yields `GraphRunFailedEvent` and then re-raises: events are collected first;
* an Answer node inside a Loop or Iteration streams nothing through `ResponseStreamFilter` (it
  follows the root frame only), while Dify streams each round's answer into the reply
  (langgenius/dify api/tests/unit_tests/core/workflow/graph_engine/test_loop_contains_answer.py:
  "1\n2\nhi + 2", issue #42547): each round's rendered answer is added to the reply when that
  node succeeds.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.server
import mimetypes
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import yaml
from graphon.dsl import importer as graphon_importer
from graphon.dsl.node_factory import SlimDslNodeFactory, _NodeBuildRequest
from graphon.dsl.tool_runtime import SlimToolAction, SlimToolNodeRuntime
from graphon.engine.filter import EngineEventFilterContext, ResponseStreamFilter, filter_engine_events
from graphon.engine_events.graph import GraphRunFailedEvent, GraphRunSucceededEvent
from graphon.engine_events.node import NodeRunFailedEvent, NodeRunStreamChunkEvent, NodeRunSucceededEvent
from graphon.enums import BuiltinNodeTypes, WorkflowNodeExecutionMetadataKey
from graphon.file.enums import FileTransferMethod, FileType
from graphon.file.file_factory import get_file_type_by_mime_type
from graphon.file.models import File
from graphon.file.runtime import use_workflow_file_runtime
from graphon.nodes.tool.entities import ToolNodeData
from graphon.nodes.tool.exc import ToolNodeError
from graphon.nodes.tool.tool_node import ToolNode
from graphon.variables.segments import Segment

ROOT = Path(__file__).resolve().parents[2]

# (plugin_unique_identifier, action, data) -> the plugin's answer, one payload per message.
ActionInvoker = Callable[[str, str, Mapping[str, Any]], Iterable[Any]]


# ---- files: uploads and tool files, served with signed URLs like Dify's /files routes ----------

@dataclass
class StoredFile:
    id: str
    data: bytes
    mime_type: str
    filename: str
    extension: str


class FileStore:
    """Dify's upload and tool-file storage plus its signed `/files/...` URLs, on loopback.

    Upload URL:    /files/<id>/file-preview?timestamp=&nonce=&sign=
    Tool file URL: /files/tools/<id><ext>?timestamp=&nonce=&sign=
    (sign = HMAC-SHA256 over "file-preview|<id>|<timestamp>|<nonce>", as Dify signs them.)"""

    def __init__(self) -> None:
        self.uploads: dict[str, StoredFile] = {}
        self.tool_files: dict[str, StoredFile] = {}
        self.fetches: list[str] = []   # paths served, in order
        self._secret = os.urandom(32)
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="dify-files", daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # -- storing --

    def upload(self, data: bytes, filename: str, mime_type: str) -> File:
        """A file the user attached in the chat (a Start node file input)."""
        stored = StoredFile(uuid.uuid4().hex, data, mime_type, filename, Path(filename).suffix)
        with self._lock:
            self.uploads[stored.id] = stored
        return File(file_type=get_file_type_by_mime_type(mime_type), transfer_method=FileTransferMethod.LOCAL_FILE,
                    reference=stored.id, filename=filename, extension=stored.extension, mime_type=mime_type,
                    size=len(data))

    def save_tool_file(self, data: bytes, mime_type: str, filename: str | None) -> StoredFile:
        """Dify's ToolFileManager.create_file_by_raw: extension from the mime type, the tool's
        filename shown (a generated one when the tool gave none)."""
        file_id = uuid.uuid4().hex
        extension = mimetypes.guess_extension(mime_type) or ".bin"
        stored = StoredFile(file_id, data, mime_type, filename or f"{file_id}{extension}", extension)
        with self._lock:
            self.tool_files[file_id] = stored
        return stored

    def tool_file(self, file_id: str) -> File | None:
        stored = self.tool_files.get(file_id)
        if stored is None:
            return None
        return File(file_type=get_file_type_by_mime_type(stored.mime_type),
                    transfer_method=FileTransferMethod.TOOL_FILE, reference=file_id, filename=stored.filename,
                    extension=stored.extension, mime_type=stored.mime_type, size=len(stored.data))

    def stored(self, file: File) -> StoredFile:
        table = self.tool_files if file.transfer_method == FileTransferMethod.TOOL_FILE else self.uploads
        return table[str(file.related_id)]

    # -- URLs --

    def sign(self, file_id: str, timestamp: str, nonce: str) -> str:
        digest = hmac.new(self._secret, f"file-preview|{file_id}|{timestamp}|{nonce}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()).decode()

    def _signed(self, path: str, file_id: str) -> str:
        timestamp, nonce = str(int(time.time())), os.urandom(16).hex()
        return f"{self.base_url}{path}?timestamp={timestamp}&nonce={nonce}&sign={self.sign(file_id, timestamp, nonce)}"

    def upload_url(self, file_id: str) -> str:
        return self._signed(f"/files/{file_id}/file-preview", file_id)

    def tool_file_url(self, file_id: str, extension: str) -> str:
        return self._signed(f"/files/tools/{file_id}{extension}", file_id)

    def lookup(self, url: str) -> StoredFile | None:
        """The stored file a signed URL of this store points at (None if unsigned or unknown)."""
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self.base_url:
            return None
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        segments = parts.path.split("/")
        if len(segments) == 4 and segments[1] == "files" and segments[3] == "file-preview":
            stored = self.uploads.get(segments[2])
        elif len(segments) == 4 and segments[1:3] == ["files", "tools"]:
            stem, _, ext = segments[3].partition(".")
            stored = self.tool_files.get(stem)
            if stored is not None and f".{ext}" != stored.extension:
                return None
        else:
            return None
        if stored is None or not hmac.compare_digest(
                query.get("sign", ""), self.sign(stored.id, query.get("timestamp", ""), query.get("nonce", ""))):
            return None
        return stored

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        store = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                stored = store.lookup(store.base_url + self.path)
                store.fetches.append(urlsplit(self.path).path)
                if stored is None:
                    self.send_error(403, "File access denied")
                    return
                self.send_response(200)
                self.send_header("Content-Type", stored.mime_type)
                self.send_header("Content-Length", str(len(stored.data)))
                self.end_headers()
                self.wfile.write(stored.data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


class FileRuntime:
    """graphon's WorkflowFileRuntimeProtocol, answered from the FileStore (Dify's file_runtime)."""

    def __init__(self, store: FileStore) -> None:
        self.store = store

    @property
    def multimodal_send_format(self) -> str:
        return "url"

    def http_get(self, url: str, *, follow_redirects: bool = True) -> Any:
        raise NotImplementedError("the example apps download nothing through graphon")

    def storage_load(self, path: str, *, stream: bool = False) -> bytes:
        raise NotImplementedError("the example apps read no storage path through graphon")

    def load_file_bytes(self, *, file: File) -> bytes:
        return self.store.stored(file).data

    def resolve_file_url(self, *, file: File, for_external: bool = True) -> str | None:
        if file.transfer_method == FileTransferMethod.REMOTE_URL:
            return file.remote_url
        if file.transfer_method == FileTransferMethod.TOOL_FILE:
            return self.store.tool_file_url(str(file.related_id), file.extension or ".bin")
        return self.store.upload_url(str(file.related_id))

    def resolve_upload_file_url(self, *, upload_file_id: str, as_attachment: bool = False,
                                for_external: bool = True) -> str:
        return self.store.upload_url(upload_file_id)

    def resolve_tool_file_url(self, *, tool_file_id: str, extension: str, for_external: bool = True) -> str:
        return self.store.tool_file_url(tool_file_id, extension)

    def verify_preview_signature(self, *, preview_kind: str, file_id: str, timestamp: str, nonce: str,
                                 sign: str) -> bool:
        return hmac.compare_digest(sign, self.store.sign(file_id, timestamp, nonce))


class ToolFileManager:
    """graphon's ToolFileManagerProtocol: blobs from a tool become tool files in the store."""

    def __init__(self, store: FileStore) -> None:
        self.store = store

    def create_file_by_raw(self, *, file_binary: bytes, mimetype: str, filename: str | None = None) -> StoredFile:
        return self.store.save_tool_file(file_binary, mimetype, filename)

    def get_file_generator_by_tool_file_id(self, tool_file_id: str) -> tuple[None, File | None]:
        return None, self.store.tool_file(tool_file_id)


# ---- the tool node, routed to our plugin --------------------------------------------------------

def tool_parameters_from_yaml(tool_name: str) -> list[dict[str, Any]]:
    """The parameters our tool declares (what Dify reads from the plugin's declaration)."""
    manifest = yaml.safe_load((ROOT / "manifest.yaml").read_text(encoding="utf-8"))
    provider = yaml.safe_load((ROOT / manifest["plugins"]["tools"][0]).read_text(encoding="utf-8"))
    for rel in provider["tools"]:
        tool = yaml.safe_load((ROOT / rel).read_text(encoding="utf-8"))
        if tool["identity"]["name"] == tool_name:
            return [{"name": p["name"], "type": p["type"], "form": p["form"], "required": p.get("required", False),
                     "default": p.get("default"), "options": p.get("options") or []} for p in tool["parameters"]]
    raise KeyError(f"the plugin declares no tool {tool_name!r}")


def plugin_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Dify's convert_parameters_to_plugin_format: files become {dify_model_identity, url, …}."""
    def convert(value: Any) -> Any:
        if isinstance(value, File):
            return value.to_plugin_parameter()
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value
    return {name: convert(value) for name, value in parameters.items()}


@dataclass(slots=True)
class PluginToolRuntime(SlimToolNodeRuntime):
    """graphon's Slim tool runtime with our invoker, and tool files resolved from the store."""

    file_store: FileStore | None = None

    def build_file_reference(self, *, mapping: Mapping[str, Any]) -> File:
        # Dify's file_factory for tool files: the stored record decides name, mime type and size.
        assert self.file_store is not None
        file = self.file_store.tool_file(str(mapping.get("tool_file_id")))
        if file is None:
            raise ToolNodeError(f"tool file {mapping.get('tool_file_id')} not found")
        if mapping.get("type") and mapping["type"] != FileType.CUSTOM:
            file.type = FileType(mapping["type"])
        return file


def _answer_declared_parameters(invoker: ActionInvoker) -> ActionInvoker:
    """Serve get_tool_runtime_parameters from the tool YAML; pass everything else on."""
    def invoke(plugin_id: str, action: str, data: Mapping[str, Any]) -> Iterable[Any]:
        if action == SlimToolAction.GET_TOOL_RUNTIME_PARAMETERS:
            return [{"parameters": tool_parameters_from_yaml(str(data["tool"]))}]
        return invoker(plugin_id, str(action), data)
    return invoke


def _factory_class(invoker: ActionInvoker, store: FileStore) -> type[SlimDslNodeFactory]:
    class PluginNodeFactory(SlimDslNodeFactory):
        """graphon's DSL node factory whose tool nodes call our plugin and keep the files it returns."""

        def _create_tool_runtime(self, node_data: ToolNodeData) -> SlimToolNodeRuntime:
            plugin_id, provider, credential = self._resolve_tool_runtime_settings(node_data)
            return PluginToolRuntime(
                config=self.slim_client_config, plugin_id=plugin_id, provider=provider,
                provider_id=node_data.provider_id, tool_name=node_data.tool_name, credentials=credential.values,
                credential_type=credential.credential_type, action_invoker=_answer_declared_parameters(invoker),
                file_store=store)

        def _create_plugin_tool_node(self, request: _NodeBuildRequest) -> ToolNode:
            data = ToolNodeData.model_validate(request.data_payload)
            return ToolNode(node_id=request.node_id, data=data, init_params=self.init_params,
                            runtime_state=self.runtime_state, tool_file_manager=ToolFileManager(store),
                            runtime=self._create_tool_runtime(data))

        NODE_BUILDERS: ClassVar[Mapping[Any, Any]] = {
            **SlimDslNodeFactory.NODE_BUILDERS, BuiltinNodeTypes.TOOL: _create_plugin_tool_node}

    return PluginNodeFactory


@contextlib.contextmanager
def _node_factory(cls: type[SlimDslNodeFactory]) -> Iterator[None]:
    original = graphon_importer.SlimDslNodeFactory
    graphon_importer.SlimDslNodeFactory = cls  # type: ignore[misc]
    try:
        yield
    finally:
        graphon_importer.SlimDslNodeFactory = original  # type: ignore[misc]


# ---- one chat turn ------------------------------------------------------------------------------

@dataclass
class ChatTurn:
    """What one chat message produced, as Dify's chat pipeline sees it."""

    answer: str = ""                                   # concatenated text chunks: the reply
    files: list[File] = field(default_factory=list)    # the Answer node's files: attached to the reply
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    node_errors: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    succeeded: bool = False
    events: list[Any] = field(default_factory=list)

    def output(self, node_id: str, name: str) -> Any:
        value = self.outputs[node_id][name]
        return value.value if isinstance(value, Segment) else value


class DifyHost:
    def __init__(self) -> None:
        self.files = FileStore()
        self.runtime = FileRuntime(self.files)

    def close(self) -> None:
        self.files.close()

    def __enter__(self) -> DifyHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_chat(self, dsl: str, *, invoker: ActionInvoker, credentials: Mapping[str, Any],
                 start_inputs: Mapping[str, Any], query: str) -> ChatTurn:
        """Import the app as Dify would, run one chat message through it, collect the reply."""
        run_context = {"query": query, "conversation_id": str(uuid.uuid4()), "user_id": "contract-user",
                       "dialogue_count": 1, "app_id": "contract-app"}
        with use_workflow_file_runtime(self.runtime), _node_factory(_factory_class(invoker, self.files)):
            engine = graphon_importer.loads(dsl, credentials=dict(credentials), start_inputs=start_inputs,
                                            run_context=run_context, workers=1)
            context = EngineEventFilterContext.from_engine(engine)
        turn = ChatTurn()
        events = filter_engine_events(engine.run(), context=context, filters=[ResponseStreamFilter()])
        try:
            for event in events:
                turn.events.append(event)
                self._take(turn, event)
        except Exception as exc:  # noqa: BLE001 - graphon re-raises after GraphRunFailedEvent
            turn.error = turn.error or f"{type(exc).__name__}: {exc}"
        return turn

    @staticmethod
    def _take(turn: ChatTurn, event: Any) -> None:
        if isinstance(event, NodeRunStreamChunkEvent):
            turn.answer += event.chunk
        elif isinstance(event, NodeRunSucceededEvent):
            outputs = dict(event.node_run_result.outputs or {})
            turn.outputs[event.node_id] = outputs
            metadata = event.node_run_result.metadata or {}
            in_container = any(metadata.get(k) for k in (WorkflowNodeExecutionMetadataKey.LOOP_ID,
                                                         WorkflowNodeExecutionMetadataKey.ITERATION_ID))
            if event.node_type == BuiltinNodeTypes.ANSWER and in_container:
                answer = outputs.get("answer")
                turn.answer += str(answer.value if isinstance(answer, Segment) else answer or "")
            if event.node_type in (BuiltinNodeTypes.ANSWER, BuiltinNodeTypes.END):
                # Dify records these as the message's files (generate_task_pipeline).
                files = outputs.get("files")
                turn.files.extend(files.value if isinstance(files, Segment) else files or [])
        elif isinstance(event, NodeRunFailedEvent):
            turn.node_errors[event.node_id] = event.error
        elif isinstance(event, GraphRunFailedEvent):
            turn.error = event.error
        elif isinstance(event, GraphRunSucceededEvent):
            turn.succeeded = True
