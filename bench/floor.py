"""The floor: the least a client must do to run a workflow on ComfyUI and get its files.

websocket with a fresh clientId → POST /prompt with that client_id → wait for
`executing {node: null, prompt_id}` → GET /history/{id} → GET /view per file. No validation,
no retries, no error handling beyond "raise": whatever the engine adds on top of this is its
overhead. One keep-alive HTTP connection per client (a tight client would reuse it).
"""

from __future__ import annotations

import http.client
import json
import uuid
from urllib.parse import urlencode, urlsplit

import websocket

END_PREFIX = '{"type": "executing"'   # ComfyUI's json.dumps spacing; parse only these frames


class FloorClient:
    """Not thread-safe: give every thread its own client."""

    def __init__(self, base_url: str, timeout: float = 60.0):
        parts = urlsplit(base_url)
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.path = parts.path.rstrip("/")
        self.secure = parts.scheme == "https"
        self.timeout = timeout
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.secure else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=self.timeout)

    def _http(self, method: str, path: str, body: bytes | None = None) -> bytes:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in (1, 2):   # the server may have closed the idle keep-alive connection
            try:
                self.conn.request(method, self.path + path, body, headers)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = self._connect()
                if attempt == 2:
                    raise
        if resp.status != 200:
            raise RuntimeError(f"floor: {method} {path.split('?')[0]} answered HTTP {resp.status}: {data[:200]!r}")
        return data

    def run(self, graph: dict) -> list[bytes]:
        """Run `graph`; returns the bytes of every file in its history outputs."""
        client_id = uuid.uuid4().hex
        scheme = "wss" if self.secure else "ws"
        # skip_utf8_validation: websocket-client's pure-Python check is redundant, recv() decodes
        # text frames with bytes.decode("utf-8") anyway (which validates, in C).
        ws = websocket.create_connection(f"{scheme}://{self.host}:{self.port}{self.path}/ws?clientId={client_id}",
                                         timeout=self.timeout, suppress_origin=True, skip_utf8_validation=True)
        try:
            body = json.dumps({"prompt": graph, "client_id": client_id}).encode()
            prompt_id = json.loads(self._http("POST", "/prompt", body))["prompt_id"]
            while True:
                frame = ws.recv()
                if isinstance(frame, str) and frame.startswith(END_PREFIX):
                    data = json.loads(frame)["data"]
                    if data.get("node") is None and data.get("prompt_id") == prompt_id:
                        break
        finally:
            ws.close(timeout=1.0)
        entry = json.loads(self._http("GET", f"/history/{prompt_id}"))[prompt_id]
        files = []
        for node_out in entry["outputs"].values():
            for items in node_out.values():
                for item in items if isinstance(items, list) else ():
                    if isinstance(item, dict) and item.get("filename"):
                        query = urlencode({"filename": item["filename"], "subfolder": item.get("subfolder", ""),
                                           "type": item.get("type", "output")})
                        files.append(self._http("GET", f"/view?{query}"))
        return files

    def close(self) -> None:
        self.conn.close()
