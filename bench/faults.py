#!/usr/bin/env python3
"""Fault benchmark: what a hostile upload or a misbehaving server costs the shared plugin process.

    python bench/faults.py [--only NAME,NAME] [--write-md]

Prints numbers, asserts nothing. Every case drives the built package over Dify's stdio protocol
(one long-lived plugin process, as Dify runs it) against the ComfyUI test server with one fault
armed, and reports the call's wall time next to its `timeout`, the longest stdout line the plugin
wrote (the daemon kills an instance above 5 MiB) and, for the memory cases, the plugin's peak RSS
(VmHWM, reset before the case). With --write-md the table replaces the fault section of
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _p in (ROOT / "tests" / "e2e", ROOT / "tests" / "servers", ROOT / "tests", ROOT):
    if str(_p) not in sys.path:
        sys.path.insert(1, str(_p))

from comfy_fixture import start_comfy_server  # noqa: E402
from cos_fixture import CosServer  # noqa: E402
from plugin_proc import TimedPlugin  # noqa: E402
from servers import start_local_cos  # noqa: E402

WORKFLOWS = ROOT / "tests/fixtures/workflows"
SAVE = (WORKFLOWS / "empty_save_1024.json").read_text()
PREVIEW_TEXT = json.dumps({"1": {"class_type": "PrimitiveString", "inputs": {"value": "x"}},
                           "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}})
MARK_BEGIN, MARK_END = "<!-- faults:begin -->", "<!-- faults:end -->"


@dataclass
class Row:
    case: str
    timeout: float | None
    seconds: float
    outcome: str
    longest_line: int
    peak_mib: float | None = None
    note: str = ""


class Bench:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.comfy = start_comfy_server(base_dir=tmp / "comfy")
        self.cos = start_local_cos(tmp / "cos.log")
        self.plugin = TimedPlugin.start(env={"NO_PROXY": "*", "no_proxy": "*"})
        self.rows: list[Row] = []

    def close(self) -> None:
        self.plugin.close()
        self.comfy.stop()
        self.cos.stop()

    def creds(self, cos: bool = False) -> dict:
        return dict(self.cos.credentials if cos else {}, comfyui_base_url=self.comfy.url)

    def longest_line(self, since: int) -> int:
        lines = [t for s, t in list(self.plugin.lines)[since:] if s == "stdout"]
        sizes = []
        for text in lines:
            cut = re.search(r"\.\.\. \[(\d+) chars\]$", text)
            sizes.append(int(cut.group(1)) if cut else len(text.encode()))
        return max(sizes, default=0)

    def case(self, name: str, params: dict, *, timeout: float | None, faults: dict | None = None,
             memory: bool = False, cos: bool = False, note: str = "") -> Row:
        self.comfy.reset()
        if faults:
            self.comfy.config(**faults)
        since = len(self.plugin.lines)
        if memory:
            self.plugin.reset_peak()
        if timeout is not None:
            params = dict(params, timeout=timeout)
        inv = self.plugin.invoke_timed(self.creds(cos), params, timeout=900)
        result = inv.result
        if result.errors:
            outcome = "error: " + result.errors[0]["message"].split("\n")[0][:110]
        else:
            variables = result.variables
            outcome = f"{variables.get('status')}: {len(result.blobs)} blob(s), {len(variables.get('urls') or [])} URL(s)"
        peak = self.plugin.status_kib("VmHWM") / 1024.0 if memory else None
        row = Row(name, timeout, inv.seconds, outcome, self.longest_line(since), peak, note)
        self.rows.append(row)
        print(f"{name:58s} {inv.seconds:7.2f} s  (timeout {timeout})  {outcome}"
              + (f"  peak {peak:.0f} MiB" if peak is not None else ""), flush=True)
        return row


def run_cases(b: Bench, only: set[str]) -> None:
    cases: list[tuple[str, Callable[[], object]]] = [
        ("4.9 MB workflow that is one long key", lambda: b.case(
            "4.9 MB workflow that is one long key", {"workflow_json": json.dumps({"k" * 4_900_000: 1})},
            timeout=None)),
        ("128 KB of '\"\\' as the workflow", lambda: b.case(
            "128 KB of '\"\\' as the workflow", {"workflow_json": '"\\' * 65536}, timeout=None)),
        ("6 MB text output", lambda: b.case(
            "6 MB text output", {"workflow_json": PREVIEW_TEXT}, timeout=60,
            faults={"text_output_bytes": 6_000_000})),
        ("output named with 3 MB", lambda: b.case(
            "output named with 3 MB", {"workflow_json": SAVE}, timeout=60, faults={"output_name_chars": 3_000_000})),
        ("/history sent at 1 byte/s", lambda: b.case(
            "/history sent at 1 byte/s", {"workflow_json": SAVE}, timeout=10,
            faults={"hostile": {"GET /history/{id}": {"trickle": 1}}, "ws_silent": True})),
        ("/history status line and headers at 2 bytes/s", lambda: b.case(
            "/history status line and headers at 2 bytes/s", {"workflow_json": SAVE}, timeout=10,
            faults={"hostile": {"GET /history/{id}": {"trickle_headers": 2}}, "ws_silent": True})),
        ("10 MB /view at 2 KB/s", lambda: b.case(
            "10 MB /view at 2 KB/s", {"workflow_json": SAVE}, timeout=10,
            faults={"image_bytes": 10_000_000, "hostile": {"GET /view": {"trickle": 2048, "chunk": 2048}}})),
        ("websocket frames at 2 bytes/s", lambda: b.case(
            "websocket frames at 2 bytes/s", {"workflow_json": SAVE}, timeout=10, faults={"ws_trickle": 0.5})),
        ("3 custom classes, /object_info/<cls> 5 s each", lambda: b.case(
            "3 custom classes, /object_info/<cls> 5 s each", {"workflow_json": _with_custom_classes(3)}, timeout=10,
            faults={"route_delay": {"GET /object_info/{cls}": 5.0}})),
        ("gzip bomb: /history 1 MB → 1 GiB", lambda: b.case(
            "gzip bomb: /history 1 MB → 1 GiB", {"workflow_json": SAVE}, timeout=20, memory=True,
            faults={"hostile": {"GET /history/{id}": {"gzip_bomb": 1 << 30}}})),
        ("100 MB /queue answer", lambda: b.case(
            "100 MB /queue answer", {"workflow_json": SAVE}, timeout=20, memory=True,
            faults={"hostile": {"GET /queue": {"pad": 100_000_000}}, "ws_silent": True,
                    "node_delay": {"SaveImage": 3.0}})),
        ("JSON nested 100k deep from /history", lambda: b.case(
            "JSON nested 100k deep from /history", {"workflow_json": SAVE}, timeout=20,
            faults={"hostile": {"GET /history/{id}": {"deep": 100_000}}})),
        ("four 150 MB outputs (400 MB run budget), COS", lambda: b.case(
            "four 150 MB outputs (400 MB run budget), COS", {"workflow_json": _batch(4)}, timeout=240, memory=True,
            cos=True, faults={"image_bytes": 150_000_000})),
        ("COS upload stalled", lambda: _stalled_cos(b)),
        ("ComfyUI killed 2 s into the run", lambda: _killed(b)),
        ("SIGTERM during a run", lambda: _sigterm(b)),
    ]
    for name, fn in cases:
        if only and not any(o.lower() in name.lower() for o in only):
            continue
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - a bench reports and goes on
            print(f"{name}: bench failure {type(exc).__name__}: {exc}", flush=True)


def _with_custom_classes(n: int) -> str:
    graph = json.loads(SAVE)
    for i in range(n):
        graph[f"9{i}"] = {"class_type": f"UnknownCustomNode{i}", "inputs": {"text": "x"}}
    return json.dumps(graph)


def _batch(n: int) -> str:
    graph = json.loads(SAVE)
    graph["1"]["inputs"]["batch_size"] = n
    return json.dumps(graph)


def _stalled_cos(b: Bench) -> None:
    CosServer(port=int(b.cos.credentials["cos_endpoint"].rsplit(":", 1)[1])).control("stall_next", n=1, seconds=120)
    b.case("COS upload stalled 120 s", {"workflow_json": SAVE}, timeout=10, cos=True,
           note="the file is still returned as a blob")


def _killed(b: Bench) -> None:
    victim = start_comfy_server(base_dir=b.tmp / "victim")
    try:
        victim.config(node_delay={"SaveImage": 60})
        threading.Timer(2.0, victim.process.kill).start()
        start = time.perf_counter()
        inv = b.plugin.invoke_timed({"comfyui_base_url": victim.url}, {"workflow_json": SAVE}, timeout=300)
        message = inv.result.errors[0]["message"].split("\n")[0][:110] if inv.result.errors else "no error"
        b.rows.append(Row("ComfyUI killed 2 s into the run (not restarted)", 240, time.perf_counter() - start,
                          "error: " + message, 0))
        print(f"{'ComfyUI killed 2 s into the run':58s} {inv.seconds:7.2f} s  (timeout 240)  {message}", flush=True)
    finally:
        victim.stop()


def _sigterm(b: Bench) -> None:
    long = json.loads((WORKFLOWS / "slow_progress_ws_images.json").read_text())
    long["1"]["inputs"].update(batch_size=200, width=64, height=64)
    b.comfy.reset()
    b.comfy.config(ws_image_seconds=0.5)
    proc = TimedPlugin.start(env={"NO_PROXY": "*", "no_proxy": "*"})
    try:
        proc.send({"user_id": "bench", "type": "tool", "action": "invoke_tool", "provider": "comfyui_bizyair",
                   "tool": "comfyui_workflow", "credentials": {"comfyui_base_url": b.comfy.url},
                   "credential_type": "api-key", "tool_parameters": {"workflow_json": json.dumps(long)}})
        end = time.monotonic() + 30
        while not b.comfy.stats()["queue"]["running"] and time.monotonic() < end:
            time.sleep(0.05)
        start = time.perf_counter()
        proc.proc.send_signal(signal.SIGTERM)
        proc.proc.wait(10)
        seconds = time.perf_counter() - start
        stats = b.comfy.stats()
        left = len(stats["queue"]["running"]) + len(stats["queue"]["pending"])
        outcome = f"exit {proc.proc.returncode}; prompts left on ComfyUI: {left}"
        b.rows.append(Row("SIGTERM during a run (time to stop the prompt and exit)", None, seconds, outcome, 0))
        print(f"{'SIGTERM during a run':58s} {seconds:7.2f} s  {outcome}", flush=True)
    finally:
        proc.close()


def markdown(rows: list[Row]) -> str:
    out = ["| case | timeout | wall time | what the user gets | longest stdout line | peak RSS |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r.case} | {f'{r.timeout:g} s' if r.timeout else '–'} | {r.seconds:.2f} s | "
                   f"{r.outcome.replace('|', '/')}{f' ({r.note})' if r.note else ''} | "
                   f"{r.longest_line / 1024:.1f} KiB | {f'{r.peak_mib:.0f} MiB' if r.peak_mib else '–'} |")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated parts of case names")
    parser.add_argument("--write-md", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_faults_") as tmp:
        bench = Bench(Path(tmp))
        try:
            run_cases(bench, {o.strip() for o in args.only.split(",") if o.strip()})
        finally:
            bench.close()
    table = markdown(bench.rows)
    print("\n" + table)
    if args.write_md:
        path = ROOT / "BENCHMARKS.md"
        text = path.read_text(encoding="utf-8")
        stamp = time.strftime("%Y-%m-%d")
        block = f"{MARK_BEGIN}\nMeasured {stamp} with `scripts/dev py bench/faults.py --write-md`.\n\n{table}\n{MARK_END}"
        if MARK_BEGIN in text:
            text = re.sub(re.escape(MARK_BEGIN) + ".*?" + re.escape(MARK_END), lambda m: block, text, flags=re.S)
        else:
            text += "\n\n## Faults: what a hostile input or server costs\n\n" + block + "\n"
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
