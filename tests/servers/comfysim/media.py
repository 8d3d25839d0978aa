"""File encoders for simulated outputs.

PNGs are real, decodable PNGs (zlib-compressed solid-colour IDAT) carrying ComfyUI's tEXt
metadata ("prompt" = the graph JSON, one chunk per extra_pnginfo key), so a test can tell which
prompt produced a file. Other formats have the right magic bytes and container framing plus a
deterministic body; nothing reads them past the header.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
import zlib
from functools import lru_cache

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PAD_CHUNK = b"paDd"  # ancillary, private, safe-to-copy: decoders skip it

CONTENT_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
    ".gif": "image/gif", ".bmp": "image/bmp", ".flac": "audio/flac", ".mp3": "audio/mpeg",
    ".opus": "audio/ogg", ".ogg": "audio/ogg", ".wav": "audio/x-wav", ".mp4": "video/mp4",
    ".webm": "video/webm", ".json": "application/json", ".txt": "text/plain",
    ".latent": "application/octet-stream", ".safetensors": "application/octet-stream",
}
# ComfyUI forces these to download rather than display (server.py, view_image).
FORCED_DOWNLOAD = {"text/html", "text/html-sandboxed", "application/xhtml+xml", "text/javascript", "text/css"}


def content_type(filename: str) -> str:
    """The Content-Type ComfyUI's /view sends for a file name."""
    import mimetypes
    dot = filename.rfind(".")
    ext = filename[dot:].lower() if dot >= 0 else ""
    ctype = CONTENT_TYPES.get(ext) or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return "application/octet-stream" if ctype in FORCED_DOWNLOAD else ctype


def filler(size: int, seed: str) -> bytes:
    """Deterministic, incompressible bytes."""
    if size <= 0:
        return b""
    digest = hashlib.sha256(seed.encode("utf-8", "replace")).digest()
    return random.Random(digest).randbytes(size)


# ---- PNG ---------------------------------------------------------------------------------

def chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def text_chunk(key: str, value: str) -> bytes:
    return chunk(b"tEXt", key.encode("latin-1", "replace") + b"\x00" + value.encode("latin-1", "replace"))


@lru_cache(maxsize=32)
def solid_idat(width: int, height: int, rgb: tuple[int, int, int], level: int = 4) -> bytes:
    """zlib stream of a solid RGB image, filter type 0 on every row (memoised: batches repeat)."""
    row = b"\x00" + bytes(rgb) * width
    comp = zlib.compressobj(level)
    parts = [comp.compress(row) for _ in range(height)]
    parts.append(comp.flush())
    return b"".join(parts)


def ihdr(width: int, height: int) -> bytes:
    return chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))


def png(width: int, height: int, rgb: tuple[int, int, int], texts: dict[str, str] | None = None,
        pad_to: int | None = None, seed: str = "", level: int = 4) -> bytes:
    """A valid RGB PNG. `pad_to` grows the file to that many bytes with an ancillary chunk."""
    head = PNG_SIGNATURE + ihdr(width, height)
    meta = b"".join(text_chunk(k, v) for k, v in (texts or {}).items())
    body = chunk(b"IDAT", solid_idat(width, height, tuple(rgb), level))
    tail = chunk(b"IEND", b"")
    data = head + meta + body
    if pad_to:
        missing = pad_to - len(data) - len(tail) - 12
        if missing >= 0:
            data += chunk(PAD_CHUNK, filler(missing, seed or f"{width}x{height}{rgb}"))
    return data + tail


def apng(frames: list[tuple[int, int, tuple[int, int, int]]], fps: float,
         texts: dict[str, str] | None = None) -> bytes:
    """An animated PNG: acTL, then fcTL+IDAT for frame 0 and fcTL+fdAT for the rest."""
    width, height = frames[0][0], frames[0][1]
    out = [PNG_SIGNATURE, ihdr(width, height), chunk(b"acTL", struct.pack(">II", len(frames), 0))]
    out += [text_chunk(k, v) for k, v in (texts or {}).items()]
    delay = max(1, round(1000 / fps)) if fps else 100
    seq = 0
    for index, (_, _, rgb) in enumerate(frames):
        out.append(chunk(b"fcTL", struct.pack(">IIIIIHHBB", seq, width, height, 0, 0, delay, 1000, 0, 0)))
        seq += 1
        data = solid_idat(width, height, tuple(rgb))
        if index == 0:
            out.append(chunk(b"IDAT", data))
        else:
            out.append(chunk(b"fdAT", struct.pack(">I", seq) + data))
            seq += 1
    out.append(chunk(b"IEND", b""))
    return b"".join(out)


