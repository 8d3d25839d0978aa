"""The aiohttp application of the simulated ComfyUI server.

Routes exist with and without the /api prefix (ComfyUI registers its table twice). One
middleware applies, in order: request counting, the test faults that make the server look
like something else (html_everywhere), an auth proxy (--token / --require-header), ComfyUI's
own Origin check, then per-route faults. /_test/* control routes bypass all of it.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import os
import urllib.parse
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from . import media
from .engine import BINARY, ServerState

SYSTEM_STATS = {
    "system": {"os": "linux", "ram_total": 25276502016, "ram_free": 23176331264, "comfyui_version": "0.8.0",
               "required_frontend_version": "1.35.9", "installed_templates_version": "0.7.67",
               "required_templates_version": "0.7.67",
               "python_version": "3.11.7 (main, May  9 2026, 07:35:25) [GCC 12.2.0]",
               "pytorch_version": "2.9.1+cu128", "embedded_python": False,
               "argv": ["main.py", "--cpu", "--listen", "127.0.0.1", "--port", "8188", "--disable-auto-launch"]},
    "devices": [{"name": "cpu", "type": "cpu", "index": None, "vram_total": 25276502016, "vram_free": 23176331264,
                 "torch_vram_total": 25276502016, "torch_vram_free": 23176331264}],
}
MODEL_FOLDERS = ["checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models", "clip_vision",
                 "style_models", "embeddings", "diffusers", "vae_approx", "controlnet", "gligen", "upscale_models",
                 "latent_upscale_models", "custom_nodes", "hypernetworks", "photomaker", "classifiers",
                 "model_patches", "audio_encoders"]
EXTENSIONS = ["/extensions/core/groupNode.js", "/extensions/core/clipspace.js", "/extensions/core/widgetInputs.js"]
INDEX_HTML = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"UTF-8\"><title>ComfyUI</title></head>"
              "<body class=\"litegraph grid\"><div id=\"vue-app\"></div></body></html>\n")
FOREIGN_HTML = ("<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head><body><h1>Welcome to nginx!</h1>"
                "<p>If you see this page, the nginx web server is successfully installed.</p></body></html>\n")
PROXY_ERROR_HTML = ("<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n"
                    "<center><h1>{status}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")


class WsConn:
    def __init__(self, ws: web.WebSocketResponse, sid: str, request: web.Request):
        self.ws = ws
        self.sid = sid
        self.request = request
        self.frames = 0

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (a crash, a proxy cut)."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()


def server_features(state: ServerState) -> dict:
    return {"supports_preview_metadata": True, "max_upload_size": state.config["max_upload_size"],
            "extension": {"manager": {"supports_v4": True}}}


# ---- origin check (server.create_origin_only_middleware) ----------------------------------

def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"  # the only name that resolves to loopback here; no DNS


def origin_rejected(request: web.Request) -> bool:
    if "Host" not in request.headers or "Origin" not in request.headers:
        return False
    host_domain = request.headers["Host"].lower()
    parsed = urllib.parse.urlparse(request.headers["Origin"])
    origin_domain = parsed.netloc.lower()
    host_parsed = urllib.parse.urlsplit("//" + host_domain)
    loopback = is_loopback(host_parsed.hostname)
    if parsed.port is None:
        host_domain = host_parsed.hostname
    if host_parsed.port is None:
        origin_domain = parsed.hostname
    if loopback and host_domain and origin_domain:
        return host_domain != origin_domain
    return False


# ---- middleware ------------------------------------------------------------------------

def route_keys(request: web.Request) -> tuple[str, str]:
    """("GET /history/{id}", "GET /api/history/{id}"): the route template with and without /api."""
    route = request.match_info.route
    resource = getattr(route, "resource", None)
    template = resource.canonical if resource is not None else request.path
    if template == "/{tail:.*}":
        template = request.path
    raw = f"{request.method} {template}"
    if template.startswith("/api/"):
        template = template[4:]
    return f"{request.method} {template}", raw


def status_response(status: int) -> web.Response:
    if status == 500:
        return web.Response(status=500, text="500 Internal Server Error\n\nServer got itself in trouble")
    if status in (502, 503, 504):
        phrase = {502: "502 Bad Gateway", 503: "503 Service Temporarily Unavailable",
                  504: "504 Gateway Time-out"}[status]
        return web.Response(status=status, text=PROXY_ERROR_HTML.format(status=phrase), content_type="text/html")
    return web.Response(status=status)


def make_middleware(state: ServerState, token: str | None, require_header: tuple[str, str] | None):
    @web.middleware
    async def middleware(request: web.Request, handler):
        if request.path.startswith("/_test/"):
            return await handler(request)
        key, raw = route_keys(request)
        state.count_request(key, raw)
        cfg = state.config
        if cfg.get("html_everywhere"):
            return web.Response(text=FOREIGN_HTML, content_type="text/html")
        if token is not None and request.headers.get("Authorization") != f"Bearer {token}":
            return web.Response(status=401, text="401: Unauthorized", headers={"WWW-Authenticate": "Bearer"})
        if require_header is not None and request.headers.get(require_header[0]) != require_header[1]:
            return web.Response(status=401, text="401: Unauthorized")
        if origin_rejected(request):
            return web.Response(status=403)
        if request.method == "OPTIONS":
            return web.Response()
        delay = (cfg.get("route_delay") or {}).get(key)
        if delay:
            await asyncio.sleep(float(delay))
        status = (cfg.get("route_status") or {}).get(key)
        if status is None and key == "GET /history/{id}":
            status = cfg.get("history_status")
        if status is None and key in ("GET /view", "HEAD /view"):
            status = cfg.get("view_status")
        if status:
            return status_response(int(status))
        if key in (cfg.get("non_json") or []) or (cfg.get("history_html") and key == "GET /history/{id}"):
            return web.Response(text=FOREIGN_HTML, content_type="text/html")
        hostile = (cfg.get("hostile") or {}).get(key)
        if hostile:
            return await hostile_response(request, handler, hostile)
        return await handler(request)
    return middleware


# ---- a hostile or broken server (the "hostile" config knob) ---------------------------------

async def hostile_response(request: web.Request, handler, spec: dict) -> web.StreamResponse:
    if "body" in spec:
        return web.json_response(spec["body"], status=int(spec.get("status", 200)))
    if "raw" in spec:
        return web.Response(text=spec["raw"], status=int(spec.get("status", 200)),
                            content_type=spec.get("content_type", "application/json"))
    if "gzip_bomb" in spec:
        return web.Response(body=gzip_spaces(int(spec["gzip_bomb"])), content_type="application/json",
                            headers={"Content-Encoding": "gzip"})
    if "deep" in spec:
        return web.Response(text="[" * int(spec["deep"]), content_type="application/json")
    real = await handler(request)
    body = await response_bytes(real)
    if "patch" in spec:
        data = json.loads(body)
        target = data
        if request.match_info.get("id") and isinstance(data.get(request.match_info["id"]), dict):
            target = data[request.match_info["id"]]
        if isinstance(target, dict):
            target.update(spec["patch"])
            body = json.dumps(data).encode()
    if "pad" in spec:
        body += b" " * int(spec["pad"])
    headers = {"Content-Type": real.headers.get("Content-Type", "application/json")}
    headers.update(spec.get("headers") or {})
    if "trickle_headers" in spec:
        return await trickle_raw(request, real.status, headers, body, float(spec["trickle_headers"]))
    if "trickle" in spec:
        resp = web.StreamResponse(status=real.status, headers=headers)
        await resp.prepare(request)
        step = max(1, int(spec.get("chunk", 1)))
        pause = step / float(spec["trickle"])
        for i in range(0, len(body), step):
            await resp.write(body[i:i + step])
            await asyncio.sleep(pause)
        await resp.write_eof()
        return resp
    return web.Response(body=body, status=real.status, headers=headers)


@functools.lru_cache(maxsize=4)
def gzip_spaces(n: int) -> bytes:
    """gzip of n spaces (a bomb: ~1 MB that inflates to 1 GB). One fully flushed deflate block of
    1 MiB of spaces is repeated: blocks after a full flush never refer back, so the stream is valid."""
    import struct
    import zlib
    mib = 1 << 20
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(b" " * mib) + comp.flush(zlib.Z_FULL_FLUSH)
    tail_comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = tail_comp.compress(b" " * (n % mib)) + tail_comp.flush()
    crc = 0
    piece = b" " * mib
    for _ in range(n // mib):
        crc = zlib.crc32(piece, crc)
    crc = zlib.crc32(b" " * (n % mib), crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + block * (n // mib) + tail + struct.pack("<II", crc & 0xFFFFFFFF, n & 0xFFFFFFFF)


async def response_bytes(resp: web.StreamResponse) -> bytes:
    if isinstance(resp, web.FileResponse):
        with open(resp._path, "rb") as fh:   # noqa: SIM115 - test server
            return fh.read()
    return bytes(resp.body or b"") if isinstance(resp, web.Response) else b""


async def trickle_raw(request: web.Request, status: int, headers: dict, body: bytes, rate: float):
    """Write the whole HTTP answer, status line and headers included, `rate` bytes a second."""
    transport = request.transport
    head = f"HTTP/1.1 {status} OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    data = head.encode() + body
    for i in range(len(data)):
        if transport is None or transport.is_closing():
            break
        transport.write(data[i:i + 1])
        await asyncio.sleep(1.0 / rate)
    if transport is not None:
        transport.close()
    raise asyncio.CancelledError()


# ---- websocket -------------------------------------------------------------------------

async def send_frame(state: ServerState, conn: WsConn, payload: str | bytes) -> None:
    if state.config.get("ws_silent") or conn.ws.closed:
        return
    try:
        if state.config.get("ws_trickle"):
            await trickle_frame(conn, payload, float(state.config["ws_trickle"]))
        elif isinstance(payload, (bytes, bytearray)):
            await conn.ws.send_bytes(bytes(payload))
        else:
            await conn.ws.send_str(payload)
    except (ConnectionError, RuntimeError):
        return
    conn.frames += 1
    limit = state.config.get("ws_drop_after")
    if limit is not None and conn.frames >= int(limit):
        conn.abort()


async def trickle_frame(conn: WsConn, payload: str | bytes, pause: float) -> None:
    """One unmasked websocket frame written byte by byte (a server stalling mid-frame)."""
    data = payload.encode() if isinstance(payload, str) else bytes(payload)
    opcode = 0x1 if isinstance(payload, str) else 0x2
    if len(data) < 126:
        head = bytes([0x80 | opcode, len(data)])
    elif len(data) < 65536:
        head = bytes([0x80 | opcode, 126]) + len(data).to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 127]) + len(data).to_bytes(8, "big")
    transport = conn.request.transport
    for i, byte in enumerate(head + data):
        if transport is None or transport.is_closing():
            return
        transport.write(bytes([byte]))
        if i >= 1:
            await asyncio.sleep(pause)


async def send_event(state: ServerState, conn: WsConn, event: str, data: Any) -> None:
    await send_frame(state, conn, json.dumps({"type": event, "data": data}))


async def publisher(state: ServerState) -> None:
    """Deliver send_sync messages in order: to one sid, or to every registered socket."""
    while True:
        event, data, sid, epoch = await state.outbox.get()
        if epoch != state.epoch:
            continue
        payload = data if event == BINARY else json.dumps({"type": event, "data": data})
        if event == BINARY and state.config.get("ws_binary_delay"):
            await asyncio.sleep(float(state.config["ws_binary_delay"]))
        if sid is None:
            targets = list(state.sockets.values())
        elif sid in state.sockets:
            targets = [state.sockets[sid]]
        else:
            continue
        for conn in targets:
            await send_frame(state, conn, payload)


def websocket_handler(state: ServerState):
    async def handler(request: web.Request) -> web.StreamResponse:
        if state.config.get("ws_redirect"):
            raise web.HTTPFound(state.config["ws_redirect"])
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.rel_url.query.get("clientId", "")
        if sid:
            state.sockets.pop(sid, None)  # reusing a session: the old socket is forgotten, not closed
        else:
            sid = uuid.uuid4().hex
        conn = WsConn(ws, sid, request)
        state.sockets[sid] = conn
        state.sockets_metadata[sid] = {"feature_flags": {}}
        state.connections.add(conn)
        state.stats_data["ws_connects"] += 1
        try:
            await send_event(state, conn, "status", {"status": state.queue_info(), "sid": sid})
            for extra in state.config.get("ws_extra") or []:
                await send_frame(state, conn, json.dumps(extra))
            if state.current_client_id == sid and state.last_node_id is not None:
                await send_event(state, conn, "executing", {"node": state.last_node_id})
            first = True
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                    if first and data.get("type") == "feature_flags":
                        state.sockets_metadata.setdefault(sid, {})["feature_flags"] = data.get("data", {})
                        await send_event(state, conn, "feature_flags", server_features(state))
                    first = False
                except json.JSONDecodeError:
                    pass
        finally:
            # ComfyUI pops by sid: if a newer socket took this sid, it is unregistered too (the bug).
            state.sockets.pop(sid, None)
            state.sockets_metadata.pop(sid, None)
            state.connections.discard(conn)
        return ws
    return handler


def drop_all_websockets(state: ServerState) -> None:
    for conn in list(state.connections):
        conn.abort()
    state.sockets.clear()
    state.sockets_metadata.clear()


# ---- ComfyUI routes -----------------------------------------------------------------------

def comfy_routes(state: ServerState) -> list[tuple[str, str, Any]]:
    async def system_stats(request):
        return web.json_response(SYSTEM_STATS)

    async def get_prompt(request):
        return web.json_response(state.queue_info())

    async def post_prompt(request):
        request = request.clone(client_max_size=int(state.config["max_upload_size"]))
        json_data = await request.json()
        status, body = state.submit(json_data)
        return web.json_response(body, status=status)

    async def get_queue(request):
        return web.json_response(state.queue_snapshot())

    async def post_queue(request):
        state.queue_post(await request.json())
        return web.Response(status=200)

    async def get_history(request):
        max_items = request.rel_url.query.get("max_items")
        offset = request.rel_url.query.get("offset")
        return web.json_response(state.history_get(None, int(max_items) if max_items is not None else None,
                                                   int(offset) if offset is not None else -1))

    async def get_history_id(request):
        return web.json_response(state.history_get(request.match_info["id"]))

    async def post_history(request):
        state.history_post(await request.json())
        return web.Response(status=200)

    async def post_interrupt(request):
        try:
            json_data = await request.json()
        except json.JSONDecodeError:
            json_data = {}
        state.interrupt(json_data.get("prompt_id"))
        return web.Response(status=200)

    async def object_info(request):
        body = state.registry.object_info_bytes(state.files.input_images())
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    async def object_info_class(request):
        name = request.match_info["cls"]
        info = state.registry.get(name)
        if info is None:
            return web.json_response({})
        return web.json_response({name: state.registry.with_input_files(name, info, state.files.input_images())})

    async def features(request):
        return web.json_response(server_features(state))

    async def embeddings(request):
        return web.json_response([])

    async def models(request):
        return web.json_response(MODEL_FOLDERS)

    async def models_folder(request):
        if request.match_info["folder"] not in MODEL_FOLDERS:
            return web.Response(status=404)
        return web.json_response([])

    async def extensions(request):
        return web.json_response(EXTENSIONS)

    async def index(request):
        return web.Response(text=INDEX_HTML, content_type="text/html")

    async def upload_image(request):
        request = request.clone(client_max_size=int(state.config["max_upload_size"]))
        post = await request.post()
        status, body = state.files.upload(post)
        return web.json_response(body) if body is not None else web.Response(status=status)

    return [
        ("GET", "/system_stats", system_stats), ("GET", "/prompt", get_prompt), ("POST", "/prompt", post_prompt),
        ("GET", "/queue", get_queue), ("POST", "/queue", post_queue), ("GET", "/history", get_history),
        ("GET", "/history/{id}", get_history_id), ("POST", "/history", post_history),
        ("POST", "/interrupt", post_interrupt), ("GET", "/view", view_handler(state)),
        ("POST", "/upload/image", upload_image), ("GET", "/object_info", object_info),
        ("GET", "/object_info/{cls}", object_info_class), ("GET", "/features", features),
        ("GET", "/embeddings", embeddings), ("GET", "/models", models), ("GET", "/models/{folder}", models_folder),
        ("GET", "/extensions", extensions), ("GET", "/ws", websocket_handler(state)), ("GET", "/", index),
    ]


def view_handler(state: ServerState):
    """server.view_image: annotated names, traversal checks, re-encoded previews, FileResponse."""
    async def handler(request: web.Request):
        query = request.rel_url.query
        if "filename" not in query:
            return web.Response(status=404)
        filename, output_dir = state.files.annotated_filepath(query["filename"])
        if not filename:
            return web.Response(status=400)
        if filename[0] == "/" or ".." in filename:
            return web.Response(status=400)
        if output_dir is None:
            output_dir = state.files.get_directory_by_type(query.get("type", "output"))
        if output_dir is None:
            return web.Response(status=400)
        if "subfolder" in query:
            full = os.path.join(output_dir, query["subfolder"])
            if os.path.commonpath((os.path.abspath(full), output_dir)) != output_dir:
                return web.Response(status=403)
            output_dir = full
        filename = os.path.basename(filename)
        path = os.path.join(output_dir, filename)
        if not os.path.isfile(path):
            return web.Response(status=404)
        disposition = {"Content-Disposition": f"filename=\"{filename}\""}
        if "preview" in query or query.get("channel") in ("rgb", "a"):
            return reencoded(path, query, disposition)
        if state.config.get("view_truncate"):
            return await truncated(request, path, disposition)
        return web.FileResponse(path, headers={**disposition, "Content-Type": media.content_type(filename)})
    return handler


def reencoded(path: str, query, disposition: dict) -> web.Response:
    with open(path, "rb") as fh:
        data = fh.read()
    info = media.png_info(data)
    size = (info[0], info[1]) if info else media.jpeg_size(data)
    if size is None:
        raise ValueError(f"cannot identify image file {path!r}")  # PIL would fail: plain 500
    if "preview" in query:
        parts = query["preview"].split(";")
        fmt = parts[0] if parts[0] in ("webp", "jpeg") and "a" not in query.get("channel", "") else "webp"
        body = media.webp(*size) if fmt == "webp" else media.jpeg(*size)
        return web.Response(body=body, content_type=f"image/{fmt}", headers=disposition)
    rgb = info[2] if info else (128, 128, 128)
    if query["channel"] == "a":
        alpha = round(255 * info[3]) if info and info[3] is not None else 255
        rgb = (alpha, alpha, alpha)
    return web.Response(body=media.png(size[0], size[1], rgb), content_type="image/png", headers=disposition)


async def truncated(request: web.Request, path: str, disposition: dict) -> web.StreamResponse:
    """Announce the full Content-Length, send part of the body, then cut the connection."""
    with open(path, "rb") as fh:
        data = fh.read()
    setting = request.app["sim_state"].config.get("view_truncate")
    sent = len(data) // 2 if setting is True else max(0, min(int(setting), len(data) - 1))
    resp = web.StreamResponse(status=200, headers={**disposition, "Content-Type": media.content_type(path)})
    resp.content_length = len(data)
    await resp.prepare(request)
    await resp.write(data[:sent])
    await resp.drain() if hasattr(resp, "drain") else None
    request.transport.abort()
    raise asyncio.CancelledError()


async def not_found(request: web.Request) -> web.Response:
    """ComfyUI's static file route answers GETs it cannot serve with an empty 404."""
    return web.Response(status=404, content_type="application/octet-stream")


