"""A simulated ComfyUI 0.8.0 server for tests (aiohttp, one real process).

    python tests/servers/comfyui_server.py --port 0 [--token T] [--require-header 'Name: value']
                                           [--base-dir DIR] [--plugin FILE_OR_MODULE]... [--exit-with-parent]

Prints `listening 127.0.0.1:PORT` as its first stdout line and serves until SIGTERM/SIGINT.
Everything else goes to stderr. Behaviour follows the captures of a real ComfyUI 0.8.0
(the captures in tests/fixtures/captures/ and the team's ComfyUI protocol notes):

* Routes, with and without /api: GET /system_stats, GET/POST /prompt, GET/POST /queue, GET /history,
  GET /history/{id}, POST /history, POST /interrupt, GET|HEAD /view, POST /upload/image, GET /object_info,
  GET /object_info/{cls}, GET /features, /embeddings, /models, /models/{folder}, /extensions, GET /ws.
* POST /prompt validates synchronously against tests/fixtures/captures/object_info.json plus
  object_info_bizyair.json (ComfyUI's validate_prompt, same error bodies), then one worker thread runs
  prompts serially (front first). Model-free classes are simulated and write real files (PNG with the
  graph in a "prompt" tEXt chunk); every other known class is a pass-through. Identical subgraphs are
  served from cache (execution_cached, old `executed`, no new file).
* Websocket frames, their order and their routing (client_id targeted, broadcast when absent, the
  same-clientId bug) as captured. Origin host != Host on loopback -> 403 (HTTP and ws).
* --token T: every non-/_test route needs `Authorization: Bearer T`, else 401 (ws handshake too);
  --require-header 'Name: value' likewise.

Test control (never behind auth, faults or the Origin check):
    POST /_test/config {...}   merge into the runtime config (unknown keys -> 400); see
                               comfysim.engine.DEFAULT_CONFIG for every fault and knob
    POST /_test/reset          fresh state: default config, no queue/history/cache/files/ws, stats zeroed
    POST /_test/restart        like a process restart: queue, history, cache, running prompt and all
                               websockets dropped, temp/ wiped, `number` back to 0; body
                               {"down_seconds": s} also refuses connections for s seconds
    POST /_test/release        let nodes held by `hang_class` finish
    GET  /_test/stats          request counters per route template, open websockets, interrupts,
                               queue deletes, queue/history ids, executed node counts
    GET  /_test/config, GET /_test/files
    POST /_test/fill_history?n=N  append N finished tiny-run entries to the history (benchmarks)

Plugins (BizyAir behaviour lives in tests/servers/bizyair_routes.py, written separately):
at startup, if `bizyair_routes` is importable, and for every --plugin, the server calls
`module.register(app, server_state)` before the catch-all 404 route is added, so the plugin may
add routes (e.g. /bizyair/*; these are not mirrored under /api) with `app.router.add_get(...)`.
`server_state` (comfysim.engine.ServerState) offers:

    server_state.register_executor(class_type, fn, cacheable=True)
        Run `fn(inputs, ctx)` in the worker thread for every node of class_type. `inputs` maps input
        names to validated widget values, upstream outputs (SimImage, SimLatent, SimValue, ...) and
        hidden values (PROMPT -> graph, UNIQUE_ID -> node id, EXTRA_PNGINFO). Return a tuple with one
        value per output type (missing ones are filled with pass-through defaults), or
        {"result": tuple-or-None, "ui": {...}} for an output node (ui becomes `executed.output` and
        history outputs), or None for pass-through outputs and no ui. cacheable=False re-runs the node
        even for an identical graph (like an IS_CHANGED that returns time.time()).
    server_state.add_config_defaults({key: default})   extra /_test/config keys for the plugin
    server_state.add_reset_hook(fn)                    called after POST /_test/reset
    server_state.config (live dict), server_state.files (FileStore), server_state.registry

    ctx (comfysim.engine.NodeContext):
        ctx.node_id, ctx.class_type, ctx.prompt_id, ctx.prompt, ctx.extra_data, ctx.client_id,
        ctx.sensitive (api_key_comfy_org / auth_token_comfy_org popped from extra_data), ctx.config,
        ctx.info (object_info entry), ctx.return_types, ctx.signature (cache key, stable per inputs)
        ctx.fail(exception_type, exception_message, traceback=None, current_inputs=None)
            -> raises; the run ends with execution_error {exception_type, exception_message + "\n",
               traceback (list of str; [] if None), current_inputs (default: the node's inputs,
               formatted like ComfyUI)}; a plain Python exception is reported the same way.
        ctx.sleep(seconds, interruptible=False)   interruptible=True ends the node as interrupted
        ctx.check_interrupted()                   raise if /interrupt was called (node boundary style)
        ctx.progress(value, max, preview_png=None) ProgressBar update: progress_state, progress and a
                                                  binary preview (type 1, or type 4 after feature_flags)
        ctx.send(event, data)                     custom ws event, targeted like ComfyUI's send_sync
        ctx.passthrough(inputs) -> tuple          the default outputs
        ctx.image(width, height, color=0, batch=1) -> SimImage
        ctx.save_images(images, filename_prefix="ComfyUI", kind="output"|"temp") -> [{filename, subfolder, type}]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from aiohttp import web  # noqa: E402
from comfysim import app as sim_app  # noqa: E402
from comfysim.engine import ServerState  # noqa: E402
from comfysim.files import FileStore  # noqa: E402
from comfysim.graph import Registry  # noqa: E402

FIXTURES = HERE.parent / "fixtures" / "captures"


def load_registry(fixtures: Path = FIXTURES) -> Registry:
    core = json.loads((fixtures / "object_info.json").read_text(encoding="utf-8"))
    bizy = json.loads((fixtures / "object_info_bizyair.json").read_text(encoding="utf-8"))
    return Registry(core, {"bizyair": bizy.get("classes", bizy)})


def load_plugins(names: list[str]) -> list:
    modules = []
    try:
        modules.append(importlib.import_module("bizyair_routes"))
    except ModuleNotFoundError as exc:
        if exc.name != "bizyair_routes":
            raise
    for name in names:
        if name.endswith(".py"):
            spec = importlib.util.spec_from_file_location(Path(name).stem, name)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(name)
        modules.append(module)
    return modules


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=None)
    parser.add_argument("--require-header", default=None, help="'Name: value'")
    parser.add_argument("--base-dir", default=None, help="folder for input/, output/, temp/ (default: a temp dir)")
    parser.add_argument("--plugin", action="append", default=[],
                        help="module name or .py file with register(app, state)")
    parser.add_argument("--exit-with-parent", action="store_true", help="exit when the parent process dies")
    return parser.parse_args(argv)


async def watch_parent(parent: int, stop: asyncio.Event) -> None:
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    stop.set()


async def serve(args: argparse.Namespace) -> None:
    own_dir = args.base_dir is None
    base = args.base_dir or tempfile.mkdtemp(prefix="comfysim-")
    state = ServerState(load_registry(), FileStore(base))
    header = None
    if args.require_header:
        name, _, value = args.require_header.partition(":")
        header = (name.strip(), value.strip())
    app = sim_app.create_app(state, token=args.token, require_header=header)
    for module in load_plugins(args.plugin):
        module.register(app, state)
    sim_app.finalize(app)
    runtime = app["sim_runtime"] = {"host": args.host}  # filled below; the app freezes at setup

    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    runtime.update(runner=runner, site=site, port=port)
    print(f"listening {args.host}:{port}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_with_parent:
        loop.create_task(watch_parent(os.getppid(), stop))
    try:
        await stop.wait()
    finally:
        sim_app.drop_all_websockets(state)
        await runner.cleanup()
        if own_dir:
            shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
