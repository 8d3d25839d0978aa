"""ComfyUI's partner API nodes (comfy_api_nodes) for the simulated server: load it with
`start_comfy_server(plugins=[partner_nodes.py])`.

Stock ComfyUI gives every partner node the Comfy.org key through a hidden input
(`"api_key_comfy_org": "API_KEY_COMFY_ORG"`), filled from the /prompt's `extra_data.api_key_comfy_org`
after server.py moved it out of extra_data into the queue item's sensitive part (so it is in
neither /queue nor /history; comfysim's engine does the same). Without a key (or login token) the
node fails as comfy_api_nodes does: "Unauthorized: Please login first to use this node."

Test control:
    GET  /_test/partner_calls     [{"class_type", "key_sha256"}] per partner node run: proof that the
                                  key reached the node, without the test server keeping the key
    POST /_test/config {"partner_echo_key": true}   the node fails with a message quoting the key
                                  (a careless API error), to test that no tool shows it
"""

from __future__ import annotations

import hashlib

from aiohttp import web

UNAUTHORIZED = "Unauthorized: Please login first to use this node."
KEY_KINDS = ("API_KEY_COMFY_ORG", "AUTH_TOKEN_COMFY_ORG")


def _hidden_names(info: dict, kind: str) -> list[str]:
    hidden = (info.get("input") or {}).get("hidden") or {}
    out = []
    for name, spec in hidden.items():
        value = spec[0] if isinstance(spec, list) and spec else spec
        if value == kind:
            out.append(name)
    return out


def register(app: web.Application, server_state) -> None:
    calls: list[dict] = []
    server_state.add_config_defaults({"partner_echo_key": False})
    server_state.add_reset_hook(calls.clear)

    def run(inputs: dict, ctx):
        key = next((inputs.get(n) for n in _hidden_names(ctx.info, "API_KEY_COMFY_ORG") if inputs.get(n)), None)
        token = next((inputs.get(n) for n in _hidden_names(ctx.info, "AUTH_TOKEN_COMFY_ORG") if inputs.get(n)), None)
        if not key and not token:
            ctx.fail("Exception", UNAUTHORIZED)
        calls.append({"class_type": ctx.class_type,
                      "key_sha256": hashlib.sha256(str(key).encode()).hexdigest() if key else None})
        if ctx.config.get("partner_echo_key"):
            ctx.fail("Exception", f"Invalid API key {key} (HTTP 401 from api.comfy.org)")
        return None

    for class_type in server_state.registry.core:
        info = server_state.registry.core[class_type]
        if _hidden_names(info, "API_KEY_COMFY_ORG"):
            server_state.register_executor(class_type, run)

    async def partner_calls(request):
        return web.json_response(list(calls))

    app.router.add_route("GET", "/_test/partner_calls", partner_calls)
