"""File encoders for simulated outputs.

PNGs are real, decodable PNGs (zlib-compressed solid-colour IDAT). Every format carries the queued
prompt (and each extra_pnginfo entry) where ComfyUI's save nodes put it, in the container structure
FFmpeg / Pillow write, so a test can tell which prompt produced a file and can prove a secret in
the prompt never comes back:

- PNG: a tEXt chunk per entry before IDAT (SaveImage / PreviewImage: comfy_api/latest/_ui.py
  ImageSaveHelper._create_png_metadata); APNG: private `comf` chunks after the frames
  (_create_animated_png_metadata, `after_idat=True`).
- animated WebP: an EXIF chunk, a little-endian TIFF with tag 0x0110 = "prompt:{json}" and 0x010F,
  0x010E, ... = "{key}:{json}" (_create_webp_metadata; Pillow drops the "Exif\0\0" prefix).
- MP4 (SaveVideo, movflags use_metadata_tags+faststart: comfy_api/latest/_input_impl/video_types.py):
  moov/udta/meta with an `mdta` hdlr, `keys` and `ilst` items holding `data` boxes; moov before mdat,
  stco pointing into mdat.
- WebM (SaveWEBM: comfy_extras/nodes_video.py): Segment/Tags/Tag/SimpleTag, names upper-cased.
- FLAC / MP3 / Opus (AudioSaveHelper.save_audio): VORBIS_COMMENT block, ID3v2.4 TXXX frames, an
  OpusTags packet on Ogg pages (split over pages past 65,025 bytes, page CRCs right).
- latent: safetensors `__metadata__` (nodes.py SaveLatent).

The media payloads (frames, samples) are deterministic filler; nothing decodes them.
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
    """An animated PNG: acTL, then fcTL+IDAT for frame 0 and fcTL+fdAT for the rest, then one
    `comf` chunk "key\0value" per entry (where Pillow puts ComfyUI's after_idat chunks)."""
    width, height = frames[0][0], frames[0][1]
    out = [PNG_SIGNATURE, ihdr(width, height), chunk(b"acTL", struct.pack(">II", len(frames), 0))]
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
    out += [chunk(b"comf", k.encode("latin-1", "replace") + b"\x00" + v.encode("latin-1", "replace"))
            for k, v in (texts or {}).items()]
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


def exif_tiff(tags: dict[int, str]) -> bytes:
    """EXIF as Pillow's Exif.tobytes() writes it (minus "Exif\\0\\0"): "II*\\0", IFD0 at offset 8 with
    the entries sorted by tag, next-IFD 0, then the ASCII values (NUL-terminated) in tag order."""
    entries, values = [], b""
    data_at = 8 + 2 + 12 * len(tags) + 4
    for tag in sorted(tags):
        value = tags[tag].encode("ascii", "replace") + b"\x00"
        if len(value) <= 4:
            entries.append(struct.pack("<HHI", tag, 2, len(value)) + value.ljust(4, b"\x00"))
        else:
            entries.append(struct.pack("<HHII", tag, 2, len(value), data_at + len(values)))
            values += value + (b"\x00" if len(value) % 2 else b"")
    return b"II*\x00" + struct.pack("<IH", 8, len(tags)) + b"".join(entries) + b"\x00\x00\x00\x00" + values


def webp_exif_tags(texts: dict[str, str]) -> dict[int, str]:
    """ComfyUI's EXIF tags for {"prompt": json, key: json, ...} (_create_webp_metadata)."""
    tags, tag = {}, 0x010F
    for key, value in texts.items():
        if key == "prompt":
            tags[0x0110] = f"prompt:{value}"
        else:
            tags[tag] = f"{key}:{value}"
            tag -= 1
    return tags


def webp_animated(frames: list[tuple[int, int, tuple[int, int, int]]], fps: float, texts: dict[str, str] | None = None) -> bytes:
    width, height = frames[0][0], frames[0][1]
    duration = max(1, round(1000 / fps)) if fps else 100
    parts = [_riff_chunk(b"VP8X", bytes([0x02 | (0x08 if texts else 0), 0, 0, 0]) + _u24(width - 1) + _u24(height - 1)),
             _riff_chunk(b"ANIM", b"\x00\x00\x00\x00" + struct.pack("<H", 0))]
    for index, (_, _, rgb) in enumerate(frames):
        head = _u24(0) + _u24(0) + _u24(width - 1) + _u24(height - 1) + _u24(duration) + b"\x00"
        parts.append(_riff_chunk(b"ANMF", head + _vp8l(width, height, f"{index}{rgb}")))
    if texts:
        parts.append(_riff_chunk(b"EXIF", exif_tiff(webp_exif_tags(texts))))
    body = b"WEBP" + b"".join(parts)
    return b"RIFF" + struct.pack("<I", len(body)) + body


# ---- audio -------------------------------------------------------------------------------

LAVF = "Lavf61.7.100"  # FFmpeg's muxer version as the captured container reports it


def _vorbis_comments(vendor: bytes, comments: list[bytes]) -> bytes:
    out = struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", len(comments))
    return out + b"".join(struct.pack("<I", len(c)) + c for c in comments)


def _comments(tags: dict[str, str] | None, encoder: str) -> list[bytes]:
    """FFmpeg's order: the container metadata as set, then the `encoder` the muxer adds."""
    items = list((tags or {}).items()) + [("encoder", encoder)]
    return [f"{k}={v}".encode("utf-8", "replace") for k, v in items]


def flac(sample_rate: int, channels: int, samples: int, tags: dict[str, str] | None = None) -> bytes:
    """fLaC + STREAMINFO + VORBIS_COMMENT (the metadata) + PADDING + filler frames (~8 KB per second)."""
    info = struct.pack(">HH", 4608, 4608) + b"\x00\x00\x00" + b"\x00\x00\x00"
    packed = (sample_rate << 44) | ((channels - 1) << 41) | (15 << 36) | samples  # 16 bits/sample
    info += packed.to_bytes(8, "big") + bytes(16)
    vorbis = _vorbis_comments(LAVF.encode(), _comments(tags, LAVF))
    padding = bytes(8192)
    blocks = (b"\x00" + len(info).to_bytes(3, "big") + info + b"\x04" + len(vorbis).to_bytes(3, "big") + vorbis
              + b"\x81" + len(padding).to_bytes(3, "big") + padding)
    seconds = samples / max(1, sample_rate)
    frames = b"\xff\xf8" + filler(max(64, int(8000 * seconds)), f"flac{sample_rate}{channels}{samples}")
    return b"fLaC" + blocks + frames


def _synchsafe(value: int) -> bytes:
    return bytes(((value >> shift) & 0x7F) for shift in (21, 14, 7, 0))


def _id3_frame(frame_id: bytes, payload: bytes) -> bytes:
    return frame_id + _synchsafe(len(payload)) + b"\x00\x00" + payload


def mp3(sample_rate: int, channels: int, samples: int, tags: dict[str, str] | None = None) -> bytes:
    """ID3v2.4 (a UTF-8 TXXX frame per metadata key, TSSE encoder, padding) + filler MPEG-1
    Layer III frames (~16 KB/s)."""
    frames = b"".join(_id3_frame(b"TXXX", b"\x03" + k.encode("utf-8") + b"\x00" + v.encode("utf-8", "replace"))
                      for k, v in (tags or {}).items())
    frames += _id3_frame(b"TSSE", b"\x03" + LAVF.encode() + b"\x00") + bytes(10)
    header = b"ID3\x04\x00\x00" + _synchsafe(len(frames))
    seconds = samples / max(1, sample_rate)
    audio = b"\xff\xfb\x90\x64" + filler(max(417, int(16000 * seconds)), f"mp3{sample_rate}{channels}{samples}")
    return header + frames + audio


_OGG_REVERSED = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def ogg_crc(page: bytes) -> int:
    """Ogg's CRC-32 (poly 0x04C11DB7, unreflected, init 0): zlib's reflected CRC on bit-reversed bytes."""
    raw = zlib.crc32(page.translate(_OGG_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{raw:032b}"[::-1], 2)


def ogg_pages(serial: int, packets: list[tuple[bytes, int]], first_sequence: int = 0) -> list[bytes]:
    """Ogg pages for (packet, granule) pairs, one packet per page run, like FFmpeg's Ogg muxer:
    a packet longer than 255 segments continues on the next page (header type 1)."""
    pages, sequence = [], first_sequence
    for index, (packet, granule) in enumerate(packets):
        lacing = [255] * (len(packet) // 255) + [len(packet) % 255]
        offset, continued = 0, False
        while lacing:
            chunk_lacing, lacing = lacing[:255], lacing[255:]
            size = sum(chunk_lacing)
            header_type = (1 if continued else 0) | (2 if sequence == 0 else 0) \
                | (4 if index == len(packets) - 1 and not lacing else 0)
            page_granule = granule if not lacing else 0xFFFFFFFFFFFFFFFF
            head = b"OggS\x00" + bytes([header_type]) + struct.pack("<QIII", page_granule, serial, sequence, 0)
            page = bytearray(head + bytes([len(chunk_lacing)]) + bytes(chunk_lacing) + packet[offset:offset + size])
            page[22:26] = struct.pack("<I", ogg_crc(bytes(page)))
            pages.append(bytes(page))
            offset += size
            sequence += 1
            continued = True
    return pages


def opus(sample_rate: int, channels: int, samples: int, tags: dict[str, str] | None = None) -> bytes:
    """OpusHead page, OpusTags (vendor + the metadata + encoder) over as many pages as it needs,
    then filler audio packets (~12 KB/s) ending on an end-of-stream page."""
    head = b"OpusHead\x01" + bytes([channels]) + b"\x38\x01" + struct.pack("<I", sample_rate) + b"\x00\x00\x00"
    comment = b"OpusTags" + _vorbis_comments(LAVF.encode(), _comments(tags, "Lavc61.19.100 libopus"))
    seconds = samples / max(1, sample_rate)
    body = filler(max(64, int(12000 * seconds)), f"opus{sample_rate}{channels}{samples}")
    audio = [(body[i:i + 4000], 48000 * (i // 4000 + 1) // 50) for i in range(0, len(body), 4000)]
    serial = int.from_bytes(hashlib.sha256(f"opus{samples}".encode()).digest()[:4], "little")
    return b"".join(ogg_pages(serial, [(head, 0), (comment, 0)] + audio))


# ---- video -------------------------------------------------------------------------------

def _box(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", 8 + len(data)) + tag + data


def _full_box(tag: bytes, data: bytes) -> bytes:
    return _box(tag, b"\x00\x00\x00\x00" + data)


def mp4_metadata(tags: dict[str, str]) -> bytes:
    """moov/udta as FFmpeg's mov muxer writes it with use_metadata_tags: meta (full box) holding an
    `mdta` hdlr, `keys` (one "mdta"+name entry per key) and `ilst` (item N = box type N, with a
    `data` box of type 1 = UTF-8)."""
    names = list(tags) + ["encoder"]
    values = list(tags.values()) + [LAVF]
    hdlr = _full_box(b"hdlr", bytes(4) + b"mdta" + bytes(12) + b"\x00")
    keys = _full_box(b"keys", struct.pack(">I", len(names))
                     + b"".join(struct.pack(">I", 8 + len(n.encode())) + b"mdta" + n.encode() for n in names))
    items = b"".join(_box(struct.pack(">I", i + 1), _box(b"data", struct.pack(">II", 1, 0) + v.encode("utf-8")))
                     for i, v in enumerate(values))
    return _box(b"udta", _full_box(b"meta", hdlr + keys + _box(b"ilst", items)))


def mp4(width: int, height: int, frames: int, fps: float, seed: str = "", tags: dict[str, str] | None = None) -> bytes:
    """ftyp, moov (mvhd, trak with an stco pointing into mdat, udta metadata), free, mdat: the
    faststart layout SaveVideo writes to a file."""
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41")
    mdat_body = filler(120 * max(1, frames), seed or f"mp4{width}{height}{frames}")
    mvhd = _box(b"mvhd", bytes(4) + bytes(8) + struct.pack(">II", 1000, int(1000 * frames / max(fps, 0.01))) + bytes(80))
    tkhd = _box(b"tkhd", bytes(76) + struct.pack(">II", width << 16, height << 16))
    udta = mp4_metadata(tags or {})

    def moov(chunk_offset: int) -> bytes:
        stco = _full_box(b"stco", struct.pack(">II", 1, chunk_offset))
        trak = _box(b"trak", tkhd + _box(b"mdia", _box(b"minf", _box(b"stbl", stco))))
        return _box(b"moov", mvhd + trak + udta)

    free = _box(b"free", b"")
    offset = len(ftyp) + len(moov(0)) + len(free) + 8  # the first sample: right after mdat's header
    return ftyp + moov(offset) + free + _box(b"mdat", mdat_body)


def _ebml_size(size: int) -> bytes:
    for width in range(1, 9):
        if size < (1 << (7 * width)) - 1:
            return ((1 << (7 * width)) | size).to_bytes(width, "big")
    raise ValueError("EBML element too large")


def ebml(ident: int, data: bytes) -> bytes:
    return ident.to_bytes((ident.bit_length() + 7) // 8, "big") + _ebml_size(len(data)) + data


def _ebml_uint(ident: int, value: int) -> bytes:
    return ebml(ident, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def webm_tags(tags: dict[str, str], duration: str) -> bytes:
    """Segment/Tags as FFmpeg's Matroska muxer writes them: one Tag (empty Targets) with a SimpleTag
    per key (name upper-cased) + ENCODER, then the video track's DURATION tag."""
    def simple(name: str, value: str) -> bytes:
        return ebml(0x67C8, ebml(0x45A3, name.upper().replace(" ", "_").encode()) + ebml(0x4487, value.encode("utf-8")))
    items = list(tags.items()) + [("encoder", LAVF)]
    global_tag = ebml(0x7373, ebml(0x63C0, b"") + b"".join(simple(k, v) for k, v in items))
    track_tag = ebml(0x7373, ebml(0x63C0, _ebml_uint(0x63C5, 1)) + simple("DURATION", duration))
    return ebml(0x1254C367, global_tag + track_tag)


def webm(width: int, height: int, frames: int, fps: float, seed: str = "", tags: dict[str, str] | None = None) -> bytes:
    """EBML header + Segment (Info, Tracks, Tags, one Cluster of filler SimpleBlocks)."""
    header = ebml(0x1A45DFA3, _ebml_uint(0x4286, 1) + _ebml_uint(0x42F7, 1) + _ebml_uint(0x42F2, 4)
                  + _ebml_uint(0x42F3, 8) + ebml(0x4282, b"webm") + _ebml_uint(0x4287, 4) + _ebml_uint(0x4285, 2))
    seconds = frames / max(fps, 0.01)
    info = ebml(0x1549A966, _ebml_uint(0x2AD7B1, 1000000) + ebml(0x4D80, LAVF.encode()) + ebml(0x5741, LAVF.encode())
                + ebml(0x4489, struct.pack(">d", seconds * 1000)))
    video = ebml(0xE0, _ebml_uint(0xB0, width) + _ebml_uint(0xBA, height))
    tracks = ebml(0x1654AE6B, ebml(0xAE, _ebml_uint(0xD7, 1) + _ebml_uint(0x73C5, 1) + _ebml_uint(0x83, 1)
                                   + ebml(0x86, b"V_VP9") + video))
    body = filler(100 * max(1, frames), seed or f"webm{width}{height}{frames}{fps}")
    blocks = b"".join(ebml(0xA3, b"\x81" + struct.pack(">h", i) + b"\x80" + body[i * 100:(i + 1) * 100])
                      for i in range(max(1, frames)))
    cluster = ebml(0x1F43B675, _ebml_uint(0xE7, 0) + blocks)
    duration = f"{int(seconds // 3600):02d}:{int(seconds % 3600 // 60):02d}:{seconds % 60:012.9f}"
    segment = ebml(0x18538067, info + tracks + webm_tags(tags or {}, duration) + cluster)
    return header + segment


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