def png_info(data: bytes) -> tuple[int, int, tuple[int, int, int], float | None] | None:
    """(width, height, first pixel rgb, alpha 0..1 or None) of a PNG, or None if unreadable.

    Only the first pixel is decoded; for the first pixel of the first row every PNG filter
    leaves the stored bytes unchanged, so no unfiltering is needed.
    """
    if not data.startswith(PNG_SIGNATURE) or len(data) < 33:
        return None
    width, height, depth, ctype = struct.unpack(">IIBB", data[16:26])
    palette, idat, pos = b"", [], 8
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        tag = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if tag == b"PLTE":
            palette = body
        elif tag == b"IDAT":
            idat.append(body)
        elif tag == b"IEND":
            break
        pos += 12 + length
    rgb, alpha = (128, 128, 128), None
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(ctype)
    if depth == 8 and channels and idat:
        try:
            raw = zlib.decompressobj().decompress(b"".join(idat), 1 + channels)
        except zlib.error:
            raw = b""
        px = raw[1:1 + channels]
        if len(px) == channels:
            if ctype in (0, 4):
                rgb = (px[0],) * 3
            elif ctype == 3 and len(palette) >= 3 * (px[0] + 1):
                rgb = tuple(palette[3 * px[0]:3 * px[0] + 3])
            else:
                rgb = tuple(px[:3])
            if ctype in (4, 6):
                alpha = px[-1] / 255.0
    return width, height, rgb, alpha


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    if not data.startswith(b"\xff\xd8"):
        return None
    pos = 2
    while pos + 9 < len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return width, height
        pos += 2 + length
    return None


