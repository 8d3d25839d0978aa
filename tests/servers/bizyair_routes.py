"""BizyAir behaviour for the simulated ComfyUI server (loaded by comfyui_server.py at start-up).

Reproduces what a real BizyAir container (ComfyUI 0.8.0 + bizyengine 1.2.114) did in the captures
copied to tests/fixtures/bizyair/ (key_routes.json, execution_errors.json): the /bizyair/* key
routes, and which BizyAir node fails first, with which exception, per key state.

Test control, through POST /_test/config:

    bizyair_state        "stub_validkey" (default) | "nokey" | "fakekey" | "stub_nokey" | "stub_wrongkey"
                         | "stub_hang" | "server_mode" | "not_installed" | "absent"
        nokey / fakekey        no internet: no key / a key set (validation fails with a network error)
        stub_*                 a reachable cloud that knows no key / rejects the key / accepts it
        stub_hang              the key works, but the first cloud call never returns: the node
                               ignores /interrupt until POST /_test/release, then fails with
                               ConnectionResetError (a network that drops packets)
        server_mode            BIZYAIR_SERVER_MODE: no key in the container; each prompt must carry
                               the key in node "bizyair_magic_node" (BizyAir_PassParameter, _meta.api_key)
        not_installed          BizyAir failed to import (mcp 2.x): no classes, /bizyair/get_api_key
                               still answers, the other routes 404
        absent                 plain ComfyUI: no classes, no /bizyair routes
                         Setting the state also sets `bizyair_installed` (classes in object_info
                         and validation) unless the same patch sets it explicitly.
    bizyair_key          the container's key (None: sk-testkey000 for fakekey/stub_wrongkey,
                         sk-validfake000 for stub_validkey/stub_hang). Wrong-key errors echo it
                         in full, with ANSI colour codes, as the real container does.
    bizyair_valid_keys   keys the simulated cloud accepts (server-mode prompts, set_api_key)
    bizyair_api_seconds  a third-party API node's wait before its result (10 s in reality)
    bizyair_placeholder  third-party API nodes "fail while a sibling still runs": they return the
                         stock placeholder image (SaveImage/PreviewImage write it as ComfyUI would,
                         re-encoded with the prompt metadata) and the error on their text output
    bizyair_api_errors   {class_type or "*": kind}: that third-party API node fails the way the cloud
                         reports it, kind one of "moderation", "balance", "timeout", "service"
                         (texts in API_ERRORS)

Third-party API nodes return what their inputs ask for (see _api_result): an edit or a generated
image sized by the node's aspect ratio (or the first input image's, for "auto") and resolution, as
many as its count input (variants / max_images / n) says; a video (SaveVideo writes a real MP4
header: size, duration and frame rate) sized by its aspect ratio (or the first frame's) and
resolution, as long as its duration. Image sizes are scaled down (1K → 1024 px on the long side,
each step up adds 256 px) so tests stay fast; video sizes are real (MP4 headers cost nothing).
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from aiohttp import web
from comfysim import media
from comfysim import nodes as sim_nodes

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "bizyair"

STATES = ("stub_validkey", "nokey", "fakekey", "stub_nokey", "stub_wrongkey", "stub_hang",
          "server_mode", "not_installed", "absent")
NOT_LOADED = ("not_installed", "absent")
OFFLINE = ("nokey", "fakekey", "not_installed")
KEY_WORKS = ("stub_validkey", "stub_hang")
DEFAULT_KEYS = {"fakekey": "sk-testkey000", "stub_wrongkey": "sk-testkey000",
                "stub_validkey": "sk-validfake000", "stub_hang": "sk-validfake000"}
CONFIG_DEFAULTS = {
    "bizyair_state": "stub_validkey",
    "bizyair_key": None,
    "bizyair_valid_keys": ["sk-validfake000"],
    "bizyair_api_seconds": 0.0,
    "bizyair_placeholder": False,
    "bizyair_api_errors": {},
}

MAGIC_NODE = "bizyair_magic_node"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

# ---- texts, as captured -------------------------------------------------------------------------

NETWORK = "网络连接异常，请检查网络后重试。"
AUTH = "API 密钥无效或已过期，请前往 https://cloud.siliconflow.cn 获取密钥，并点击右下角相应按钮设置密钥。"
CONNECTION_ERROR = f"\x1b[91mConnection error: {NETWORK}\x1b[0m"
DEPRECATED = ("This node is deprecated, please use BizyAirPlus at https://plugin.bizyair.com/ instead \n"
              " 该节点已经停止支持，我们建议您使用新的BizyAirPlus插件来替代BizyAir插件，详情: https://plugin.bizyair.com/")
DNS_ERROR = "Cannot connect to host api.bizyair.cn:443 ssl:default [Name or service not known]"
RESET = "[Errno 104] Connection reset by peer"
NO_COOKIE_KEY = "No api key found in cookies, please refer to cloud.siliconflow.cn to get the key"
NO_KEY_GIVEN = "No API key provided, please refer to cloud.siliconflow.cn to get the key"
WRONG_KEY_GIVEN = "Wrong API key provided, please refer to cloud.siliconflow.cn to get the key"
LOADED = "Key has been loaded from the api_key.ini file"
USER_ERRORS = "bizyengine.core.common.errors."


# How a cloud task of a third-party API node fails, per kind. Assumed shapes, not recorded from the
# real service: bizyengine 1.2.114's error texts with their "[错误码 N]" suffix (core/common/errors.py:
# codes 20049/20050/60000 all read "service unavailable"; field notes §4.3), the cloud's moderation
# code 20021, and the task wait's TimeoutError.
SERVICE_TEXT = "该节点的后端服务暂不可用或已下线，请稍后重试或改用其他节点。"
API_ERRORS = {
    "moderation": ("Exception", "BizyAir task failed: 内容审核未通过，请修改提示词或输入图片后重试。[错误码 20021]"),
    "balance": (USER_ERRORS + "BizyAirUserError", f"{SERVICE_TEXT}[错误码 20049]"),
    "timeout": ("TimeoutError", "Timeout waiting for task to finish"),
    "service": (USER_ERRORS + "BizyAirUserError", f"{SERVICE_TEXT}[错误码 60000]"),
}


def wrong_key(key: str) -> str:
    return f"\x1b[91mError validating API key: {key}, error: {AUTH}\x1b[0m"


# bizyengine/core/nodes_base.py BizyAirMiscBaseNode: FUNCTION replaced by a stub that raises
# (static scan of 1.2.114, deprecated_nodes_static.json).
DEPRECATED_CLASSES = frozenset({
    "BizyAirBAE_NormalMapPreprocessor", "BizyAirBinaryPreprocessor", "BizyAirCannyEdgePreprocessor",
    "BizyAirColorPreprocessor", "BizyAirDWPreprocessor", "BizyAirDepthAnythingV2Preprocessor",
    "BizyAirFakeScribblePreprocessor", "BizyAirGenerateLightningImage", "BizyAirHEDPreprocessor",
    "BizyAirJoyCaption", "BizyAirLeReS_DepthMapPreprocessor", "BizyAirLineArtPreprocessor",
    "BizyAirM_LSDPreprocessor", "BizyAirMetric3D_DepthMapPreprocessor", "BizyAirMetric3D_NormalMapPreprocessor",
    "BizyAirMiDaS_DepthMapPreprocessor", "BizyAirMiDaS_NormalMapPreprocessor",
    "BizyAirOneFormer_ADE20K_SemSegPreprocessor", "BizyAirOneFormer_COCO_SemSegPreprocessor",
    "BizyAirOpenposePreprocessor", "BizyAirPiDiNetPreprocessor", "BizyAirSAMPreprocessor",
    "BizyAirScribblePreprocessor", "BizyAirSegmentAnythingPointBox", "BizyAirSegmentAnythingText",
    "BizyAirSiliconCloudLLMAPI", "BizyAirSiliconCloudVLMAPI", "BizyAirTilePreprocessor",
    "BizyAirUniFormer_SemSegPreprocessor", "BizyAirZoe_DepthMapPreprocessor",
    "BizyAir_MinusZoneChatGLM3TextEncode",
})
# Has its own FUNCTION that never asks for the key (misc/nodes.py), so it runs in every state.
KEYLESS_CLASSES = frozenset({"BizyAir_CheckpointLoaderSimple", "BizyAir_PassParameter"})
# core/data_types.py is_send_request_datatype: a node whose outputs are all of these calls the cloud.
SEND_REQUEST_TYPES = frozenset({"IMAGE", "LATENT", "MASK", "STRING", "FLOAT", "INT"})
API_CATEGORY = "☁️BizyAir/External APIs"


@lru_cache(maxsize=1)
def captured_tracebacks() -> dict[tuple[str, bool], list[str]]:
    """(exception_type, is_api_node) → a traceback a real container sent for it."""
    errors = json.loads((FIXTURES / "execution_errors.json").read_text("utf-8"))["errors"]
    out: dict[tuple[str, bool], list[str]] = {}
    for error in errors:
        if error["terminal"] == "execution_error":
            is_api = error["node_type"] == "BizyAir_NanoBanana"
            out.setdefault((error["exception_type"], is_api), error["traceback"])
    return out


def traceback_for(exception_type: str, is_api: bool) -> list[str]:
    found = captured_tracebacks()
    return found.get((exception_type, is_api)) or found.get((exception_type, not is_api)) or []


# ---- the state -----------------------------------------------------------------------------------

class Bizy:
    """Reads the live config of one server: state, keys, knobs."""

    def __init__(self, server_state):
        self.server = server_state

    @property
    def config(self) -> dict:
        return self.server.config

    @property
    def state(self) -> str:
        state = self.config.get("bizyair_state") or "stub_validkey"
        if not self.config.get("bizyair_installed", True) and state not in NOT_LOADED:
            return "not_installed"
        return state

    @property
    def key(self) -> str | None:
        return self.config.get("bizyair_key") or DEFAULT_KEYS.get(self.state)

    def accepts(self, key: str | None) -> bool:
        return bool(key) and key in (self.config.get("bizyair_valid_keys") or [])


# ---- /bizyair routes -----------------------------------------------------------------------------

def _empty_404() -> web.Response:
    # What aiohttp answers for a route nobody registered (captured on the broken install).
    return web.Response(status=404, content_type="application/octet-stream")


def _invalid_key() -> web.Response:
    return web.json_response({"message": "无效的API密钥", "code": 401000, "data": None}, status=401)


def _text(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status)


def routes(bizy: Bizy):
    async def user_info(request):
        state = bizy.state
        if state in NOT_LOADED or state == "server_mode":  # not registered in server mode (server.py)
            return _empty_404()
        if state in KEY_WORKS:
            return web.json_response({"message": "成功", "code": 20000,
                                      "data": {"name": "stub-user", "email": "stub@example.invalid", "level": 1}})
        return _invalid_key()

    async def user_wallet(request):
        state = bizy.state
        if state in NOT_LOADED or state == "server_mode":
            return _empty_404()
        if state in KEY_WORKS:
            return web.json_response({"message": "stub: no such route", "code": 404, "data": None}, status=404)
        return _invalid_key()

    async def server_mode(request):
        if bizy.state in NOT_LOADED:
            return _empty_404()
        return web.json_response({"message": "成功", "code": 20000,
                                  "data": {"server_mode": bizy.state == "server_mode"}})

    async def get_api_key(request):
        state, cookie = bizy.state, request.cookies.get("api_key")
        if state == "absent":
            return _empty_404()
        if state in KEY_WORKS:
            return _text(LOADED)
        if state == "fakekey":
            return _text(CONNECTION_ERROR, 500)           # validates the env key, not the cookie
        if state == "stub_wrongkey":
            return _text(wrong_key(bizy.key), 500)        # echoes the whole env key
        if not cookie:
            return _text(NO_COOKIE_KEY, 404)
        if state == "server_mode":
            return _text("Cannot set api key", 500)       # set_api_key() returns None in server mode
        if state in OFFLINE:
            return _text(CONNECTION_ERROR, 500)
        if not bizy.accepts(cookie):
            return _text(wrong_key(cookie), 500)
        return _text("Key has been loaded from the cookies")

    async def set_api_key(request):
        state = bizy.state
        if state == "absent":
            return _empty_404()
        # aiohttp's request.post() reads form bodies only, like the real route: JSON means "no key".
        form = await request.post() if request.content_type in FORM_TYPES else {}
        key = form.get("api_key") if form else None
        if not key:
            return _text(NO_KEY_GIVEN, 400)
        if state == "server_mode":
            return _text(WRONG_KEY_GIVEN, 400)
        if state in OFFLINE:
            return _text(CONNECTION_ERROR, 500)
        if not bizy.accepts(key):
            return _text(wrong_key(key), 500)
        # Accepted: written to api_key.ini and used from now on.
        bizy.config.update(bizyair_state="stub_validkey", bizyair_key=key)
        return _text("ok")

    return [("GET", "/bizyair/user/info", user_info), ("GET", "/bizyair/user/wallet", user_wallet),
            ("GET", "/bizyair/server_mode", server_mode), ("GET", "/bizyair/get_api_key", get_api_key),
            ("POST", "/bizyair/set_api_key", set_api_key)]


# ---- node executors ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlaceholderImage(sim_nodes.SimImage):
    """The IMAGE a third-party API node returns instead of failing (placeholder.png, 600×400)."""


def node_executor(bizy: Bizy):
    def run(inputs: dict, ctx):
        info = ctx.info or {}
        class_type = ctx.class_type
        is_api = str(info.get("category", "")).startswith(API_CATEGORY)
        sends = is_api or _sends_request(info)
        state = bizy.state

        def fail(exception_type: str, message: str, current_inputs: dict | None = None):
            ctx.fail(exception_type, message, traceback_for(exception_type, is_api), current_inputs)

        if class_type in DEPRECATED_CLASSES:
            fail("Exception", DEPRECATED)
        if class_type in KEYLESS_CLASSES:
            return None
        # Every other node first asks for the key (pop_api_key_and_prompt_id → get_api_key), which
        # validates it against the cloud while it is not known to be valid.
        if state == "fakekey":
            fail("ValueError", CONNECTION_ERROR)
        if state == "stub_wrongkey":
            fail("ValueError", wrong_key(bizy.key))
        if not sends:
            return None
        # An API node's async path reports no current_inputs (captured), the others do.
        async_inputs = {} if is_api else None
        if state == "server_mode":
            magic = (ctx.prompt.get(MAGIC_NODE) or {}).get("_meta") or {}
            if "api_key" not in magic:
                fail("KeyError", "'api_key'")
            if not bizy.accepts(magic.get("api_key")):
                fail(USER_ERRORS + "BizyAirAuthError", AUTH, async_inputs)
        elif state == "nokey":
            if is_api:
                fail("aiohttp.client_exceptions.ClientConnectorDNSError", DNS_ERROR, {})
            fail(USER_ERRORS + "BizyAirUserError", NETWORK)
        elif state == "stub_nokey":
            fail(USER_ERRORS + "BizyAirAuthError", AUTH, async_inputs)
        elif state == "stub_hang":
            _hang_until_released(ctx)
            fail("ConnectionResetError", RESET)
        elif state in NOT_LOADED:
            fail("KeyError", repr(class_type))  # cannot happen: validation rejects the class first
        if is_api:
            return _api_result(bizy, inputs, ctx)
        return None

    return run


def _sends_request(info: dict) -> bool:
    outputs = info.get("output") or []
    return bool(outputs) and all(isinstance(t, str) and t in SEND_REQUEST_TYPES for t in outputs)


def _hang_until_released(ctx) -> None:
    """urllib with timeout=3600 on a silent peer: deaf to /interrupt, ends when the peer drops."""
    server = ctx.state
    generation = server.release_gen
    while server.release_gen == generation:
        ctx.check_abandoned()
        ctx.sleep(0.02)


def _api_result(bizy: Bizy, inputs: dict, ctx):
    ctx.sleep(float(bizy.config.get("bizyair_api_seconds") or 0))
    errors = bizy.config.get("bizyair_api_errors") or {}
    kind = errors.get(ctx.class_type) or errors.get("*")
    if kind:
        exception_type, message = API_ERRORS[kind]
        ctx.fail(exception_type, message, traceback_for(exception_type, True), {})
    outputs = list(ctx.return_types)
    if bizy.config.get("bizyair_placeholder"):
        image = PlaceholderImage(600, 400, ((0xDD, 0xDD, 0xDD),))
        texts = ["BizyAir task failed: 请求处理失败，请稍后重试。如持续失败请联系 BizyAir 官方支持。[错误码 30040]", ""]
    else:
        image = _result_image(inputs, ctx)
        texts = ["", json.dumps([f"https://storage.bizyair.invalid/outputs/{ctx.signature[:16]}.png"])]
    result = []
    for type_name in outputs:
        if type_name == "IMAGE":
            result.append(image)
        elif type_name == "VIDEO":
            result.append(_result_video(inputs, ctx))
        elif type_name == "STRING":
            result.append(texts.pop(0) if texts else "")
        else:
            result.append(None)
    return tuple(result)


# ---- what a cloud model makes --------------------------------------------------------------

ASPECT_INPUTS = ("aspect_ratio", "ratio", "size")
RESOLUTION_INPUTS = ("resolution", "size")
COUNT_INPUTS = ("variants", "max_images", "n")
IMAGE_LONG_SIDE = {"1k": 1024, "2k": 1280, "3k": 1536, "4k": 1792}     # scaled down, see the docstring
VIDEO_SHORT_SIDE = {"2k": 1440, "4k": 2160}


def _input_images(inputs: dict) -> list:
    return [v for v in inputs.values() if isinstance(v, sim_nodes.SimImage)]


def _aspect(inputs: dict) -> tuple[int, int] | None:
    """The W:H the node asks for; None for auto / adaptive / none (the input image decides)."""
    for name in ASPECT_INPUTS:
        value = inputs.get(name)
        if isinstance(value, str) and value.count(":") == 1:
            w, h = value.split(":")
            if w.isdigit() and h.isdigit() and int(w) and int(h):
                return int(w), int(h)
    return None


def _from_input_image(inputs: dict) -> tuple[int, int]:
    found = _input_images(inputs)
    return (found[0].width, found[0].height) if found else (1, 1)


def _result_image(inputs: dict, ctx) -> sim_nodes.SimImage:
    aspect = _aspect(inputs) or _from_input_image(inputs)
    tier = next((str(inputs[n]).lower() for n in RESOLUTION_INPUTS
                 if str(inputs.get(n, "")).lower() in IMAGE_LONG_SIDE), "1k")
    long_side = IMAGE_LONG_SIDE[tier]
    w, h = aspect
    if w >= h:
        width, height = long_side, max(1, round(long_side * h / w))
    else:
        width, height = max(1, round(long_side * w / h)), long_side
    count = next((inputs[n] for n in COUNT_INPUTS if isinstance(inputs.get(n), int) and inputs[n] > 0), 1)
    colors = tuple(sim_nodes.color_from(ctx.signature[i:] + ctx.signature[:i]) for i in range(count))
    return sim_nodes.SimImage(width, height, colors)


def _result_video(inputs: dict, ctx) -> sim_nodes.SimVideo:
    size = str(inputs.get("size") or "").split("*")
    if len(size) == 2 and all(x.isdigit() for x in size):          # Wan's "1280*720"
        width, height = int(size[0]), int(size[1])
    else:
        w, h = _aspect(inputs) or _from_input_image(inputs)
        resolution = str(inputs.get("resolution") or "720p").lower()
        short = VIDEO_SHORT_SIDE.get(resolution) or (int(resolution[:-1]) if resolution[:-1].isdigit() else 720)
        width, height = (round(short * w / h), short) if w >= h else (short, round(short * h / w))
    duration = inputs.get("duration") if isinstance(inputs.get("duration"), int) else 5
    fps = inputs.get("fps") if isinstance(inputs.get("fps"), int) else 24
    frames = sim_nodes.SimImage(width, height, (sim_nodes.color_from(ctx.signature),) * (duration * fps))
    return sim_nodes.SimVideo(frames, float(fps))


# ---- placeholder files -----------------------------------------------------------------------

@lru_cache(maxsize=1)
def placeholder_rows() -> tuple[int, int, bytes]:
    """(width, height, filtered scanlines) of the stock placeholder (filter 0 on every row)."""
    data = (FIXTURES / "placeholder.png").read_bytes()
    width, height = struct.unpack(">II", data[16:24])
    pos, idat = 8, b""
    while pos < len(data):
        length, tag = struct.unpack(">I4s", data[pos:pos + 8])
        if tag == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def placeholder_png(texts: dict[str, str], level: int) -> bytes:
    """The placeholder as SaveImage writes it: same pixels, new compression, prompt metadata."""
    width, height, scanlines = placeholder_rows()
    header = media.chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
    meta = b"".join(media.text_chunk(k, v) for k, v in texts.items())
    return (media.PNG_SIGNATURE + header + meta + media.chunk(b"IDAT", zlib.compress(scanlines, level))
            + media.chunk(b"IEND", b""))


def placeholder_aware(original, kind: str):
    def run(inputs: dict, ctx):
        images = inputs.get("images")
        if not isinstance(images, PlaceholderImage):
            return original(inputs, ctx)
        texts = sim_nodes.png_texts(ctx)
        prefix = inputs.get("filename_prefix", "ComfyUI") if kind == "output" else sim_nodes.temp_prefix("ComfyUI")
        level = 4 if kind == "output" else 1
        saved = sim_nodes.save_files(ctx, prefix, kind, "png",
                                     [lambda name: placeholder_png(texts, level)] * images.batch)
        return {"ui": {"images": saved}}
    return run


# ---- wiring -----------------------------------------------------------------------------------

def register(app: web.Application, server_state) -> None:
    bizy = Bizy(server_state)
    server_state.add_config_defaults(CONFIG_DEFAULTS)
    _derive_installed(server_state)
    for method, path, handler in routes(bizy):
        app.router.add_route(method, path, handler)
    executor = node_executor(bizy)
    layer = server_state.registry.layers.get("bizyair", {})
    for class_type in layer:
        server_state.register_executor(class_type, executor)
    for class_type, kind in (("SaveImage", "output"), ("PreviewImage", "temp")):
        original = server_state.executors.get(class_type)
        if original is not None:
            server_state.register_executor(class_type, placeholder_aware(original, kind),
                                           cacheable=class_type not in server_state.not_cacheable)


def _derive_installed(server_state) -> None:
    """Setting bizyair_state also sets bizyair_installed, unless the patch says otherwise."""
    original = server_state.update_config

    def update_config(patch: dict) -> dict:
        if "bizyair_state" in patch:
            if patch["bizyair_state"] not in STATES:
                raise KeyError(f"unknown bizyair_state {patch['bizyair_state']!r}; known: {list(STATES)}")
            if "bizyair_installed" not in patch:
                patch = {**patch, "bizyair_installed": patch["bizyair_state"] not in NOT_LOADED}
        return original(patch)

    server_state.update_config = update_config
