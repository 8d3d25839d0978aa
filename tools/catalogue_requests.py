"""Tool parameters → a RunRequest for the catalogue tools (edit_image, text_to_video,
image_to_video). Each is "parameters → RunRequest" like tools/params.py, so a one-call tool and a
submit-now / collect-later tool can share it. Everything is checked here, before any server is
contacted: model, retirement, image count, every option against the model's node definition.
Input images are downloaded from Dify last, once everything else is known to be right.
"""

from __future__ import annotations

from typing import Any

from comfyui_bridge.catalogue import build
from comfyui_bridge.errors import InputError
from comfyui_bridge.models import RunRequest
from tools.params import MAX_IMAGES, images, seed
from tools.settings import DEFAULT_TIMEOUT, MAX_NAME_CHARS, MAX_TIMEOUT, MIN_TIMEOUT, number, text

# A video takes minutes: wait as long as Dify lets a tool run (it stops every tool at 600 s).
VIDEO_TIMEOUT = MAX_TIMEOUT
MAX_OPTION_NUMBER = 3600          # no count or duration of any model comes near it
_AUDIO = {"on": True, "off": False, "true": True, "false": False, "yes": True, "no": False}


def edit_image_request(params: dict[str, Any]) -> RunRequest:
    """edit_image: one or more images + an instruction."""
    return catalogue_request("edit_image", params, image_parameter="images", default_timeout=DEFAULT_TIMEOUT)


def text_to_video_request(params: dict[str, Any]) -> RunRequest:
    """text_to_video: a prompt."""
    return catalogue_request("text_to_video", params, image_parameter="", default_timeout=VIDEO_TIMEOUT)


def image_to_video_request(params: dict[str, Any]) -> RunRequest:
    """image_to_video: a prompt and the first frame."""
    return catalogue_request("image_to_video", params, image_parameter="image", default_timeout=VIDEO_TIMEOUT)


def catalogue_request(tool: str, params: dict[str, Any], *, image_parameter: str,
                      default_timeout: float) -> RunRequest:
    prompt = text(params, "prompt")
    if not prompt:
        what = "the change you want" if tool == "edit_image" else "the video you want"
        raise InputError(f"The prompt is empty: describe {what}.", message_zh="提示词为空：请描述想要的效果。",
                         detail={"input": "prompt"})
    negative = text(params, "negative_prompt")
    count = file_count(params.get(image_parameter)) if image_parameter else 0
    built = build(tool, text(params, "model", limit=MAX_NAME_CHARS), image_count=count,
                  options=option_values(params), negative=bool(negative),
                  image_parameter=image_parameter or "images")
    timeout = number(params, "timeout", default_timeout, low=MIN_TIMEOUT, high=MAX_TIMEOUT, unit="seconds")
    request = RunRequest(
        workflow=built.graph,
        prompt=prompt,
        negative_prompt=negative,
        prompt_node=built.prompt_node,
        negative_node=built.negative_node,
        seed=seed(params),
        timeout=float(default_timeout if timeout is None else timeout),
    )
    if image_parameter:
        request.images = images({"images": params.get(image_parameter)})
        request.image_nodes = built.image_nodes
    return request


def option_values(params: dict[str, Any]) -> dict[str, Any]:
    """The options as given (None when empty); the catalogue checks them against the model."""
    out: dict[str, Any] = {
        "aspect_ratio": text(params, "aspect_ratio", limit=MAX_NAME_CHARS) or None,
        "resolution": text(params, "resolution", limit=MAX_NAME_CHARS) or None,
        "count": _whole(params, "count"),
        "duration": _whole(params, "duration"),
        "audio": audio(params),
    }
    return {k: v for k, v in out.items() if v is not None}


def _whole(params: dict[str, Any], name: str) -> int | None:
    value = number(params, name, None, low=1, high=MAX_OPTION_NUMBER, integer=True,
                   unit="seconds" if name == "duration" else "")
    return None if value is None else int(value)


def audio(params: dict[str, Any]) -> bool | None:
    """`audio`: on / off, or empty (or "default") for the model's own choice."""
    raw = params.get("audio")
    if raw is None or isinstance(raw, bool):
        return raw
    word = text(params, "audio", limit=20).lower()
    if word in ("", "default"):
        return None
    if word not in _AUDIO:
        raise InputError(f"Parameter 'audio' must be on, off or default, not {word!r}.",
                         message_zh="参数“audio”只能是 on、off 或 default。", detail={"input": "audio"})
    return _AUDIO[word]


def file_count(value: Any) -> int:
    """How many files a file(s) parameter holds, without downloading them (params.images checks
    each one when it reads it)."""
    if value is None or value == "" or value == []:
        return 0
    count = len(value) if isinstance(value, list) else 1
    if count > MAX_IMAGES:
        raise InputError(f"Too many input images ({count}; at most {MAX_IMAGES}).",
                         message_zh=f"输入图片过多（{count} 张，最多 {MAX_IMAGES} 张）。")
    return count
