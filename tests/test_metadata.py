"""comfyui_bridge.metadata: the BizyAir key leaves every output file ComfyUI writes; nothing else does.

Files are made the way ComfyUI makes them: with the real encoders (Pillow, PyAV/FFmpeg) called
as ComfyUI's save nodes call them (comfy_api/latest/_ui.py ImageSaveHelper / AudioSaveHelper,
comfy_api/latest/_input_impl/video_types.py VideoFromComponents.save_to, comfy_extras/
nodes_video.py SaveWEBM, nodes.py SaveLatent), and with the test server's generators
(tests/servers/comfysim/media.py). Every check reads the result with something other than the
code under test: Pillow / PyAV decode it, and small independent parsers below walk its structure
(chunk CRCs, box and element sizes, Ogg page CRCs computed bit by bit).
"""

from __future__ import annotations

import io
import json
import struct
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from comfyui_bridge.bizyair.server_mode import apply_server_mode_key
from comfyui_bridge.metadata import Cleaned, find_secret, remove_secrets
from comfyui_bridge.metadata import ogg as ogg_module
from comfyui_bridge.metadata.structure import MAX_PARTS
from tests.servers.comfysim import media

KEY = "sk-" + "Qm7vT2xLp9Rk4Wd8Hs1Ny6Bc3Fj5Gz0Ua" + "E2iO4uY6tR8eW1qA"
OTHER_KEY = "sk-" + "not-the-key-" + "0" * 30
EXTRA = {"workflow": {"nodes": [{"id": 1, "type": "EmptyImage", "title": "a picture"}], "links": [], "version": 0.4}}
WORKFLOW_JSON = json.dumps(EXTRA["workflow"])


def queued_prompt(key: str = KEY) -> dict:
    """A queued graph the way the engine sends it in server mode: the key in the magic node."""
    graph = {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
             "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "ComfyUI"}}}
    apply_server_mode_key(graph, key, prompt_id="3f0c2b7e-prompt")
    return graph


PROMPT = queued_prompt()
PROMPT_JSON = json.dumps(PROMPT)
TEXTS = {"prompt": PROMPT_JSON, "workflow": WORKFLOW_JSON}  # ComfyUI's order for images / audio / latents


def _noise(seed: int, size: int) -> bytes:
    return media.filler(size, f"test-metadata-{seed}")


def picture(seed: int, size: tuple[int, int] = (64, 48)) -> Image.Image:
    return Image.frombytes("RGB", size, _noise(seed, size[0] * size[1] * 3))


# ---- files as ComfyUI writes them (real encoders) -------------------------------------------------

def comfy_png(prompt: dict = PROMPT, extra: dict = EXTRA) -> bytes:
    """ImageSaveHelper.save_images with _create_png_metadata."""
    info = PngInfo()
    info.add_text("prompt", json.dumps(prompt))
    for key, value in extra.items():
        info.add_text(key, json.dumps(value))
    out = io.BytesIO()
    picture(1).save(out, format="PNG", pnginfo=info, compress_level=4)
    return out.getvalue()


def comfy_apng(prompt: dict = PROMPT, extra: dict = EXTRA) -> bytes:
    """ImageSaveHelper.save_animated_png with _create_animated_png_metadata (`comf` after IDAT)."""
    info = PngInfo()
    info.add(b"comf", b"prompt\0" + json.dumps(prompt).encode("latin-1"), after_idat=True)
    for key, value in extra.items():
        info.add(b"comf", key.encode("latin-1") + b"\0" + json.dumps(value).encode("latin-1"), after_idat=True)
    frames = [picture(i) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, format="PNG", pnginfo=info, compress_level=4, save_all=True, duration=int(1000.0 / 6),
                   append_images=frames[1:])
    return out.getvalue()


def comfy_webp(prompt: dict = PROMPT, extra: dict = EXTRA) -> bytes:
    """ImageSaveHelper.save_animated_webp with _create_webp_metadata."""
    frames = [picture(i) for i in range(3)]
    exif = frames[0].getexif()
    exif[0x0110] = f"prompt:{json.dumps(prompt)}"
    tag = 0x010F
    for key, value in extra.items():
        exif[tag] = f"{key}:{json.dumps(value)}"
        tag -= 1
    out = io.BytesIO()
    frames[0].save(out, format="WEBP", save_all=True, duration=int(1000.0 / 6), append_images=frames[1:], exif=exif,
                   lossless=True, quality=80, method=4)
    return out.getvalue()


def _rgb_frame(index: int, size: int = 64) -> av.VideoFrame:
    frame = av.VideoFrame(size, size, "rgb24")
    frame.planes[0].update(_noise(index, frame.planes[0].buffer_size))
    return frame


def comfy_video(tmp_path: Path, container: str, to_file: bool = True) -> bytes:
    """VideoFromComponents.save_to: metadata = extra_pnginfo + prompt, each json.dumps'd; mp4 with
    movflags use_metadata_tags(+faststart when writing to a file); webm = AV1, else H.264."""
    fmt = {"mp4": "mp4", "webm": "webm", "mkv": "matroska"}[container]
    options = {}
    if container == "mp4":
        options = {"movflags": "use_metadata_tags+faststart" if to_file else "use_metadata_tags"}
    target: Path | io.BytesIO = tmp_path / f"video_{uuid.uuid4().hex}.{container}" if to_file else io.BytesIO()
    metadata = dict(EXTRA)
    metadata["prompt"] = PROMPT
    with av.open(str(target) if isinstance(target, Path) else target, mode="w", format=fmt, options=options) as out:
        for key, value in metadata.items():
            out.metadata[key] = json.dumps(value)
        stream = out.add_stream("libsvtav1" if container == "webm" else "h264", rate=Fraction(12000, 1000))
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for index in range(8):
            out.mux(stream.encode(_rgb_frame(index).reformat(format="yuv420p")))
        out.mux(stream.encode(None))
    return target.read_bytes() if isinstance(target, Path) else target.getvalue()


def comfy_webm_vp9(tmp_path: Path) -> bytes:
    """SaveWEBM: prompt, then each extra_pnginfo key, as container metadata; libvpx-vp9."""
    path = tmp_path / f"save_webm_{uuid.uuid4().hex}.webm"
    container = av.open(str(path), mode="w")
    container.metadata["prompt"] = json.dumps(PROMPT)
    for key, value in EXTRA.items():
        container.metadata[key] = json.dumps(value)
    stream = container.add_stream("libvpx-vp9", rate=Fraction(round(6.0 * 1000), 1000))
    stream.width, stream.height, stream.pix_fmt, stream.bit_rate = 64, 64, "yuv420p", 0
    stream.options = {"crf": "32.0"}
    for index in range(6):
        for packet in stream.encode(_rgb_frame(index)):
            container.mux(packet)
    container.mux(stream.encode())
    container.close()
    return path.read_bytes()


def comfy_audio(fmt: str, extra: dict = EXTRA) -> bytes:
    """AudioSaveHelper.save_audio: prompt + extra_pnginfo as container metadata, PyAV to a buffer."""
    rate = 48000 if fmt == "opus" else 44100
    metadata = {"prompt": json.dumps(PROMPT), **{k: json.dumps(v) for k, v in extra.items()}}
    out_buffer = io.BytesIO()
    container = av.open(out_buffer, mode="w", format=fmt)
    for key, value in metadata.items():
        container.metadata[key] = value
    codec = {"opus": "libopus", "mp3": "libmp3lame", "flac": "flac"}[fmt]
    stream = container.add_stream(codec, rate=rate, layout="stereo")
    samples = rate // 2
    frame = av.AudioFrame(format="flt", layout="stereo", samples=samples)
    frame.planes[0].update(struct.pack(f"<{2 * samples}f", *(((i % 200) - 100) / 400.0 for i in range(2 * samples))))
    frame.sample_rate, frame.pts = rate, 0
    container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()
    return out_buffer.getvalue()


def exif_bytes(tags: dict[int, str]) -> bytes:
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[tag] = value
    return exif.tobytes()


def custom_jpeg() -> bytes:
    """A custom save node's JPEG: EXIF (ComfyUI's tag layout), a COM segment and XMP."""
    out = io.BytesIO()
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description prompt="{KEY}"/></x:xmpmeta>'.encode()
    picture(5).save(out, format="JPEG", quality=90, comment=f"prompt: {PROMPT_JSON}".encode(), xmp=xmp,
                    exif=exif_bytes({0x0110: f"prompt:{PROMPT_JSON}", 0x010F: f"workflow:{WORKFLOW_JSON}"}))
    return out.getvalue()


def custom_gif(comment: bytes) -> bytes:
    frames = [picture(i).convert("P") for i in range(2)]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100, comment=comment)
    return out.getvalue()


