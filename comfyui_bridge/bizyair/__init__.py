"""What we know about BizyAir containers (ComfyUI + SiliconFlow's BizyAir custom nodes, bizyengine).

A BizyAir container looks like plain ComfyUI from outside: /prompt, ws, /history and /view are
unchanged. What differs, and what this module knows about:

- its API key is never checked at start-up; a missing or wrong key only shows up at run time as an
  `execution_error` on whichever BizyAir node runs first (`diagnose` checks it up front);
- a container started with BIZYAIR_SERVER_MODE holds no key and expects one with every prompt
  (`apply_server_mode_key`);
- its error texts carry ANSI codes, whole `sk-…` keys and Chinese-only wording (`explain_failure`);
- third-party API nodes may return stock placeholder media instead of failing (`is_placeholder`);
- it caches cloud results on disk for 7 days, keyed by the sub-graph including the seed (`cache_note`).

Facts come from bizyengine 1.2.114 (PyPI wheel) and from runs against a real container; file
references below are paths inside that wheel (`bizyengine/...`).
"""

from .cache import cache_note
from .diagnosis import (
                        KEY_INVALID_OR_OFFLINE,
                        KEY_NOT_APPLICABLE,
                        KEY_NOT_LOADED_OR_SERVER_MODE,
                        KEY_VALID,
                        Diagnosis,
                        diagnose,
)
from .failures import explain_failure
from .placeholders import PLACEHOLDER_SHA256, is_placeholder
from .server_mode import SERVER_MODE_NODE_CLASS, SERVER_MODE_NODE_ID, apply_server_mode_key, ask_server_mode, secrets

__all__ = [
    "Diagnosis", "diagnose", "apply_server_mode_key", "ask_server_mode", "secrets",
    "explain_failure", "is_placeholder", "cache_note", "PLACEHOLDER_SHA256",
    "KEY_VALID", "KEY_INVALID_OR_OFFLINE", "KEY_NOT_LOADED_OR_SERVER_MODE", "KEY_NOT_APPLICABLE",
    "SERVER_MODE_NODE_ID", "SERVER_MODE_NODE_CLASS",
]
