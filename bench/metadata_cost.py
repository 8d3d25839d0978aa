#!/usr/bin/env python3
"""Cost of comfyui_bridge.metadata on big outputs: time and extra memory. Prints numbers, asserts nothing.

    scripts/dev py bench/metadata_cost.py [--runs 5]

Files: a 100 MB MP4 laid out as FFmpeg writes it for ComfyUI's SaveVideo (faststart, the prompt in
moov/udta/meta/ilst; test server writer) and a ~10 MB PNG written by Pillow the way SaveImage does
(noise pixels, prompt + workflow tEXt). Each is run with the key inside (removed: one copy made)
and without it (scan only). Extra memory = tracemalloc peak during the call (the input excluded).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from comfyui_bridge.metadata import find_secret, remove_secrets  # noqa: E402
from tests.servers.comfysim import media  # noqa: E402

KEY = "sk-" + "Qm7vT2xLp9Rk4Wd8Hs1Ny6Bc3Fj5Gz0UaE2iO4uY6tR8eW1qA"
PROMPT = {"bizyair_magic_node": {"class_type": "BizyAir_PassParameter", "inputs": {}, "_meta": {"api_key": KEY}}}
NOT_INSIDE = "sk-" + "0" * 48
TAGS = {"workflow": json.dumps({"nodes": list(range(2000))}), "prompt": json.dumps(PROMPT)}


def big_mp4() -> bytes:
    return media.mp4(1280, 720, 100 * 1024 * 1024 // 120, 24.0, "bench", TAGS)


def big_png() -> bytes:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo
    info = PngInfo()
    for key, value in TAGS.items():
        info.add_text(key, value)
    side = 1830  # noise does not compress: ~10 MB
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), media.filler(side * side * 3, "bench-png")).save(
        out, format="PNG", pnginfo=info, compress_level=4)
    return out.getvalue()


def measure(label: str, call, runs: int) -> None:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    tracemalloc.start()
    result = call()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    verdict = getattr(result, "still_inside", result)
    print(f"{label:<44} median {statistics.median(times) * 1000:8.1f} ms  max {max(times) * 1000:8.1f} ms"
          f"  extra memory {peak / 1e6:7.1f} MB  still_inside/found={verdict}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    for name, data in (("MP4", big_mp4()), ("PNG", big_png())):
        print(f"{name}: {len(data) / 1e6:.1f} MB")
        measure(f"{name} remove_secrets, key inside", lambda d=data: remove_secrets(d, "", [KEY]), runs)
        measure(f"{name} remove_secrets, key not inside", lambda d=data: remove_secrets(d, "", [NOT_INSIDE]), runs)
        cleaned = remove_secrets(data, "", [KEY]).data
        measure(f"{name} find_secret on the cleaned file", lambda d=cleaned: find_secret(d, [KEY]), runs)


if __name__ == "__main__":
    main()