# ---- independent readers ---------------------------------------------------------------------------

def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every chunk, checking signature, lengths, CRCs, IHDR first and IEND last."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8:pos + 8 + length]
        assert len(body) == length
        assert struct.unpack_from(">I", data, pos + 8 + length)[0] == zlib.crc32(kind + body)
        chunks.append((kind, body))
        pos += 12 + length
        if kind == b"IEND":
            break
    assert pos == len(data) and chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    return chunks


def png_texts(data: bytes) -> dict[str, str]:
    """Text entries of every kind (tEXt, zTXt, iTXt compressed or not, comf), inflated."""
    out = {}
    for kind, body in png_chunks(data):
        key, _, rest = body.partition(b"\0")
        if kind in (b"tEXt", b"comf"):
            out[key.decode()] = rest.decode("latin-1")
        elif kind == b"zTXt":
            out[key.decode()] = zlib.decompress(rest[1:]).decode("latin-1")
        elif kind == b"iTXt":
            flag, text = rest[0], rest[2:].split(b"\0", 2)[2]
            out[key.decode()] = (zlib.decompress(text) if flag else text).decode("utf-8")
    return out


def riff_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8
    chunks, pos = [], 12
    while pos < len(data):
        kind, size = struct.unpack_from("<4sI", data, pos)
        chunks.append((kind, data[pos + 8:pos + 8 + size]))
        pos += 8 + size + (size & 1)
    assert pos == len(data)
    return chunks


MP4_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"udta", b"meta", b"ilst", b"edts", b"dinf"}


def mp4_boxes(data: bytes, start: int = 0, end: int | None = None, path: str = "") -> list[tuple[str, int, int]]:
    """(path, offset, size) of every box; children must fill their parent exactly."""
    end = len(data) if end is None else end
    out, pos = [], start
    while pos < end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        assert 8 <= size <= end - pos
        name = f"{path}/{kind.decode('latin-1')}"
        out.append((name, pos, size))
        if kind in MP4_CONTAINERS:
            body = pos + 8 + (4 if kind == b"meta" else 0)
            out += mp4_boxes(data, body, pos + size, name)
        pos += size
    assert pos == end
    return out


def mp4_chunk_offsets(data: bytes) -> list[int]:
    offsets = []
    for name, pos, _ in mp4_boxes(data):
        if name.endswith("/stco"):
            count = struct.unpack_from(">I", data, pos + 12)[0]
            offsets += struct.unpack_from(f">{count}I", data, pos + 16)
    return offsets


def _ebml_vint(data: bytes, pos: int, marker: bool) -> tuple[int, int]:
    length = 9 - data[pos].bit_length()
    assert 1 <= length <= 8
    value = int.from_bytes(data[pos:pos + length], "big")
    return (value if marker else value & ((1 << (7 * length)) - 1)), length


