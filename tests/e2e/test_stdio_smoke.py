"""The packaged plugin starts in a fresh venv the way the Dify daemon runs it, announces itself
with a heartbeat, and answers requests over stdio."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stdio_harness import PluginProcess  # noqa: E402

# The first run creates and fills a venv (pip); later runs reuse the cached one.
pytestmark = pytest.mark.timeout(900)

PROVIDER = "comfyui_bizyair"
TOKEN = "e2e-secret-token-7f3a9c"
# What Dify sends: every field as a string, defaults filled in for the optional ones.
DIFY_DEFAULTS = {"cos_prefix": "comfyui/", "cos_url_mode": "public", "cos_url_expires": "3600"}


def _closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def plugin():
    with PluginProcess.start(env={"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}) as p:
        yield p


def test_the_plugin_announces_itself_like_the_daemon_expects(plugin):
    assert plugin.heartbeats >= 1
    assert plugin.proc.poll() is None
    # The SDK prints its manifest before the first heartbeat; it must be ours.
    assert plugin.declaration and plugin.declaration["name"] == "comfyui_bizyair"
    assert (plugin.workdir / ".venv" / "bin" / "python").exists()
    assert not (plugin.workdir / "tests").exists()


def test_validate_with_an_unreachable_server_returns_an_error(plugin):
    port = _closed_port()
    check = plugin.validate(PROVIDER, {"comfyui_base_url": f"http://127.0.0.1:{port}", "comfyui_token": TOKEN,
                                       **DIFY_DEFAULTS}, timeout=120)
    assert check.ended and not check.ok
    assert check.errors[0]["error_type"] == "ToolProviderCredentialValidationError"
    assert f"127.0.0.1:{port}" in check.error
    assert TOKEN not in plugin.output_text()


def test_invoking_a_tool_without_a_workflow_ends_with_a_clear_error(plugin):
    port = _closed_port()
    run = plugin.invoke(PROVIDER, "comfyui_workflow", {"comfyui_base_url": f"http://127.0.0.1:{port}",
                                                       **DIFY_DEFAULTS},
                        {"prompt": "a red fox"}, timeout=120)
    assert run.ended
    assert run.errors, run.messages
    assert "workflow" in run.error.lower()
    assert plugin.proc.poll() is None  # one failed request does not take the instance down
