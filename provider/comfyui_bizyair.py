"""Credential check: every ComfyUI server is a reachable ComfyUI (and, for BizyAir containers,
holds a usable key); the COS bucket, when configured, accepts our keys."""

from __future__ import annotations

from typing import Any

from dify_plugin import ToolProvider
from dify_plugin.errors.tool import ToolProviderCredentialValidationError

from comfyui_bridge import bizyair, routing
from comfyui_bridge.client import ComfyClient
from comfyui_bridge.errors import BridgeError
from comfyui_bridge.scrub import scrub
from tools.settings import credential_secrets, servers_from, storage_from


class ComfyuiBizyairProvider(ToolProvider):
    def _validate_credentials(self, credentials: dict[str, Any]) -> None:
        problems = validate(credentials)
        if problems:
            # A fresh exception outside any except block: no chained context, no secrets.
            raise ToolProviderCredentialValidationError(
                scrub("\n".join(problems), credential_secrets(credentials)))


def validate(credentials: dict[str, Any]) -> list[str]:
    """Every problem found, as user-facing lines (English, then Chinese)."""
    problems: list[str] = []
    try:
        servers = servers_from(credentials)
    except BridgeError as exc:
        return [exc.bilingual()]
    server_mode_key = bool(str(credentials.get("bizyair_api_key") or "").strip())

    def check(client: ComfyClient) -> tuple[bool, str]:
        found = bizyair.diagnose(client, server_mode_key)
        return found.ok, f"{found.message}\n{found.message_zh}"

    results = routing.check_all(servers, ComfyClient, check)
    all_ok, en, zh = routing.summarize(results)
    if not all_ok:
        problems.append(next(m for _, ok, m in results if not ok) if len(servers) == 1 else f"{en}\n{zh}")
    try:
        storage = storage_from(credentials)
        if storage is not None:
            storage.check()
    except BridgeError as exc:
        problems.append(exc.bilingual())
    return problems