def jpeg(width: int, height: int, seed: str = "") -> bytes:
    """JFIF header + SOF0 with the right size + filler scan data; enough for sniffers."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x11\x00\x02\x11\x01\x03\x11\x01"
    scan = bytes(b if b != 0xFF else 0xFE for b in filler(256, seed))
    return b"\xff\xd8" + app0 + sof + b"\xff\xda" + struct.pack(">H", 12) + b"\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00" + scan + b"\xff\xd9"


# ---- RIFF/WebP ---------------------------------------------------------------------------

def _riff_chunk(tag: bytes, data: bytes) -> bytes:
    pad = b"\x00" if len(data) % 2 else b""
    return tag + struct.pack("<I", len(data)) + data + pad


def _u24(value: int) -> bytes:
    return struct.pack("<I", value)[:3]


def _vp8l(width: int, height: int, seed: str) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    return _riff_chunk(b"VP8L", b"\x2f" + struct.pack("<I", bits) + filler(48, seed))


def webp(width: int, height: int, seed: str = "") -> bytes:
    body = b"WEBP" + _vp8l(width, height, seed)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_animated(frames: list[tuple[int, int, tuple[int, int, int]]], fps: float, texts: dict[str, str] | None = None) -> bytes:
    width, height = frames[0][0], frames[0][1]
    duration = max(1, round(1000 / fps)) if fps else 100
    parts = [_riff_chunk(b"VP8X", bytes([0x02 | (0x08 if texts else 0), 0, 0, 0]) + _u24(width - 1) + _u24(height - 1)),
             _riff_chunk(b"ANIM", b"\x00\x00\x00\x00" + struct.pack("<H", 0))]
    for index, (_, _, rgb) in enumerate(frames):
        head = _u24(0) + _u24(0) + _u24(width - 1) + _u24(height - 1) + _u24(duration) + b"\x00"
        parts.append(_riff_chunk(b"ANMF", head + _vp8l(width, height, f"{index}{rgb}")))
    if texts:
        exif = "".join(f"{k}:{v}" for k, v in texts.items()).encode("utf-8", "replace")
        parts.append(_riff_chunk(b"EXIF", b"Exif\x00\x00" + exif))
    body = b"WEBP" + b"".join(parts)
    return b"RIFF" + struct.pack("<I", len(body)) + body


# ---- audio -------------------------------------------------------------------------------

def flac(sample_rate: int, channels: int, samples: int, tags: dict[str, str] | None = None) -> bytes:
    """fLaC + STREAMINFO + VORBIS_COMMENT (the prompt) + filler frames (~8 KB per second)."""
    info = struct.pack(">HH", 4608, 4608) + b"\x00\x00\x00" + b"\x00\x00\x00"
    packed = (sample_rate << 44) | ((channels - 1) << 41) | (15 << 36) | samples  # 16 bits/sample
    info += packed.to_bytes(8, "big") + bytes(16)
    vendor = b"Lavf61.7.100"
    comments = [f"{k}={v}".encode("utf-8", "replace") for k, v in (tags or {}).items()]
    vorbis = struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", len(comments))
    vorbis += b"".join(struct.pack("<I", len(c)) + c for c in comments)
    blocks = b"\x00" + len(info).to_bytes(3, "big") + info + b"\x84" + len(vorbis).to_bytes(3, "big") + vorbis
    seconds = samples / max(1, sample_rate)
    frames = b"\xff\xf8" + filler(max(64, int(8000 * seconds)), f"flac{sample_rate}{channels}{samples}")
    return b"fLaC" + blocks + frames


def _synchsafe(value: int) -> bytes:
    return bytes(((value >> shift) & 0x7F) for shift in (21, 14, 7, 0))


def mp3(sample_rate: int, channels: int, samples: int, tags: dict[str, str] | None = None) -> bytes:
    """ID3v2.4 (TXXX frames with the prompt) + filler MPEG-1 Layer III frames (~16 KB/s)."""
    frames = b""
    for key, value in (tags or {}).items():
        payload = b"\x03" + key.encode("utf-8") + b"\x00" + value.encode("utf-8", "replace")
        frames += b"TXXX" + _synchsafe(len(payload)) + b"\x00\x00" + payload
    header = b"ID3\x04\x00\x00" + _synchsafe(len(frames))
    seconds = samples / max(1, sample_rate)
    audio = b"\xff\xfb\x90\x64" + filler(max(417, int(16000 * seconds)), f"mp3{sample_rate}{channels}{samples}")
    return header + frames + audio


def opus(sample_rate: int, channels: int, samples: int, tags: dict[str, str] | None = None) -> bytes:
    head = b"OpusHead\x01" + bytes([channels]) + b"\x38\x01" + struct.pack("<I", sample_rate) + b"\x00\x00\x00"
    page = b"OggS\x00\x02" + bytes(8) + b"\x01\x00\x00\x00" + bytes(8) + b"\x01" + bytes([len(head)]) + head
    seconds = samples / max(1, sample_rate)
    return page + filler(max(64, int(12000 * seconds)), f"opus{sample_rate}{channels}{samples}")


# ---- video -------------------------------------------------------------------------------

def _box(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", 8 + len(data)) + tag + data


def mp4(width: int, height: int, frames: int, fps: float, seed: str = "") -> bytes:
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41")
    mvhd = _box(b"mvhd", bytes(4) + bytes(8) + struct.pack(">II", 1000, int(1000 * frames / max(fps, 0.01))) + bytes(80))
    tkhd = _box(b"tkhd", bytes(76) + struct.pack(">II", width << 16, height << 16))
    moov = _box(b"moov", mvhd + _box(b"trak", tkhd))
    mdat = _box(b"mdat", filler(120 * max(1, frames), seed or f"mp4{width}{height}{frames}"))
    return ftyp + _box(b"free", b"") + mdat + moov


def webm(width: int, height: int, frames: int, fps: float, seed: str = "") -> bytes:
    ebml = (b"\x42\x86\x81\x01" b"\x42\xf7\x81\x01" b"\x42\xf2\x81\x04" b"\x42\xf3\x81\x08"
            b"\x42\x82\x84webm" b"\x42\x87\x81\x04" b"\x42\x85\x81\x02")
    header = b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(ebml)]) + ebml
    segment = b"\x18\x53\x80\x67" + b"\x01\xff\xff\xff\xff\xff\xff\xff"
    body = filler(100 * max(1, frames), seed or f"webm{width}{height}{frames}{fps}")
    return header + segment + body


# ---- latent ------------------------------------------------------------------------------

def latent(width: int, height: int, batch: int, metadata: dict[str, str] | None = None) -> bytes:
    """A safetensors file shaped like ComfyUI's SaveLatent output (zeros)."""
    shape = [batch, 4, max(1, height // 8), max(1, width // 8)]
    size = 4 * shape[0] * shape[1] * shape[2] * shape[3]
    header = {"__metadata__": metadata or {},
              "latent_format_version_0": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]},
              "latent_tensor": {"dtype": "F32", "shape": shape, "data_offsets": [0, size]}}
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + bytes(size)
