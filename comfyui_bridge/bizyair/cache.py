"""BizyAir's result cache and what a fixed seed means for it."""

from __future__ import annotations


# bizyengine/core/configs/models.yaml cache_config.expiration: 604800 (7 days); the key is a sha256
# of the route and the encoded sub-graph, seed included (core/commands/servers/prompt_server.py).
def cache_note(seed_fixed: bool, is_bizyair: bool) -> str | None:
    """Bilingual note ("en\\nzh") that a fixed seed returns the cached BizyAir result, else None."""
    if not (seed_fixed and is_bizyair):
        return None
    return ("With a fixed seed, the BizyAir container returns its cached result for the same "
            "workflow and inputs for up to 7 days instead of generating a new one; leave the seed "
            "empty for a fresh result.\n"
            "使用固定种子时，对于相同的工作流和输入，BizyAir 容器会在 7 天内直接返回缓存结果，不会重新生成；"
            "如需新结果请将种子留空。")