def ebml_children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(id, body start, body end) of each element; they must fill [start, end) exactly."""
    out, pos = [], start
    while pos < end:
        ident, id_len = _ebml_vint(data, pos, True)
        size, size_len = _ebml_vint(data, pos + id_len, False)
        body = pos + id_len + size_len
        assert body + size <= end
        out.append((ident, body, body + size))
        pos = body + size
    assert pos == end
    return out


def matroska_tags(data: bytes) -> dict[str, str]:
    """Walk the whole file, check every level-1 CRC-32, return the SimpleTags (name → value)."""
    top = ebml_children(data, 0, len(data))
    assert top[0][0] == 0x1A45DFA3 and top[1][0] == 0x18538067
    tags = {}
    for ident, body, end in ebml_children(data, top[1][1], top[1][2]):
        if ident in (0xEC, 0xBF):  # Void, CRC-32: not masters
            continue
        children = ebml_children(data, body, end)
        if children and children[0][0] == 0xBF:
            crc_body, crc_end = children[0][1], children[0][2]
            assert struct.unpack("<I", data[crc_body:crc_end])[0] == zlib.crc32(data[crc_end:end])
        if ident == 0x1254C367:
            for tag_id, tag_body, tag_end in children:
                if tag_id != 0x7373:
                    continue
                for simple_id, simple_body, simple_end in ebml_children(data, tag_body, tag_end):
                    if simple_id == 0x67C8:
                        fields = {i: data[b:e] for i, b, e in ebml_children(data, simple_body, simple_end)}
                        tags[fields[0x45A3].decode()] = fields[0x4487].decode()
    return tags


def _ogg_crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


OGG_TABLE = _ogg_crc_table()


def ogg_crc_reference(page: bytes) -> int:
    crc = 0
    for byte in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ OGG_TABLE[(crc >> 24) ^ byte]
    return crc


def ogg_packets(data: bytes) -> list[bytes]:
    """Check every page (magic, CRC, sequence) and return the packets of the (single) stream."""
    packets, current, pos, sequence = [], b"", 0, 0
    while pos < len(data):
        assert data[pos:pos + 4] == b"OggS"
        count = data[pos + 26]
        lacing = data[pos + 27:pos + 27 + count]
        size = 27 + count + sum(lacing)
        page = bytearray(data[pos:pos + size])
        stored = struct.unpack_from("<I", page, 22)[0]
        page[22:26] = bytes(4)
        assert stored == ogg_crc_reference(bytes(page)), f"bad CRC on page {sequence}"
        assert struct.unpack_from("<I", data, pos + 18)[0] == sequence
        body = pos + 27 + count
        for value in lacing:
            current += data[body:body + value]
            body += value
            if value < 255:
                packets.append(current)
                current = b""
        pos += size
        sequence += 1
    return packets


def vorbis_comments(packet: bytes, prefix: bytes) -> dict[str, str]:
    assert packet.startswith(prefix)
    pos = len(prefix)
    vendor_len = struct.unpack_from("<I", packet, pos)[0]
    pos += 4 + vendor_len
    count = struct.unpack_from("<I", packet, pos)[0]
    pos += 4
    out = {}
    for _ in range(count):
        length = struct.unpack_from("<I", packet, pos)[0]
        key, _, value = packet[pos + 4:pos + 4 + length].decode().partition("=")
        out[key] = value
        pos += 4 + length
    return out


def flac_blocks(data: bytes) -> list[tuple[int, bytes]]:
    assert data[:4] == b"fLaC"
    blocks, pos = [], 4
    while True:
        header = data[pos]
        length = int.from_bytes(data[pos + 1:pos + 4], "big")
        blocks.append((header & 0x7F, data[pos + 4:pos + 4 + length]))
        pos += 4 + length
        if header & 0x80:
            break
    assert blocks[0][0] == 0 and data[pos:pos + 2] == b"\xff\xf8"  # STREAMINFO first, audio frame sync after
    return blocks


def id3_frames(data: bytes) -> list[tuple[bytes, bytes]]:
    """ID3v2.3/2.4 frames; the padding after them must be zeros, the audio right after the tag."""
    assert data[:3] == b"ID3"
    size = sum(b << (7 * (3 - i)) for i, b in enumerate(data[6:10]))
    end, pos, frames = 10 + size, 10, []
    while pos + 10 <= end and data[pos] != 0:
        raw = data[pos + 4:pos + 8]
        length = sum(b << (7 * (3 - i)) for i, b in enumerate(raw)) if data[3] == 4 else struct.unpack(">I", raw)[0]
        frames.append((data[pos:pos + 4], data[pos + 10:pos + 10 + length]))
        pos += 10 + length
    assert not any(data[pos:end]) and data[end:end + 1] == b"\xff"
    return frames


def av_metadata(data: bytes) -> dict[str, str]:
    """Metadata of the container and its first stream, as FFmpeg reads it (keys lower-cased)."""
    with av.open(io.BytesIO(data)) as container:
        meta = {k.lower(): v for k, v in container.metadata.items()}
        meta.update({k.lower(): v for k, v in container.streams[0].metadata.items()})
    return meta


def av_frames(data: bytes) -> list[bytes]:
    """Every decoded frame of the first stream, as FFmpeg decodes it."""
    with av.open(io.BytesIO(data)) as container:
        return [_visible(frame) for frame in container.decode(container.streams[0])]


def _visible(frame) -> bytes:
    """A decoded frame's samples or pixels, without the buffers' alignment padding."""
    if isinstance(frame, av.AudioFrame):
        per_plane = frame.samples * frame.format.bytes * (1 if frame.format.is_planar else frame.layout.nb_channels)
        return b"".join(bytes(plane)[:per_plane] for plane in frame.planes)
    rows = []
    for plane in frame.planes:
        raw, width = bytes(plane), plane.width * (3 if frame.format.name == "rgb24" else 1)
        rows += [raw[row * plane.line_size:row * plane.line_size + width] for row in range(plane.height)]
    return b"".join(rows)


def pil_frames(data: bytes) -> list[bytes]:
    image = Image.open(io.BytesIO(data))
    out = []
    for index in range(getattr(image, "n_frames", 1)):
        image.seek(index)
        out.append(image.convert("RGBA").tobytes())
    return out


# ---- cases: one per way a file with the key comes back ----------------------------------------

@dataclass
class Case:
    name: str
    make: Callable[[Path], bytes]
    removed: tuple[str, ...]                 # what remove_secrets must report
    kept: Callable[[bytes], dict]            # metadata other than the prompt, read independently
    content: Callable[[bytes], object]       # the picture / sound / structure that must not change
    kept_expected: dict | None = None


def _kept_av(data: bytes) -> dict:
    meta = av_metadata(data)
    return {k: v for k, v in meta.items() if k in ("prompt", "workflow")}


def _content_av(data: bytes) -> object:
    frames = av_frames(data)
    assert frames
    return frames


def _kept_png(data: bytes) -> dict:
    return {k: v for k, v in png_texts(data).items() if k in ("prompt", "workflow")}


def _kept_webp(data: bytes) -> dict:
    exif = dict(Image.open(io.BytesIO(data)).getexif())
    riff_chunks(data)
    return {hex(tag): value for tag, value in exif.items()}


def _kept_mp4(data: bytes) -> dict:
    boxes = mp4_boxes(data)
    assert [n for n, _, _ in boxes if n.count("/") == 1] == ["/ftyp", "/moov", "/free", "/mdat"]  # faststart layout
    mdat = next((p, s) for n, p, s in boxes if n == "/mdat")
    assert all(mdat[0] + 8 <= off < mdat[0] + mdat[1] for off in mp4_chunk_offsets(data))
    return _kept_av(data)


def _kept_mkv(data: bytes) -> dict:
    tags = matroska_tags(data)
    assert _kept_av(data) == {k.lower(): v for k, v in tags.items() if k in ("PROMPT", "WORKFLOW")}
    return {k: v for k, v in tags.items() if k in ("PROMPT", "WORKFLOW")}


def _kept_ogg(data: bytes) -> dict:
    comments = vorbis_comments(ogg_packets(data)[1], b"OpusTags")
    return {k: v for k, v in comments.items() if k in ("prompt", "workflow")}


def _kept_flac(data: bytes) -> dict:
    block = next(body for kind, body in flac_blocks(data) if kind == 4)
    return {k: v for k, v in vorbis_comments(block, b"").items() if k in ("prompt", "workflow")}


def _kept_mp3(data: bytes) -> dict:
    out = {}
    for frame_id, body in id3_frames(data):
        if frame_id == b"TXXX":
            key, _, value = body[1:].partition(b"\0")
            out[key.decode()] = value.rstrip(b"\0").decode()
    return out


def _kept_latent(data: bytes) -> dict:
    length = struct.unpack_from("<Q", data)[0]
    return json.loads(data[8:8 + length])["__metadata__"]


def _content_latent(data: bytes) -> object:
    length = struct.unpack_from("<Q", data)[0]
    header = json.loads(data[8:8 + length])
    return ({k: v for k, v in header.items() if k != "__metadata__"}, data[8 + length:])


def _sim_mp4_content(data: bytes) -> object:
    boxes = mp4_boxes(data)
    mdat = next((p, s) for n, p, s in boxes if n == "/mdat")
    offsets = mp4_chunk_offsets(data)
    return offsets, data[mdat[0]:mdat[0] + mdat[1]], data[offsets[0]:offsets[0] + 32]


def _sim_webm_content(data: bytes) -> object:
    top = ebml_children(data, 0, len(data))
    return [data[b:e] for i, b, e in ebml_children(data, top[1][1], top[1][2]) if i in (0x1F43B675, 0x1654AE6B)]


def _sim_ogg_content(data: bytes) -> object:
    return [p for i, p in enumerate(ogg_packets(data)) if i != 1]


def _sim_flac_content(data: bytes) -> object:
    blocks = flac_blocks(data)
    return blocks[0], data[data.index(b"\xff\xf8", 4):]


def _sim_mp3_content(data: bytes) -> object:
    return data[data.index(b"\xff\xfb"):]


FRAMES = [(64, 48, (200, 30, 90)), (64, 48, (10, 220, 40)), (64, 48, (0, 0, 250))]
PNG_REMOVED = ("PNG tEXt chunk 'prompt'",)
KEPT_WORKFLOW = {"workflow": WORKFLOW_JSON}

CASES = [
    Case("png", lambda _: comfy_png(), PNG_REMOVED, _kept_png, pil_frames),
    Case("apng", lambda _: comfy_apng(), ("PNG comf chunk 'prompt'",), _kept_png, pil_frames),
    Case("webp", lambda _: comfy_webp(), ("WebP EXIF: EXIF tag 0x0110 (Model)",), _kept_webp, pil_frames,
         {"0x10f": f"workflow:{WORKFLOW_JSON}"}),
    Case("mp4", lambda tmp: comfy_video(tmp, "mp4"), ("MP4 ilst item 2 box",), _kept_mp4, _content_av),
    Case("mp4-buffer", lambda tmp: comfy_video(tmp, "mp4", to_file=False), ("MP4 ilst item 2 box",), _kept_av,
         _content_av),
    Case("mkv", lambda tmp: comfy_video(tmp, "mkv"), ("Matroska SimpleTag 'PROMPT'",), _kept_mkv, _content_av,
         {"WORKFLOW": WORKFLOW_JSON}),
    Case("webm-av1", lambda tmp: comfy_video(tmp, "webm"), ("Matroska SimpleTag 'PROMPT'",), _kept_mkv, _content_av,
         {"WORKFLOW": WORKFLOW_JSON}),
    Case("webm-vp9", comfy_webm_vp9, ("Matroska SimpleTag 'PROMPT'",), _kept_mkv, _content_av,
         {"WORKFLOW": WORKFLOW_JSON}),
    Case("flac", lambda _: comfy_audio("flac"), ("FLAC comment 'prompt'",), _kept_flac, _content_av),
    Case("mp3", lambda _: comfy_audio("mp3"), ("ID3 TXXX frame 'prompt'",), _kept_mp3, _content_av),
    Case("opus", lambda _: comfy_audio("opus"), ("Ogg comment 'prompt'",), _kept_ogg, _content_av),
    Case("opus-multipage", lambda _: comfy_audio("opus", {"workflow": {"big": "w" * 150_000}}),
         ("Ogg comment 'prompt'",), lambda d: set(_kept_ogg(d)), _content_av, {"workflow"}),
    Case("jpeg", lambda _: custom_jpeg(),
         ("JPEG EXIF: EXIF tag 0x0110 (Model)", "JPEG APP1 XMP segment", "JPEG COM segment"),
         lambda d: {hex(k): v for k, v in Image.open(io.BytesIO(d)).getexif().items()}, pil_frames,
         {"0x10f": f"workflow:{WORKFLOW_JSON}"}),
    Case("gif", lambda _: custom_gif(f"prompt: {KEY}".encode()), ("GIF comment extension",),
         lambda d: {"comment": Image.open(io.BytesIO(d)).info.get("comment")}, pil_frames, {"comment": None}),
    # the test server's writers (what the engine-level tests download)
    Case("sim-png", lambda _: media.png(64, 48, (1, 2, 3), TEXTS), PNG_REMOVED, _kept_png, pil_frames),
    Case("sim-apng", lambda _: media.apng(FRAMES, 6.0, TEXTS), ("PNG comf chunk 'prompt'",), _kept_png, pil_frames),
    Case("sim-webp", lambda _: media.webp_animated(FRAMES, 6.0, TEXTS), ("WebP EXIF: EXIF tag 0x0110 (Model)",),
         _kept_webp, lambda d: [c for c in riff_chunks(d) if c[0] != b"EXIF"], {"0x10f": f"workflow:{WORKFLOW_JSON}"}),
    Case("sim-mp4", lambda _: media.mp4(64, 64, 12, 12.0, "s", {"workflow": WORKFLOW_JSON, "prompt": PROMPT_JSON}),
         ("MP4 ilst item 2 box",), _kept_mp4, _sim_mp4_content),
    Case("sim-webm", lambda _: media.webm(64, 64, 6, 6.0, "s", TEXTS), ("Matroska SimpleTag 'PROMPT'",), _kept_mkv,
         _sim_webm_content, {"WORKFLOW": WORKFLOW_JSON}),
    Case("sim-opus", lambda _: media.opus(48000, 2, 48000, TEXTS), ("Ogg comment 'prompt'",), _kept_ogg,
         _sim_ogg_content),
    Case("sim-opus-multipage", lambda _: media.opus(48000, 2, 48000, {**TEXTS, "workflow": "w" * 140_000}),
         ("Ogg comment 'prompt'",), lambda d: set(_kept_ogg(d)), _sim_ogg_content, {"workflow"}),
    Case("sim-flac", lambda _: media.flac(44100, 2, 44100, TEXTS), ("FLAC comment 'prompt'",), _kept_flac,
         _sim_flac_content),
    Case("sim-mp3", lambda _: media.mp3(44100, 2, 44100, TEXTS), ("ID3 TXXX frame 'prompt'",), _kept_mp3,
         _sim_mp3_content),
    Case("sim-latent", lambda _: media.latent(64, 64, 1, TEXTS), ("safetensors metadata 'prompt'",), _kept_latent,
         _content_latent),
]


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("media")
    return {case.name: case.make(tmp) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_key_is_removed_and_everything_else_is_kept(case, made):
    original = made[case.name]
    assert KEY.encode() in original  # where ComfyUI writes it (the multi-page Ogg case: in one page)

    cleaned = remove_secrets(original, "application/octet-stream", [KEY])  # the type never decides the format

    assert (cleaned.clean, cleaned.problem, cleaned.removed) == (True, "", case.removed)
    assert KEY.encode() not in cleaned.data and not find_secret(cleaned.data, [KEY])
    want = case.kept_expected if case.kept_expected is not None else KEPT_WORKFLOW
    assert case.kept(cleaned.data) == want
    assert case.content(cleaned.data) == case.content(original)


@pytest.mark.parametrize("case", [c for c in CASES if c.name in ("png", "webp", "mp4", "webm-vp9", "flac", "opus")],
                         ids=lambda c: c.name)
def test_a_file_without_the_key_comes_back_as_it_was(case, made):
    cleaned = remove_secrets(made[case.name], "", [OTHER_KEY])
    assert cleaned.data is made[case.name]
    assert (cleaned.still_inside, cleaned.removed, cleaned.problem) == (False, (), "")


def test_no_secrets_means_no_work():
    data = comfy_png()
    assert remove_secrets(data, "", []) == Cleaned(data, (), False)
    assert remove_secrets(data, "", ["short"]).data is data  # under 8 characters: not scanned
    assert not find_secret(data, [])


def test_every_entry_holding_the_key_goes_and_only_those():
    extra = {"workflow": EXTRA["workflow"], "notes": {"text": f"the key is {KEY}"}, "seed": 42}
    data = comfy_png(extra=extra)
    cleaned = remove_secrets(data, "", [KEY])
    assert cleaned.removed == ("PNG tEXt chunk 'prompt'", "PNG tEXt chunk 'notes'")
    assert png_texts(cleaned.data) == {"workflow": WORKFLOW_JSON, "seed": "42"}


def test_two_secrets_both_go():
    data = media.flac(44100, 1, 4410, {"prompt": PROMPT_JSON, "token": OTHER_KEY, "workflow": WORKFLOW_JSON})
    cleaned = remove_secrets(data, "", [KEY, OTHER_KEY])
    assert cleaned.removed == ("FLAC comment 'prompt'; FLAC comment 'token'",)
    assert set(vorbis_comments(next(b for k, b in flac_blocks(cleaned.data) if k == 4), b"")) == {"workflow", "encoder"}


def test_the_key_in_other_encodings_is_found_and_removed():
    for text in (json.dumps(json.dumps(PROMPT)), "\u4f60\u597d " + KEY):
        info = PngInfo()
        info.add_itxt("comment", text)  # UTF-8 iTXt: double-escaped JSON, non-Latin text
        out = io.BytesIO()
        picture(2).save(out, format="PNG", pnginfo=info)
        cleaned = remove_secrets(out.getvalue(), "", [KEY])
        assert cleaned.removed == ("PNG iTXt chunk 'comment'",) and not cleaned.still_inside
    xp_comment = Image.Exif()
    xp_comment[0x9C9C] = KEY.encode("utf-16-le") + b"\0\0"
    xp_comment[0x010F] = "maker"
    out = io.BytesIO()
    picture(3).save(out, format="JPEG", exif=xp_comment.tobytes())
    assert KEY.encode() not in out.getvalue()
    cleaned = remove_secrets(out.getvalue(), "", [KEY])
    assert cleaned.removed == ("JPEG EXIF: EXIF tag 0x9C9C (XPComment)",) and not cleaned.still_inside
    assert dict(Image.open(io.BytesIO(cleaned.data)).getexif()) == {0x010F: "maker"}


# ---- where a byte scan cannot see the key ------------------------------------------------------

def test_compressed_png_text_is_opened():
    for add in (lambda info: info.add_text("prompt", PROMPT_JSON, zip=True),
                lambda info: info.add_itxt("prompt", PROMPT_JSON, zip=True)):
        info = PngInfo()
        add(info)
        info.add_text("workflow", WORKFLOW_JSON, zip=True)
        out = io.BytesIO()
        picture(4).save(out, format="PNG", pnginfo=info)
        data = out.getvalue()
        assert KEY.encode() not in data and find_secret(data, [KEY])
        cleaned = remove_secrets(data, "", [KEY])
        assert not cleaned.still_inside and cleaned.removed[0].startswith("PNG ") and "'prompt'" in cleaned.removed[0]
        assert png_texts(cleaned.data) == {"workflow": WORKFLOW_JSON}
        assert pil_frames(cleaned.data) == pil_frames(data)


def test_a_key_split_across_ogg_pages_is_found_and_removed():
    # The comment packet: "OpusTags" + vendor + count + (len + "workflow=...") + (len + "prompt=...").
    vendor = media.LAVF.encode()
    head = 8 + 4 + len(vendor) + 4 + 4 + len("workflow=") + 4 + len("prompt=")
    split_at = 255 * 255 - 20            # the first page carries 65,025 bytes of the packet
    filler = "w" * (split_at - head - len('{"k": "'))  # the key starts 20 bytes before the page ends
    tags = {"workflow": filler, "prompt": json.dumps({"k": KEY})}
    data = media.opus(48000, 2, 48000, tags)
    assert KEY.encode() not in data and find_secret(data, [KEY])
    cleaned = remove_secrets(data, "", [KEY])
    assert (cleaned.removed, cleaned.still_inside) == (("Ogg comment 'prompt'",), False)
    packets = ogg_packets(cleaned.data)  # every page CRC right, sequence intact
    assert vorbis_comments(packets[1], b"OpusTags") == {"workflow": filler, "encoder": "Lavc61.19.100 libopus"}
    assert len(cleaned.data) == len(data) and packets[2:] == ogg_packets(data)[2:]


def test_a_key_split_across_gif_sub_blocks_is_found_and_removed():
    comment = b"x" * 250 + KEY.encode() + b" tail"
    data = custom_gif(comment)
    assert KEY.encode() not in data and find_secret(data, [KEY])
    cleaned = remove_secrets(data, "", [KEY])
    assert (cleaned.removed, cleaned.still_inside) == (("GIF comment extension",), False)
    assert pil_frames(cleaned.data) == pil_frames(data)


def _id3v23(frames: bytes) -> bytes:
    size = len(frames) + 64
    header = b"ID3\x03\x00\x00" + bytes((size >> s) & 0x7F for s in (21, 14, 7, 0))
    return header + frames + bytes(64) + b"\xff\xfb\x90\x64" + bytes(400)


def test_a_compressed_id3_frame_is_opened():
    text = b"\x00prompt\x00" + PROMPT_JSON.encode()
    packed = struct.pack(">I", len(text)) + zlib.compress(text)
    compressed = b"TXXX" + struct.pack(">I", len(packed)) + b"\x00\x80" + packed
    plain = b"TXXX" + struct.pack(">I", 10) + b"\x00\x00" + b"\x00workflow\x00"
    data = _id3v23(compressed + plain)
    assert KEY.encode() not in data and find_secret(data, [KEY])
    cleaned = remove_secrets(data, "", [KEY])
    assert (cleaned.removed, cleaned.still_inside) == (("ID3 TXXX frame",), False)
    assert id3_frames(cleaned.data) == [(b"TXXX", b"\x00workflow\x00")] and len(cleaned.data) == len(data)


def test_an_encrypted_id3_frame_cannot_be_read_so_it_goes():
    encrypted = b"TXXX" + struct.pack(">I", 12) + b"\x00\x40" + b"\x01" + _noise(1, 11)
    data = _id3v23(encrypted)
    cleaned = remove_secrets(data, "", [KEY])
    assert cleaned.removed == ("ID3 TXXX frame (encrypted, cannot be checked)",) and not cleaned.still_inside


# ---- what cannot be cleaned is reported ---------------------------------------------------------

def test_a_key_in_the_pixels_is_reported_not_hidden():
    grey_row = struct.pack(">IIBBBBB", len(KEY), 1, 8, 0, 0, 0, 0)  # one row of 8-bit grey pixels
    data = (media.PNG_SIGNATURE + media.chunk(b"IHDR", grey_row)
            + media.chunk(b"IDAT", zlib.compress(b"\x00" + KEY.encode(), 0)) + media.chunk(b"IEND", b""))
    assert Image.open(io.BytesIO(data)).tobytes() == KEY.encode()  # stored deflate block: the key as pixels
    cleaned = remove_secrets(data, "", [KEY])
    assert cleaned.still_inside and cleaned.removed == ()
    assert cleaned.problem == "the key is still in the PNG file outside the metadata that can be removed"


def test_a_key_in_video_data_is_reported_and_the_metadata_still_goes(made):
    data = bytearray(made["sim-mp4"])
    mdat = next(p for n, p, _ in mp4_boxes(bytes(data)) if n == "/mdat")
    data[mdat + 20:mdat + 20 + len(KEY)] = KEY.encode()
    cleaned = remove_secrets(bytes(data), "", [KEY])
    assert cleaned.still_inside and cleaned.removed == ("MP4 ilst item 2 box",)
    assert cleaned.data.count(KEY.encode()) == 1


def test_unknown_types_are_only_scanned():
    text = f"a log line with {KEY}\n".encode()
    cleaned = remove_secrets(text, "text/plain; charset=utf-8", [KEY])
    assert cleaned == Cleaned(text, (), True, "the key is in a text/plain file, a type that cannot be cleaned")
    assert not cleaned.clean
    hostile_type = remove_secrets(text, "text/<script>\n", [KEY]).problem
    assert hostile_type == "the key is in a binary file, a type that cannot be cleaned"
    plain = b"just text"
    assert remove_secrets(plain, "text/plain", [KEY]).data is plain and remove_secrets(plain, "", [KEY]).clean


def test_labels_never_repeat_the_key():
    info = PngInfo()
    info.add_text(KEY, "value")  # the key as a keyword
    out = io.BytesIO()
    picture(6).save(out, format="PNG", pnginfo=info)
    cleaned = remove_secrets(out.getvalue(), "", [KEY])
    assert cleaned.removed == ("PNG tEXt chunk '?'",)
    assert not any(KEY[i:i + 8] in " ".join(cleaned.removed) for i in range(len(KEY) - 7))


# ---- hostile and broken files -------------------------------------------------------------------

SMALL = ["png", "apng", "webp", "jpeg", "gif", "sim-mp4", "sim-webm", "sim-opus", "sim-flac", "sim-mp3",
         "sim-latent", "mp4", "webm-vp9"]


@pytest.mark.parametrize("name", SMALL)
def test_truncated_files_give_a_verdict_not_an_exception(name, made):
    data = made[name]
    key_at = data.find(KEY.encode())
    for cut in sorted({1, 8, 13, 40, key_at, key_at + 10, key_at + len(KEY) + 3, len(data) // 2, len(data) - 1}):
        piece = data[:cut]
        cleaned = remove_secrets(piece, "", [KEY])
        assert isinstance(cleaned, Cleaned)
        if KEY.encode() in piece:
            assert cleaned.still_inside or KEY.encode() not in cleaned.data
        if not cleaned.still_inside:
            assert KEY.encode() not in cleaned.data and not find_secret(cleaned.data, [KEY])


def test_a_truncated_file_holding_the_key_in_its_metadata_is_withheld(made):
    data = made["sim-mp4"]
    piece = data[:data.find(KEY.encode()) + len(KEY) + 5]  # the moov box now runs past the end
    cleaned = remove_secrets(piece, "", [KEY])
    assert cleaned.still_inside and cleaned.data is piece
    assert cleaned.problem == "the MP4 file could not be read to clean it (MP4 box runs past its parent)"


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_a_png_of_too_many_chunks_is_refused_not_walked():
    head = comfy_png()[:33]
    data = head + _png_chunk(b"teXt", b"") * (MAX_PARTS + 10) + _png_chunk(b"IEND", b"")
    started = time.perf_counter()
    cleaned = remove_secrets(data, "", [KEY])
    elapsed = time.perf_counter() - started
    assert cleaned.still_inside  # cannot be sure: withheld
    assert cleaned.problem == f"the PNG file could not be read to clean it (more than {MAX_PARTS} parts to check)"
    print(f"PNG of {MAX_PARTS + 10} chunks refused in {elapsed:.2f} s")


def test_a_compressed_text_bomb_is_cut_off():
    bomb = zlib.compress(bytes(80 * 1024 * 1024), 9)
    data = comfy_png()[:33] + _png_chunk(b"zTXt", b"bomb\x00\x00" + bomb) + _png_chunk(b"IEND", b"")
    cleaned = remove_secrets(data, "", [KEY])
    assert cleaned.still_inside
    assert cleaned.problem == "the PNG file could not be read to clean it (more than 64 MiB of compressed text)"


def test_deeply_nested_boxes_do_not_recurse():
    inner = struct.pack(">I4s", 8 + len(KEY), b"\xa9cmt") + KEY.encode()
    for _ in range(5000):
        inner = struct.pack(">I4s", 8 + len(inner), b"udta") + inner
    data = media.mp4(64, 64, 2, 2.0, "n") + inner
    cleaned = remove_secrets(data, "", [KEY])
    assert not cleaned.still_inside and cleaned.removed == ("MP4 udta box",)
    assert len(cleaned.data) == len(data)


def test_an_exif_directory_that_points_to_itself_ends():
    tiff = bytearray(media.exif_tiff({0x0110: f"prompt:{PROMPT_JSON}", 0x010F: "workflow:{}"}))
    next_at = 8 + 2 + 12 * 2
    tiff[next_at:next_at + 4] = struct.pack("<I", 8)  # IFD0's next IFD is IFD0
    data = bytes(tiff)
    riff = b"WEBP" + b"VP8X" + struct.pack("<I", 10) + bytes([0x08, 0, 0, 0]) + bytes(6)
    riff += b"EXIF" + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")
    webp = b"RIFF" + struct.pack("<I", len(riff)) + riff
    cleaned = remove_secrets(webp, "", [KEY])
    assert (cleaned.removed, cleaned.still_inside) == (("WebP EXIF: EXIF tag 0x0110 (Model)",), False)


def test_a_comment_count_of_four_billion_is_malformed():
    data = bytearray(media.flac(44100, 1, 4410, TEXTS))
    count_at = data.find(media.LAVF.encode()) + len(media.LAVF)
    data[count_at:count_at + 4] = b"\xff\xff\xff\xff"
    cleaned = remove_secrets(bytes(data), "", [KEY])
    assert cleaned.still_inside and cleaned.problem.startswith("the FLAC file could not be read to clean it (")


def test_too_many_copies_of_the_key_are_refused():
    data = media.png(8, 8, (0, 0, 0), {"prompt": KEY * 20_000})
    cleaned = remove_secrets(data, "", [KEY])
    assert cleaned.still_inside and cleaned.problem == "the file holds the key too many times to clean"


MAGICS = [b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x10\x00\x00WEBP", b"\xff\xd8\xff", b"GIF89a", b"\x00\x00\x00\x18ftyp",
          b"\x1a\x45\xdf\xa3", b"fLaC", b"ID3\x04\x00\x00", b"ID3\x03\x00\x80", b"OggS\x00\x02", b"\x20\x00\x00\x00"
          b"\x00\x00\x00\x00{", b""]


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(magic=st.sampled_from(MAGICS), body=st.binary(max_size=600), with_key=st.booleans(), at=st.integers(0, 600))
def test_garbage_never_raises_and_never_passes_a_key(magic, body, with_key, at):
    data = magic + (body[:at] + KEY.encode() + body[at:] if with_key else body)
    cleaned = remove_secrets(data, "", [KEY])
    if with_key:
        assert cleaned.still_inside or KEY.encode() not in cleaned.data
    if not cleaned.still_inside:
        assert KEY.encode() not in cleaned.data and not find_secret(cleaned.data, [KEY])


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(SMALL), edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=6),
       cut=st.floats(0.05, 1.0))
def test_mutated_real_files_never_raise_and_never_pass_a_key(made, name, edits, cut):
    data = bytearray(made[name])
    for where, value in edits:
        data[min(len(data) - 1, int(where * len(data)))] = value
    piece = bytes(data[:max(1, int(cut * len(data)))])
    cleaned = remove_secrets(piece, "", [KEY])
    if not cleaned.still_inside:
        assert KEY.encode() not in cleaned.data and not find_secret(cleaned.data, [KEY])
        for form in (KEY.encode("utf-16-le"), KEY.encode("utf-16-be")):
            assert form not in cleaned.data


TEXT_KINDS = st.sampled_from(["tEXt", "zTXt", "iTXt", "iTXt-z", "comf"])


@st.composite
def png_with_texts(draw):
    size = (draw(st.integers(1, 24)), draw(st.integers(1, 24)))
    pixels = draw(st.binary(min_size=size[0] * size[1] * 3, max_size=size[0] * size[1] * 3))
    entries = draw(st.lists(st.tuples(TEXT_KINDS, st.text("abcdefghij", min_size=1, max_size=8),
                                      st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=300),
                                      st.booleans(), st.integers(0, 300)),
                            max_size=6, unique_by=lambda e: e[1]))
    return size, pixels, entries


@settings(max_examples=80, deadline=None, database=None)
@given(png_with_texts())
def test_png_cleaning_keeps_the_pixels_and_exactly_the_entries_without_the_key(spec):
    size, pixels, entries = spec
    info, expected = PngInfo(), {}
    for kind, keyword, text, with_key, at in entries:
        value = text[:at] + KEY + text[at:] if with_key else text
        if kind == "tEXt":
            info.add_text(keyword, value)
        elif kind == "zTXt":
            info.add_text(keyword, value, zip=True)
        elif kind.startswith("iTXt"):
            info.add_itxt(keyword, value, zip=kind == "iTXt-z")
        else:
            info.add(b"comf", keyword.encode() + b"\0" + value.encode(), after_idat=True)
        if not with_key:
            expected[keyword] = value
    out = io.BytesIO()
    Image.frombytes("RGB", size, pixels).save(out, format="PNG", pnginfo=info)
    data = out.getvalue()

    cleaned = remove_secrets(data, "", [KEY])

    assert not cleaned.still_inside
    assert png_texts(cleaned.data) == expected
    assert Image.open(io.BytesIO(cleaned.data)).tobytes() == pixels
    idat = [body for kind, body in png_chunks(data) if kind == b"IDAT"]
    assert [body for kind, body in png_chunks(cleaned.data) if kind == b"IDAT"] == idat


@settings(max_examples=40, deadline=None, database=None)
@given(st.lists(st.tuples(st.text("abcdefghijklmnop", min_size=1, max_size=10),
                          st.integers(0, 90_000), st.booleans()), min_size=1, max_size=5, unique_by=lambda e: e[0]),
       st.sampled_from(["opus", "flac"]))
def test_comment_cleaning_keeps_exactly_the_comments_without_the_key(comments, fmt):
    tags, expected = {}, {}
    for index, (name, length, with_key) in enumerate(comments):
        value = ("v" * length)[: length // 2] + (KEY if with_key else "") + ("v" * length)[length // 2:]
        tags[name] = value + str(index)
        if not with_key:
            expected[name] = tags[name]
    data = media.opus(48000, 1, 4800, tags) if fmt == "opus" else media.flac(44100, 1, 4410, tags)

    cleaned = remove_secrets(data, "", [KEY])

    assert not cleaned.still_inside and len(cleaned.removed) == (1 if len(expected) < len(tags) else 0)
    if fmt == "opus":
        comments_left = vorbis_comments(ogg_packets(cleaned.data)[1], b"OpusTags")
        assert ogg_packets(cleaned.data)[2:] == ogg_packets(data)[2:]
    else:
        comments_left = vorbis_comments(next(b for k, b in flac_blocks(cleaned.data) if k == 4), b"")
    comments_left.pop("encoder")
    assert comments_left == expected


def test_ogg_crc_matches_a_bitwise_reference():
    for page in (b"", b"OggS", _noise(7, 5000)):
        assert ogg_module.ogg_crc(page) == ogg_crc_reference(page) == media.ogg_crc(page)


# ---- the test server embeds the key like ComfyUI, and none comes back -------------------------

def _graph_with_every_save_node() -> dict:
    """The captured workflows' save nodes in one graph (inputs as ComfyUI's object_info has them)."""
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 3, "color": 8421504}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "md/img"}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
        "4": {"class_type": "SaveAnimatedWEBP", "inputs": {"images": ["1", 0], "filename_prefix": "md/anim", "fps": 2.0,
                                                           "lossless": True, "quality": 80, "method": "default"}},
        "5": {"class_type": "SaveAnimatedPNG", "inputs": {"images": ["1", 0], "filename_prefix": "md/apng", "fps": 2.0,
                                                          "compress_level": 4}},
        "6": {"class_type": "CreateVideo", "inputs": {"images": ["1", 0], "fps": 12.0}},
        "7": {"class_type": "SaveVideo", "inputs": {"video": ["6", 0], "filename_prefix": "md/video", "format": "auto",
                                                    "codec": "auto"}},
        "8": {"class_type": "SaveWEBM", "inputs": {"images": ["1", 0], "filename_prefix": "md/webm", "codec": "vp9",
                                                   "fps": 6.0, "crf": 32.0}},
        "9": {"class_type": "EmptyAudio", "inputs": {"duration": 1.0, "sample_rate": 44100, "channels": 2}},
        "10": {"class_type": "SaveAudio", "inputs": {"audio": ["9", 0], "filename_prefix": "md/flac"}},
        "11": {"class_type": "SaveAudioMP3", "inputs": {"audio": ["9", 0], "filename_prefix": "md/mp3",
                                                        "quality": "128k"}},
        "12": {"class_type": "SaveAudioOpus", "inputs": {"audio": ["9", 0], "filename_prefix": "md/opus",
                                                         "quality": "128k"}},
        "13": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "14": {"class_type": "SaveLatent", "inputs": {"samples": ["13", 0], "filename_prefix": "md/latent"}},
    }


def test_every_save_node_of_the_test_server_embeds_the_key_and_none_comes_back(comfy_server):
    comfy_server.config(bizyair_state="server_mode", bizyair_valid_keys=[KEY])
    graph = _graph_with_every_save_node()
    apply_server_mode_key(graph, KEY, prompt_id="md-1")
    resp = requests.post(comfy_server.url + "/prompt", timeout=10, json={
        "prompt": graph, "client_id": "md", "extra_data": {"extra_pnginfo": EXTRA}})
    assert resp.status_code == 200, resp.text
    prompt_id = resp.json()["prompt_id"]
    entry = comfy_server.finished_entry(prompt_id, timeout=30)
    assert entry["status"]["status_str"] == "success"
    files = [(node, item) for node, out in entry["outputs"].items() for items in out.values()
             if isinstance(items, list) for item in items if isinstance(item, dict)]
    extensions = sorted(item["filename"].rsplit(".", 1)[1] for _, item in files)
    assert extensions == ["flac", "latent", "mp3", "mp4", "opus", "png", "png", "png", "png", "png", "png", "png",
                          "webm", "webp"]
    for node, item in files:
        data = requests.get(comfy_server.url + "/view", params=item, timeout=10).content
        assert KEY.encode() in data, (node, item["filename"])
        cleaned = remove_secrets(data, "", [KEY])
        assert not cleaned.still_inside and KEY.encode() not in cleaned.data, (node, cleaned)
        assert cleaned.removed, (node, item["filename"])
        kept = (WORKFLOW_JSON, json.dumps(WORKFLOW_JSON)[1:-1])  # latents hold it as a JSON string
        assert any(k.encode() in cleaned.data for k in kept), (node, item["filename"])  # extra_pnginfo stays


# ---- more places the key can sit ------------------------------------------------------------------

def test_a_compressed_movie_header_cannot_be_checked_so_the_file_is_withheld(made):
    data = made["sim-mp4"]
    moov = next((p, s) for n, p, s in mp4_boxes(data) if n == "/moov")
    cmov = struct.pack(">I4s", 16, b"cmov") + bytes(8)
    grown = struct.pack(">I4s", moov[1] + len(cmov), b"moov") + data[moov[0] + 8:moov[0] + moov[1]] + cmov
    data = data[:moov[0]] + grown + data[moov[0] + moov[1]:]
    assert find_secret(data, [OTHER_KEY])
    cleaned = remove_secrets(data, "", [OTHER_KEY])
    assert cleaned.still_inside
    assert cleaned.problem == "the MP4 file could not be read to clean it (compressed movie header (cannot be checked))"


def test_webp_xmp_goes_and_the_riff_and_vp8x_follow():
    frames = [picture(i) for i in range(2)]
    out = io.BytesIO()
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description prompt="{KEY}"/></x:xmpmeta>'.encode()
    exif = exif_bytes({0x010F: f"workflow:{WORKFLOW_JSON}"})
    frames[0].save(out, format="WEBP", save_all=True, append_images=frames[1:], xmp=xmp, exif=exif, lossless=True)
    data = out.getvalue()
    assert riff_chunks(data)[0][1][0] & 0x0C == 0x0C  # VP8X says: EXIF and XMP present
    cleaned = remove_secrets(data, "", [KEY])
    assert (cleaned.removed, cleaned.still_inside) == (("WebP XMP chunk",), False)
    chunks = riff_chunks(cleaned.data)  # RIFF size right, chunks fill it
    assert chunks[0][1][0] & 0x0C == 0x08 and b"XMP " not in [kind for kind, _ in chunks]
    assert pil_frames(cleaned.data) == pil_frames(data)
    assert dict(Image.open(io.BytesIO(cleaned.data)).getexif()) == {0x010F: f"workflow:{WORKFLOW_JSON}"}


def test_a_flac_picture_holding_the_key_goes_and_the_last_block_flag_moves():
    data = media.flac(44100, 1, 4410, {"workflow": WORKFLOW_JSON})
    blocks_end = data.index(b"\xff\xf8", 4)
    mime, description = b"image/png", f"cover for {KEY}".encode()
    picture_body = (struct.pack(">I", 3) + struct.pack(">I", len(mime)) + mime + struct.pack(">I", len(description))
                    + description + struct.pack(">IIIII", 1, 1, 24, 0, 4) + b"\x89PNG")
    last_start = data.rfind(b"\x81", 0, blocks_end - 8192)  # the PADDING block ends the metadata
    assert data[last_start] == 0x81 and last_start + 4 + 8192 == blocks_end
    data = (data[:last_start] + b"\x01" + data[last_start + 1:blocks_end]
            + b"\x86" + len(picture_body).to_bytes(3, "big") + picture_body + data[blocks_end:])
    cleaned = remove_secrets(data, "", [KEY])
    assert (cleaned.removed, cleaned.still_inside) == (("FLAC PICTURE block",), False)
    assert [kind for kind, _ in flac_blocks(cleaned.data)] == [0, 4, 1]  # PADDING is last again
    assert cleaned.data[-100:] == data[-100:]


def test_an_unsynchronised_id3_tag_holding_the_key_is_emptied_whole():
    frame = b"TXXX" + struct.pack(">I", 8 + len(PROMPT_JSON)) + b"\x00\x00" + b"\x00prompt\x00" + PROMPT_JSON.encode()
    data = bytearray(_id3v23(frame))
    data[5] = 0x80  # whole-tag unsynchronisation: the frames cannot be walked as they are
    cleaned = remove_secrets(bytes(data), "", [KEY])
    assert (cleaned.removed, cleaned.still_inside) == (("ID3 tag (whole tag)",), False)
    assert id3_frames(cleaned.data) == [] and len(cleaned.data) == len(data)


def test_a_key_in_matroska_media_is_reported_and_a_key_in_a_void_is_zeroed(made):
    data = made["sim-webm"]
    segment = ebml_children(data, 0, len(data))[1]
    cluster = next(c for c in ebml_children(data, segment[1], segment[2]) if c[0] == 0x1F43B675)
    block = next(c for c in ebml_children(data, cluster[1], cluster[2]) if c[0] == 0xA3)
    in_media = data[:block[1] + 10] + KEY.encode() + data[block[1] + 10 + len(KEY):]
    cleaned = remove_secrets(in_media, "", [KEY])
    assert cleaned.still_inside and cleaned.removed == ("Matroska SimpleTag 'PROMPT'",)

    void = media.ebml(0xEC, b"old tags: " + KEY.encode())  # left over from an earlier edit of the file
    header_end = ebml_children(data, 0, len(data))[0][2]
    with_void = data[:header_end] + media.ebml(0x18538067, data[segment[1]:segment[2]] + void)
    cleaned = remove_secrets(with_void, "", [KEY])
    assert (cleaned.still_inside, cleaned.removed) == (False, ("Matroska SimpleTag 'PROMPT'", "Matroska Void data"))
    want = {k: v for k, v in matroska_tags(data).items() if k != "PROMPT"}
    assert matroska_tags(cleaned.data) == want and len(cleaned.data) == len(with_void)


def test_a_key_in_a_latent_tensor_name_is_reported():
    full = media.latent(64, 64, 1, {"workflow": WORKFLOW_JSON})
    length = struct.unpack_from("<Q", full)[0]
    header = json.loads(full[8:8 + length])
    header[KEY] = header.pop("latent_tensor")
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    data = struct.pack("<Q", len(raw)) + raw + full[8 + length:]
    cleaned = remove_secrets(data, "", [KEY])
    assert cleaned.still_inside and cleaned.removed == ()


def test_running_out_of_work_is_never_taken_for_a_merely_broken_tag():
    text = b"\x00prompt\x00" + PROMPT_JSON.encode()
    packed = struct.pack(">I", len(text)) + zlib.compress(text)
    hidden = b"TXXX" + struct.pack(">I", len(packed)) + b"\x00\x80" + packed
    data = _id3v23((b"TIT2" + bytes(6)) * (MAX_PARTS + 1) + hidden)  # too many empty frames, then the key
    assert KEY.encode() not in data
    cleaned = remove_secrets(data, "", [KEY])
    assert cleaned.still_inside and find_secret(data, [KEY])
    assert cleaned.problem == f"the ID3 file could not be read to clean it (more than {MAX_PARTS} parts to check)"


def test_a_gif_of_millions_of_tiny_sub_blocks_is_refused():
    head = b"GIF89a" + struct.pack("<HHBBB", 10, 10, 0, 0, 0) + b"\x2c" + bytes(8) + b"\x00" + b"\x02"
    data = head + b"\x01\x00" * 4_000_000 + b"\x00\x3b"  # 8 MB of one-byte image sub-blocks
    cleaned = remove_secrets(data, "", [KEY])
    assert cleaned.still_inside
    assert cleaned.problem == "the GIF file could not be read to clean it (too many GIF sub-blocks)"