# ---- /_test control ------------------------------------------------------------------------

def control_routes(state: ServerState) -> list[tuple[str, str, Any]]:
    async def get_stats(request):
        return web.json_response(state.stats())

    async def get_config(request):
        return web.json_response(state.config)

    async def post_config(request):
        patch = await request.json()
        try:
            return web.json_response(state.update_config(patch))
        except KeyError as exc:
            return web.json_response({"error": str(exc.args[0])}, status=400)

    async def post_reset(request):
        state.reset()
        drop_all_websockets(state)
        return web.json_response({"ok": True})

    async def post_release(request):
        state.release()
        return web.json_response({"ok": True})

    async def post_restart(request):
        body = await request.read()
        down = float((json.loads(body) if body else {}).get("down_seconds") or 0)
        state.restart()
        drop_all_websockets(state)
        if down > 0:
            asyncio.get_running_loop().create_task(bounce_listener(request.app, down))
        return web.json_response({"ok": True, "down_seconds": down})

    async def get_files(request):
        return web.json_response(state.files.listing())

    async def post_fill_history(request):
        try:
            n = int(request.rel_url.query.get("n", "0"))
        except ValueError:
            return web.json_response({"error": "n must be a whole number"}, status=400)
        return web.json_response({"ok": True, "history": state.fill_history(n)})

    return [("GET", "/_test/stats", get_stats), ("GET", "/_test/config", get_config),
            ("POST", "/_test/config", post_config), ("POST", "/_test/reset", post_reset),
            ("POST", "/_test/release", post_release), ("POST", "/_test/restart", post_restart),
            ("GET", "/_test/files", get_files), ("POST", "/_test/fill_history", post_fill_history)]


