"""Tool `list_capabilities`: what the configured ComfyUI server offers, in a few lines for an
agent (comfyui_bridge/catalogue/capabilities.py asks it with per-class lookups only)."""

from __future__ import annotations

from collections.abc import Generator
from functools import partial
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage

from comfyui_bridge.catalogue.capabilities import Capabilities, discover, first_answering, summary
from comfyui_bridge.client import ComfyClient
from comfyui_bridge.deadline import Deadline
from tools.delivery import run_guarded, scrub_text
from tools.guard import guarded
from tools.settings import MAX_TIMEOUT, MIN_TIMEOUT, number, servers_from

DEFAULT_TIMEOUT = 60.0
VARIABLE_LISTS = ("checkpoints", "loras", "samplers")


class ListCapabilitiesTool(Tool):
    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        yield from capabilities_messages(self, tool_parameters)


def capabilities_messages(tool: Any, params: dict[str, Any]) -> Generator[Any, None, None]:
    """Ask the first server that answers; yield the summary, the variables and the JSON. Any
    failure ends as one bounded, secret-free ToolRunError (run_guarded)."""
    def body(guard: Any, _tool: Any, credentials: dict[str, Any], secrets: list[str]) -> Generator[Any, None, None]:
        servers = servers_from(credentials)
        value = number(params, "timeout", DEFAULT_TIMEOUT, low=MIN_TIMEOUT, high=MAX_TIMEOUT, unit="seconds")
        deadline = Deadline.after(float(DEFAULT_TIMEOUT if value is None else value))
        server_mode_key = bool(str(credentials.get("bizyair_api_key") or "").strip())
        index, caps = first_answering([partial(ComfyClient, server) for server in servers],
                                      partial(discover, deadline=deadline, server_mode_key=server_mode_key))
        yield from messages(guard, clean(caps, secrets), index, len(servers),
                            bool(str(credentials.get("comfy_org_api_key") or "").strip()))
    return run_guarded(tool, body, "list_capabilities")


def clean(caps: Capabilities, secrets: list[str]) -> Capabilities:
    """The server's names without our credentials or `sk-` keys (a name is any text the server chose)."""
    caps.lists = {k: [scrub_text(n, secrets) for n in v] for k, v in caps.lists.items()}
    caps.node_packs = [scrub_text(n, secrets) for n in caps.node_packs]
    return caps


def messages(tool: Any, caps: Capabilities, index: int, servers: int,
             comfy_org_key: bool) -> Generator[Any, None, None]:
    tool = guarded(tool)
    text = summary(caps, comfy_org_key)
    if servers > 1:
        text += f" (Asked server {index + 1} of {servers}; the others are expected to be set up alike.)"
    yield tool.create_text_message(text)
    yield tool.create_variable_message("server_kind", caps.kind)
    yield tool.create_variable_message("models", caps.models)
    for name in VARIABLE_LISTS:
        yield tool.create_variable_message(name, caps.lists.get(name, []))
    yield tool.create_variable_message("node_packs", caps.node_packs)
    out = caps.to_dict()
    out["comfy_org_key"] = comfy_org_key
    out["server"] = {"index": index + 1, "of": servers}
    yield tool.create_json_message(out)
