"""Shared pytest fixtures. Keep this small: fixtures live next to what they start."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# pytest finds fixtures by name, so importing them here registers them for every test.
from cos_fixture import cos_bucket, cos_credentials, cos_server  # noqa: E402,F401

from tests.servers.comfy_fixture import (  # noqa: E402,F401
    comfy_server,
    comfy_server_factory,
    comfy_server_fresh,
    comfy_server_session,
)
