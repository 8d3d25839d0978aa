"""BIZYAIR_SERVER_MODE: the container holds no key; each prompt carries ours."""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..client import ComfyClient
    from ..deadline import Deadline

# How long a server's answer to /bizyair/server_mode is trusted (a container is restarted with
# another mode rarely; a new answer costs one short request).
MODE_TTL = 300.0
MODE_PROBE_CEILING = 3.0

# bizyengine/core/nodes_base.py: BIZYAIR_PARAM_MAGIC_NODE_ID = "bizyair_magic_node".
SERVER_MODE_NODE_ID = "bizyair_magic_node"
# bizyengine/misc/nodes.py `class PassParameter(BizyAirBaseNode)`, registered with the "BizyAir_"
# prefix by core/nodes_base.py register_node(); no inputs, no outputs, never executed.
SERVER_MODE_NODE_CLASS = "BizyAir_PassParameter"


def apply_server_mode_key(graph: dict, key: str, prompt_id: str = "") -> None:
    """Give a BIZYAIR_SERVER_MODE container the BizyAir key for this one prompt (in place).

    How bizyengine 1.2.114 gets the key in server mode:
    - `core/common/env_var.py`: BIZYAIR_SERVER_MODE = env("BIZYAIR_SERVER_MODE", bool, False).
    - `core/common/client.py` get_api_key() / validate_api_key() / set_api_key() return early in
      server mode: the container neither holds nor validates a key.
    - Every BizyAir node has a hidden input `bizyair_prompt` = "PROMPT", i.e. the whole prompt as
      posted (`core/nodes_base.py` ensure_hidden_unique_id_and_prompt).
    - `core/nodes_base.py` pop_api_key_and_prompt_id(): in server mode, if the prompt has a node
      with id "bizyair_magic_node", it takes `api_key` and `prompt_id` from that node's `_meta`;
      nothing else is consulted (not extra_data, not HTTP headers). Without that node the key is
      missing and the first cloud call fails (KeyError 'api_key' in prompt_processor /
      trd_nodes_base, or "Bearer None" → 401).
    - The key then goes out as `Authorization: Bearer <key>` (`client.headers(api_key=...)`) and in
      the request body `exec_info.api_key` (`core/commands/processors/prompt_processor.py`).
    - `prompt_id` becomes the `X-BIZYAIR-PROMPT-ID` header and the key of the per-prompt counter of
      parallel API-node tasks (`bizyair_extras/third_party_api/trd_nodes_base.py` api_call), so it
      must be unique per run: pass the ComfyUI prompt id we queue under.
    - The `/bizyair/*` REST routes read an RSA-encrypted key from `Authorization` instead
      (`bizy_server/server.py` _get_request_api_key, `bizy_server/utils.py` decrypt_apikey); they
      play no part in running a prompt.

    Nothing goes into the prompt's `extra_data`: bizyengine never reads it, and ComfyUI stores it
    in /history like the prompt. The key does end up in the container's /history (inside this
    node) and in `execution_error.current_inputs.bizyair_prompt`: add `secrets(key)` to every scrub.
    An empty key does nothing.
    """
    key = (key or "").strip()
    if not key:
        return
    graph[SERVER_MODE_NODE_ID] = {
        "class_type": SERVER_MODE_NODE_CLASS,
        "inputs": {},
        "_meta": {"api_key": key, "prompt_id": prompt_id or str(uuid.uuid4())},
    }


def secrets(key: str) -> list[str]:
    """Values to add to the scrub list when a BizyAir key is configured."""
    key = (key or "").strip()
    return [key] if key else []


_modes: dict[tuple[str, str], tuple[float, bool | None]] = {}
_modes_lock = threading.Lock()


def ask_server_mode(client: ComfyClient, deadline: Deadline, *, fresh: bool = False) -> bool | None:
    """GET /bizyair/server_mode → True / False; None when the route is absent (plain ComfyUI, or a
    BizyAir install whose routes did not load) or unreadable. bizyengine's bizy_server/server.py
    registers it in both modes. Remembered per server (URL + credentials) for MODE_TTL seconds."""
    key = client.server.identity()
    now = time.monotonic()
    with _modes_lock:
        hit = _modes.get(key)
        if hit is not None and now - hit[0] < MODE_TTL and not fresh:
            return hit[1]
    mode = _probe(client, deadline.within(MODE_PROBE_CEILING))
    with _modes_lock:
        if len(_modes) > 1024:
            _modes.clear()
        _modes[key] = (time.monotonic(), mode)
    return mode


def forget_server_modes() -> None:
    with _modes_lock:
        _modes.clear()


def _probe(client: ComfyClient, deadline: Deadline) -> bool | None:
    from ..errors import BridgeError
    from ..jsonsafe import JsonError
    try:
        reply = client.request("GET", "/bizyair/server_mode", deadline=deadline, max_bytes=64 * 1024)
        if reply.status_code != 200:
            return None
        body = reply.json()
    except (BridgeError, JsonError):
        return None
    data = body.get("data") if isinstance(body, dict) else None
    value = data.get("server_mode") if isinstance(data, dict) else None
    return value if isinstance(value, bool) else None
