"""What a workflow file can be, and how a user gets the one we need: shared by the API-format
loader (workflow.py) and the UI-format converter (uiformat.py), so neither imports the other."""

from __future__ import annotations

import re

__all__ = ["EXPORT_STEPS", "EXPORT_STEPS_ZH", "id_sort_key"]

EXPORT_STEPS = (
    "Export it in API format: in ComfyUI open the workflow, then Workflow menu → Export (API), and use "
    "that file. In older ComfyUI versions enable \"Dev mode Options\" in Settings, then use the "
    "\"Save (API Format)\" button.")
EXPORT_STEPS_ZH = (
    "请导出 API 格式：在 ComfyUI 中打开该工作流，点击「工作流（Workflow）→ 导出 (API)」，使用导出的文件。"
    "旧版 ComfyUI：先在设置中启用「开发者模式选项（Dev mode Options）」，再点击「Save (API Format)」。")

_DIGITS = re.compile(r"(\d+)")


def id_sort_key(node_id: str) -> tuple:
    """Numeric-aware: "2" < "10" < "10:3" < "a"."""
    parts = _DIGITS.split(str(node_id))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p != "")
