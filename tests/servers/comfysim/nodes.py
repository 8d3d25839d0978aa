"""Simulated node classes.

Values flowing between nodes are small descriptions (SimImage: size + one colour per batch
item, SimAudio, ...) instead of tensors. Output nodes write real files through the context
(see engine.NodeContext). Every class without a simulator runs as a pass-through: each output
takes the first input of the same type, or a default value derived from the node's cache
signature (so different seeds give different images).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from typing import Any, Callable

from . import media

TEMP_LETTERS = "abcdefghijklmnopqrstupvxyz"  # sic: ComfyUI's own alphabet for temp names


class NodeError(Exception):
    """A node failure reported as execution_error (ComfyUI's generic `except Exception`)."""

    def __init__(self, exception_type: str, exception_message: str, traceback: list[str] | None = None,
                 current_inputs: dict | None = None):
        super().__init__(exception_message)
        self.exception_type = exception_type
        self.exception_message = exception_message
        self.traceback = traceback
        self.current_inputs = current_inputs


class Interrupted(Exception):
    """comfy.model_management.InterruptProcessingException."""


class Abandoned(Exception):
    """The server was reset or restarted under the running prompt: stop without a trace."""


# ---- values --------------------------------------------------------------------------------

@dataclass(frozen=True)
class SimImage:
    width: int
    height: int
    colors: tuple  # one (r, g, b) per batch item

    @property
    def batch(self) -> int:
        return len(self.colors)

    def __str__(self) -> str:
        r, g, b = (round(c / 255, 4) for c in self.colors[0])
        return f"tensor([[[[{r:.4f}, {g:.4f}, {b:.4f}],\n          ...]]]) shape=[{self.batch}, {self.height}, {self.width}, 3]"


@dataclass(frozen=True)
class SimMask:
    width: int
    height: int
    values: tuple  # one 0..1 value per batch item

    def __str__(self) -> str:
        return f"tensor([[{self.values[0]:.4f}, ...]]) shape=[{len(self.values)}, {self.height}, {self.width}]"


@dataclass(frozen=True)
class SimLatent:
    width: int   # in pixels, as EmptyLatentImage's inputs
    height: int
    batch: int

    def __str__(self) -> str:
        return f"{{'samples': tensor(shape=[{self.batch}, 4, {self.height // 8}, {self.width // 8}])}}"


@dataclass(frozen=True)
class SimAudio:
    sample_rate: int
    channels: int
    samples: int

    def __str__(self) -> str:
        row = "[0., 0., 0.,  ..., 0., 0., 0.]"
        rows = (",\n         ").join([row] * self.channels)
        return f"{{'waveform': tensor([[{rows}]]), 'sample_rate': {self.sample_rate}}}"


@dataclass(frozen=True)
class SimVideo:
    images: SimImage
    fps: float
    audio: SimAudio | None = None

    def __str__(self) -> str:
        return f"<comfy_api.latest._input_impl.video_types.VideoFromComponents object at 0x7f{abs(hash(self)) % 10**10:010x}>"


@dataclass(frozen=True)
class SimValue:
    """Any other type (MODEL, CONDITIONING, BIZYAIR_MODEL, ...): opaque."""
    type_name: str
    origin: str

    def __str__(self) -> str:
        return f"<{self.type_name} from {self.origin}>"


def rgb_of(color: int) -> tuple[int, int, int]:
    return ((color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF)


def color_from(signature: str) -> tuple[int, int, int]:
    return rgb_of(int(signature[:6] or "0", 16))


def format_value(x: Any) -> Any:
    """execution.format_value: primitives as they are, everything else as str()."""
    if x is None or isinstance(x, (int, float, bool, str)):
        return x
    return str(x)


# ---- saving --------------------------------------------------------------------------------

def png_texts(ctx) -> dict[str, str]:
    """{"prompt": json, <extra_pnginfo key>: json, ...}: what ComfyUI's image, audio and latent
    save nodes embed (comfy_api/latest/_ui.py ImageSaveHelper / AudioSaveHelper, nodes.py SaveLatent)."""
    texts = {"prompt": json.dumps(ctx.prompt)}
    for key, value in (ctx.extra_data.get("extra_pnginfo") or {}).items():
        texts[key] = json.dumps(value)
    return texts


def video_tags(ctx) -> dict[str, str]:
    """SaveVideo's container metadata: extra_pnginfo entries first, then prompt, each as JSON
    (comfy_extras/nodes_video.py SaveVideo.execute, VideoFromComponents.save_to)."""
    tags = {key: json.dumps(value) for key, value in (ctx.extra_data.get("extra_pnginfo") or {}).items()}
    tags["prompt"] = json.dumps(ctx.prompt)
    return tags


def temp_prefix(prefix: str) -> str:
    return prefix + "_temp_" + "".join(random.choice(TEMP_LETTERS) for _ in range(5))


def save_files(ctx, filename_prefix: str, kind: str, ext: str,
               payloads: list[Callable[[str], bytes]]) -> list[dict]:
    """Write one file per payload under ComfyUI's <prefix>_<counter:05>_.<ext> names."""
    folder, stem, counter, subfolder = ctx.files.save_path(filename_prefix, kind)
    results = []
    for batch_number, make in enumerate(payloads):
        name = f"{stem.replace('%batch_num%', str(batch_number))}_{counter:05}_.{ext}"
        ctx.files.write(folder, name, make(name))
        listed = name
        if ctx.config.get("output_name_chars"):   # a hostile server: a name no file system has
            head, _, tail = name.rpartition(".")
            listed = f"{head}{'n' * max(0, ctx.config['output_name_chars'] - len(name))}.{tail}"
        results.append({"filename": listed, "subfolder": subfolder, "type": kind})
        counter += 1
    return results


def save_images(ctx, images: SimImage, filename_prefix: str = "ComfyUI", kind: str = "output") -> list[dict]:
    """SaveImage / PreviewImage: one PNG per batch item, prompt in a tEXt chunk."""
    prefix = temp_prefix(filename_prefix) if kind == "temp" else filename_prefix
    texts = png_texts(ctx)
    pad_to = ctx.config.get("image_bytes")
    level = 1 if kind == "temp" else 4

    def payload(rgb):
        return lambda name: media.png(images.width, images.height, rgb, texts, pad_to,
                                      seed=f"{ctx.prompt_id}/{name}", level=level)
    return save_files(ctx, prefix, kind, "png", [payload(rgb) for rgb in images.colors])


def _frames(images: SimImage) -> list:
    return [(images.width, images.height, rgb) for rgb in images.colors]


# ---- node simulators -------------------------------------------------------------------------

BUILTIN: dict[str, Callable] = {}
NOT_CACHEABLE: set[str] = {"SaveImageWebsocket"}  # its IS_CHANGED returns time.time()


def simulates(*names: str):
    def register(fn):
        for name in names:
            BUILTIN[name] = fn
        return fn
    return register


@simulates("EmptyImage")
def empty_image(i, ctx):
    return (SimImage(i["width"], i["height"], (rgb_of(i["color"]),) * i["batch_size"]),)


@simulates("LoadImage")
def load_image(i, ctx):
    path = ctx.files.annotated_path(i["image"])
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        raise NodeError("FileNotFoundError", f"[Errno 2] No such file or directory: '{ctx.files.shown(path)}'") from None
    info = media.png_info(data)
    if info:
        width, height, rgb, alpha = info
    else:
        size = media.jpeg_size(data)
        if size is None and not data.startswith(b"RIFF"):
            raise NodeError("PIL.UnidentifiedImageError", f"cannot identify image file '{ctx.files.shown(path)}'")
        (width, height), rgb, alpha = size or (512, 512), (128, 128, 128), None
    mask = SimMask(width, height, (1.0 - alpha,)) if alpha is not None else SimMask(64, 64, (0.0,))
    return SimImage(width, height, (rgb,)), mask


@simulates("ImageScale")
def image_scale(i, ctx):
    img, width, height = i["image"], i["width"], i["height"]
    if width == 0 and height == 0:
        width, height = img.width, img.height
    elif width == 0:
        width = max(1, round(img.width * height / img.height))
    elif height == 0:
        height = max(1, round(img.height * width / img.width))
    return (SimImage(width, height, img.colors),)


@simulates("ImageInvert")
def image_invert(i, ctx):
    img = i["image"]
    return (SimImage(img.width, img.height, tuple(tuple(255 - c for c in rgb) for rgb in img.colors)),)


@simulates("ImageBlur")
def image_blur(i, ctx):
    ctx.sleep(float(ctx.config.get("blur_seconds") or 0))  # CPU-bound in ComfyUI: not interruptible
    return (i["image"],)


@simulates("ImageBatch")
def image_batch(i, ctx):
    a, b = i["image1"], i["image2"]
    return (SimImage(a.width, a.height, a.colors + b.colors),)


@simulates("SaveImage")
def save_image(i, ctx):
    return {"ui": {"images": save_images(ctx, i["images"], i["filename_prefix"], "output")}}


@simulates("PreviewImage")
def preview_image(i, ctx):
    return {"ui": {"images": save_images(ctx, i["images"], "ComfyUI", "temp")}}


@simulates("SaveAnimatedWEBP")
def save_animated_webp(i, ctx):
    images, texts = i["images"], png_texts(ctx)
    res = save_files(ctx, i["filename_prefix"], "output", "webp",
                     [lambda name: media.webp_animated(_frames(images), float(i.get("fps", 6.0)), texts)])
    return {"ui": {"images": res, "animated": [i.get("num_frames", 0) != 1]}}


@simulates("SaveAnimatedPNG")
def save_animated_png(i, ctx):
    images, texts = i["images"], png_texts(ctx)
    res = save_files(ctx, i["filename_prefix"], "output", "png",
                     [lambda name: media.apng(_frames(images), float(i.get("fps", 6.0)), texts)])
    return {"ui": {"images": res, "animated": [True]}}


@simulates("EmptyAudio")
def empty_audio(i, ctx):
    rate = int(i["sample_rate"])
    return (SimAudio(rate, int(i["channels"]), int(float(i["duration"]) * rate)),)


def _save_audio(ctx, audio: SimAudio, prefix: str, kind: str, ext: str, encoder) -> dict:
    tags = png_texts(ctx)
    if kind == "temp":
        prefix = temp_prefix(prefix)
    res = save_files(ctx, prefix, kind, ext,
                     [lambda name: encoder(audio.sample_rate, audio.channels, audio.samples, tags)])
    return {"ui": {"audio": res}}


@simulates("SaveAudio")
def save_audio(i, ctx):
    return _save_audio(ctx, i["audio"], i.get("filename_prefix", "audio/ComfyUI"), "output", "flac", media.flac)


@simulates("SaveAudioMP3")
def save_audio_mp3(i, ctx):
    return _save_audio(ctx, i["audio"], i.get("filename_prefix", "audio/ComfyUI"), "output", "mp3", media.mp3)


@simulates("SaveAudioOpus")
def save_audio_opus(i, ctx):
    return _save_audio(ctx, i["audio"], i.get("filename_prefix", "audio/ComfyUI"), "output", "opus", media.opus)


@simulates("PreviewAudio")
def preview_audio(i, ctx):
    return _save_audio(ctx, i["audio"], "ComfyUI", "temp", "flac", media.flac)


SPLIT_AUDIO_TRACEBACK = [
    '  File "/opt/ComfyUI/execution.py", line 518, in execute\n    output_data, output_ui, has_subgraph, has_pending_tasks = await get_output_data(prompt_id, unique_id, obj, input_data_all, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, v3_data=v3_data)\n                                                              ' + "^" * 151 + "\n",
    '  File "/opt/ComfyUI/execution.py", line 329, in get_output_data\n    return_values = await _async_map_node_over_list(prompt_id, unique_id, obj, input_data_all, obj.FUNCTION, allow_interrupt=True, execution_block_cb=execution_block_cb, pre_execute_cb=pre_execute_cb, v3_data=v3_data)\n                    ' + "^" * 197 + "\n",
    '  File "/opt/ComfyUI/execution.py", line 303, in _async_map_node_over_list\n    await process_inputs(input_dict, i)\n',
    '  File "/opt/ComfyUI/execution.py", line 291, in process_inputs\n    result = f(**inputs)\n             ^^^^^^^^^^^\n',
    '  File "/opt/ComfyUI/comfy_api/internal/__init__.py", line 149, in wrapped_func\n    return method(locked_class, **inputs)\n           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n',
    '  File "/opt/ComfyUI/comfy_api/latest/_io.py", line 1570, in EXECUTE_NORMALIZED\n    to_return = cls.execute(*args, **kwargs)\n                ^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n',
    '  File "/opt/ComfyUI/comfy_extras/nodes_audio.py", line 393, in execute\n    raise ValueError("AudioSplit: Input audio has only one channel.")\n',
]


@simulates("SplitAudioChannels")
def split_audio_channels(i, ctx):
    audio = i["audio"]
    if audio.channels == 1:
        raise NodeError("ValueError", "AudioSplit: Input audio has only one channel.", SPLIT_AUDIO_TRACEBACK)
    mono = SimAudio(audio.sample_rate, 1, audio.samples)
    return mono, mono


@simulates("CreateVideo")
def create_video(i, ctx):
    return (SimVideo(i["images"], float(i["fps"]), i.get("audio")),)


@simulates("SaveVideo")
def save_video(i, ctx):
    video = i["video"]
    images, tags = video.images, video_tags(ctx)
    res = save_files(ctx, i.get("filename_prefix", "video/ComfyUI"), "output", "mp4",
                     [lambda name: media.mp4(images.width, images.height, images.batch, video.fps,
                                             f"{ctx.prompt_id}/{name}", tags)])
    return {"ui": {"images": res, "animated": [True]}}


@simulates("SaveWEBM")
def save_webm(i, ctx):
    images, fps, tags = i["images"], float(i.get("fps", 24.0)), png_texts(ctx)  # prompt first, then extra_pnginfo
    res = save_files(ctx, i.get("filename_prefix", "ComfyUI"), "output", "webm",
                     [lambda name: media.webm(images.width, images.height, images.batch, fps,
                                              f"{ctx.prompt_id}/{name}", tags)])
    return {"ui": {"images": res, "animated": [True]}}


@simulates("EmptyLatentImage")
def empty_latent(i, ctx):
    return (SimLatent(i["width"], i["height"], i["batch_size"]),)


@simulates("SaveLatent")
def save_latent(i, ctx):
    lat = i["samples"]
    meta = png_texts(ctx)
    res = save_files(ctx, i.get("filename_prefix", "latents/ComfyUI"), "output", "latent",
                     [lambda name: media.latent(lat.width, lat.height, lat.batch, meta)])
    return {"ui": {"latents": res}}


@simulates("SolidMask")
def solid_mask(i, ctx):
    return (SimMask(i["width"], i["height"], (float(i["value"]),)),)


@simulates("MaskPreview")
def mask_preview(i, ctx):
    mask = i["mask"]
    grey = tuple((round(v * 255),) * 3 for v in mask.values)
    res = save_images(ctx, SimImage(mask.width, mask.height, grey), "ComfyUI", "temp")
    return {"ui": {"images": res, "animated": [False]}}


@simulates("StringConcatenate")
def string_concatenate(i, ctx):
    return (f"{i['string_a']}{i['delimiter']}{i['string_b']}",)


@simulates("RegexExtract")
def regex_extract(i, ctx):
    """Port of nodes_string.RegexExtract: an invalid pattern yields "" (it swallows re.error)."""
    flags = (re.IGNORECASE if i.get("case_insensitive") else 0) | (re.MULTILINE if i.get("multiline") else 0) \
        | (re.DOTALL if i.get("dotall") else 0)
    pattern, text, mode, group = i["regex_pattern"], i["string"], i["mode"], i.get("group_index", 1)
    result = ""
    try:
        if mode == "First Match":
            match = re.search(pattern, text, flags)
            result = match.group(0) if match else ""
        elif mode == "All Matches":
            matches = re.findall(pattern, text, flags)
            result = "\n".join(m[0] if isinstance(m, tuple) else m for m in matches)
        elif mode == "First Group":
            match = re.search(pattern, text, flags)
            if match and len(match.groups()) >= group:
                result = match.group(group)
        elif mode == "All Groups":
            result = "\n".join(m.group(group) for m in re.finditer(pattern, text, flags)
                               if m.groups() and len(m.groups()) >= group)
    except re.error:
        result = ""
    return (result,)


@simulates("PreviewAny")
def preview_any(i, ctx):
    source = i.get("source")
    value = "None"
    if isinstance(source, str):
        value = source
    elif isinstance(source, (int, float, bool)):
        value = str(source)
    elif source is not None:
        try:
            value = json.dumps(source)
        except Exception:  # noqa: BLE001
            value = str(source)
    size = ctx.config.get("text_output_bytes")
    if size:   # a huge text output (a 6 MB PreviewAny): the value's lines, repeated
        line = value + "\n"
        value = (line * (size // len(line) + 1))[:size]
    return {"ui": {"text": [value]}}


@simulates("SaveImageWebsocket")
def save_image_websocket(i, ctx):
    """One progress step (+ binary PNG preview) per image; interruptible at each step."""
    images = i["images"]
    delay = float(ctx.config.get("ws_image_seconds") or 0)
    for step, rgb in enumerate(images.colors):
        ctx.progress(step, images.batch, media.png(images.width, images.height, rgb, level=1))
        if delay:
            ctx.sleep(delay)
    return {"ui": {}}


# ---- pass-through --------------------------------------------------------------------------

def passthrough(ctx, inputs: dict) -> tuple:
    """Default outputs for a class without a simulator (e.g. every BizyAir node)."""
    typed = {}
    for name, value in inputs.items():
        declared = ctx.input_type(name)
        if isinstance(declared, str):
            typed.setdefault(declared, value)
    return tuple(default_value(t, typed, ctx) for t in ctx.return_types)


def default_value(type_name: Any, typed: dict, ctx) -> Any:
    if isinstance(type_name, str) and type_name in typed:
        return typed[type_name]
    rgb = color_from(ctx.signature)
    if type_name == "IMAGE":
        src = typed.get("LATENT")
        if isinstance(src, SimLatent):
            return SimImage(src.width, src.height, (rgb,) * src.batch)
        video = typed.get("VIDEO")
        if isinstance(video, SimVideo):
            return video.images
        return SimImage(512, 512, (rgb,))
    if type_name == "LATENT":
        src = typed.get("IMAGE")
        return SimLatent(src.width, src.height, src.batch) if isinstance(src, SimImage) else SimLatent(512, 512, 1)
    if type_name == "MASK":
        src = typed.get("IMAGE")
        return SimMask(src.width, src.height, (0.0,) * src.batch) if isinstance(src, SimImage) else SimMask(64, 64, (0.0,))
    if type_name == "AUDIO":
        return SimAudio(44100, 2, 44100)
    if type_name == "VIDEO":
        src = typed.get("IMAGE")
        return SimVideo(src if isinstance(src, SimImage) else SimImage(512, 512, (rgb,)), 24.0)
    simple = {"STRING": "", "INT": 0, "FLOAT": 0.0, "BOOLEAN": False}
    if type_name in simple:
        return simple[type_name]
    return SimValue(str(type_name), ctx.class_type)