async def bounce_listener(app: web.Application, down: float) -> None:
    """Close the listening socket (connection refused) for `down` seconds, then listen again."""
    await asyncio.sleep(0.05)  # let the /_test/restart answer go out first
    runtime = app["sim_runtime"]
    await runtime["site"].stop()
    for handler in runtime["runner"].server.connections:
        handler.force_close()
    await asyncio.sleep(down)
    site = web.TCPSite(runtime["runner"], runtime["host"], runtime["port"])
    await site.start()
    runtime["site"] = site


# ---- assembly ------------------------------------------------------------------------------

def create_app(state: ServerState, token: str | None = None,
               require_header: tuple[str, str] | None = None) -> web.Application:
    # Bodies are limited per route from the live config (max_upload_size), not here.
    app = web.Application(client_max_size=1 << 31, middlewares=[make_middleware(state, token, require_header)])
    app["sim_state"] = state
    routes = comfy_routes(state)
    for prefix in ("/api", ""):  # ComfyUI adds the /api copies first
        for method, path, handler in routes:
            full = prefix + path if path != "/" else prefix + "/"
            if method == "GET":
                app.router.add_get(full, handler)
            else:
                app.router.add_route(method, full, handler)
    for method, path, handler in control_routes(state):
        app.router.add_route(method, path, handler)

    async def start_background(app):
        state.loop = asyncio.get_running_loop()
        state.outbox = asyncio.Queue()
        app["sim_publisher"] = asyncio.get_running_loop().create_task(publisher(state))
        state.start()

    async def stop_background(app):
        state.stop()
        app["sim_publisher"].cancel()
        drop_all_websockets(state)

    app.on_startup.append(start_background)
    app.on_shutdown.append(stop_background)
    return app


def finalize(app: web.Application) -> None:
    """Add the catch-all 404 after every other route (plugins register theirs before this)."""
    app.router.add_get("/{tail:.*}", not_found)
