#!/usr/bin/env python3
"""Benchmark: our engine and our plugin against the floor (a minimal direct ComfyUI client).

    python bench/run.py [--url COMFYUI_URL] [--runs 20] [--quick] [--write-md]

Prints numbers, asserts nothing. Three systems run the same workflows in one process,
interleaved (floor, engine, plugin, floor, engine, plugin, ...) so drift hits all alike:

  floor   bench/floor.py: websocket, POST /prompt, wait for `executing null`, /history, /view
  engine  Engine(parse_servers(url)).run(RunRequest(workflow, timeout=60)), in-process
  plugin  the built .difypkg in a fresh venv, one long-lived process driven over Dify's stdio
          protocol (tests/e2e/stdio_harness.py); an invoke is timed from writing the request
          line to the arrival of its `end` event

Default: starts the ComfyUI test server (tests/servers/comfyui_server.py) and the local COS
server (tests/servers/cos_server.py) as subprocesses and stops them at the end. With --url it
runs against any ComfyUI, using model-free workflows only; the phases that need the test
server's /_test routes (output sizes, memory, history fill, request counts) are skipped, and
COS upload runs only with --cos-region/--cos-bucket (+ keys from --cos-secret-id/--cos-secret-key
or $BENCH_COS_SECRET_ID/$BENCH_COS_SECRET_KEY).

Results: a Markdown report on stdout, everything (raw samples too) in bench/results/latest.json,
and with --write-md the report between the markers in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import struct
import sys
import tempfile
import threading
import time
import traceback
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _p in (ROOT / "tests" / "e2e", ROOT / "tests" / "servers", ROOT / "tests", ROOT):
    if str(_p) not in sys.path:
        sys.path.insert(1, str(_p))

from floor import FloorClient  # noqa: E402
from measure import med_p90, mib, paired, summary_ms  # noqa: E402
from plugin_proc import Invocation, TimedPlugin  # noqa: E402
from servers import Comfy, Cos, given_cos, start_local_cos, start_sim  # noqa: E402

from comfyui_bridge.endpoint import parse_servers  # noqa: E402
from comfyui_bridge.engine import Engine  # noqa: E402
from comfyui_bridge.models import RunRequest  # noqa: E402
from comfyui_bridge.storage.cos import CosSettings, CosStorage  # noqa: E402

WORKFLOWS = ROOT / "tests" / "fixtures" / "workflows"
RESULTS = BENCH / "results" / "latest.json"
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
MD_START, MD_END = "<!-- bench:start -->", "<!-- bench:end -->"

SYSTEMS = ("floor", "engine", "plugin")
TINY_SIDE = 64                    # EmptyImage 64² → a PNG of a few KB
MID_BYTES = 3_000_000             # SaveImage output padded to this size (test server knob)
BIG_BYTES = 100_000_000           # memory phase
CONCURRENCY = 8
HISTORY_FILL = 5000
MiB = 1024 * 1024

# Targets (printed next to the numbers).
ENGINE_BUDGET_MS = 5.0
PLUGIN_BUDGET_MS = 25.0
MEMORY_FACTOR, MEMORY_BASE_MIB = 2, 80
HISTORY_FLAT_MS, HISTORY_FLAT_REL = 2.0, 0.10


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- workflows ------------------------------------------------------------------------------------

def tiny_graph(tag: str) -> dict:
    """empty_save_1024.json at 64² with a unique filename_prefix, so SaveImage runs every time
    (ComfyUI serves an identical prompt from its cache without writing a file)."""
    graph = json.loads((WORKFLOWS / "empty_save_1024.json").read_text())
    graph["1"]["inputs"].update(width=TINY_SIDE, height=TINY_SIDE)
    graph["2"]["inputs"]["filename_prefix"] = f"bench/{tag}"
    return graph


def load_save_graph(image: str, tag: str) -> dict:
    return {"1": {"class_type": "LoadImage", "inputs": {"image": image}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": f"bench/{tag}"}}}


def noise_png(side: int) -> bytes:
    """An incompressible RGB PNG (~3.15 MB at 1024²): on a real ComfyUI, LoadImage → SaveImage of
    it writes a ~3 MB file."""
    raw = b"".join(b"\x00" + os.urandom(side * 3) for _ in range(side))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


# ---- one run of each system ----------------------------------------------------------------------

@dataclass
class Sample:
    seconds: float
    ended_at: float
    nbytes: int
    blob_seconds: float = 0.0
    blob_bytes: int = 0
    info: dict = field(default_factory=dict)


class Bench:
    def __init__(self, args, comfy: Comfy, plugin: TimedPlugin | None, cos: Cos | None):
        self.args = args
        self.comfy = comfy
        self.plugin = plugin
        self.cos = cos
        self.nonce = uuid.uuid4().hex[:6]
        self.floor_client = FloorClient(comfy.url)
        self.object_info = {s: [0, 0] for s in SYSTEMS}
        self.run_counts = {s: 0 for s in SYSTEMS}

    @property
    def warmup(self) -> int:
        return self.args.warmup

    @property
    def runs(self) -> int:
        return self.args.runs

    def tag(self, *parts) -> str:
        return "-".join([self.nonce, *map(str, parts)])

    # -- runners --

    def run_floor(self, graph: dict, expect: int | None = None, client: FloorClient | None = None) -> Sample:
        started = time.perf_counter()
        files = (client or self.floor_client).run(graph)
        ended = time.perf_counter()
        size = sum(len(f) for f in files)
        _check("floor", len(files), size, expect)
        return Sample(ended - started, ended, size)

    def run_engine(self, graph: dict, expect: int | None = None) -> Sample:
        started = time.perf_counter()
        result = Engine(parse_servers(self.comfy.url)).run(RunRequest(workflow=graph, timeout=60))
        ended = time.perf_counter()
        if not result.ok:
            raise RuntimeError(f"engine run {result.ending}: {result.error}")
        size = sum(f.size for f in result.outputs)
        _check("engine", len(result.outputs), size, expect)
        return Sample(ended - started, ended, size, info={"timings": result.timings})

    def run_plugin(self, graph: dict, expect: int | None = None, credentials: dict | None = None,
                   parameters: dict | None = None, timeout: float = 120) -> Sample:
        creds = {"comfyui_base_url": self.comfy.url, **(credentials or {})}
        params = {"workflow_json": json.dumps(graph), "timeout": 60, **(parameters or {})}
        inv: Invocation = self.plugin.invoke_timed(creds, params, timeout=timeout)
        if inv.result.errors:
            raise RuntimeError(f"plugin run failed: {inv.result.errors[0].get('message', '')[:300]}")
        summary = inv.summary
        if summary.get("status") != "success":
            raise RuntimeError(f"plugin run {summary.get('status')}: {json.dumps(summary)[:300]}")
        size = sum(int(o.get("size") or 0) for o in summary.get("outputs", []))
        _check("plugin", len(summary.get("outputs", [])), size, expect)
        return Sample(inv.seconds, inv.ended_at, size, inv.blob_seconds, inv.blob_bytes,
                      info={"summary": summary, "blobs": len(inv.result.blobs)})

    def run(self, system: str, graph: dict, expect: int | None = None, **kw) -> Sample:
        if system == "floor":
            self.run_counts["floor"] += 1
            return self.run_floor(graph, expect, **kw)
        before = self.comfy.object_info_hits()
        try:
            return self.run_engine(graph, expect) if system == "engine" else self.run_plugin(graph, expect, **kw)
        finally:
            self.count_object_info(system, before)

    def count_object_info(self, system: str, before: tuple[int, int], runs: int = 1) -> None:
        self.run_counts[system] += runs
        after = self.comfy.object_info_hits()
        self.object_info[system][0] += after[0] - before[0]
        self.object_info[system][1] += after[1] - before[1]

    # ---- 1. latency --------------------------------------------------------------------------------

    def latency(self, label: str, make_graph: Callable[[str], dict], expect: int | None) -> dict:
        times = {s: [] for s in SYSTEMS}
        blob_s, blob_b, sizes = [], [], []
        for i in range(self.warmup + self.runs):
            for system in SYSTEMS:
                sample = self.run(system, make_graph(self.tag(label, system, i)), expect)
                if i < self.warmup:
                    continue
                times[system].append(sample.seconds)
                if system == "plugin":
                    blob_s.append(sample.blob_seconds)
                    blob_b.append(sample.blob_bytes)
                    sizes.append(sample.nbytes)
        engine_added = paired(times["floor"], times["engine"])
        plugin_added = paired(times["floor"], times["plugin"])
        plugin_net = [d - b for d, b in zip(plugin_added, blob_s, strict=True)]   # one blob time per plugin run
        blob_bytes = statistics.median(blob_b) if blob_b else 0
        blob_med = statistics.median(blob_s) if blob_s else 0.0
        out = {
            "file_bytes": int(statistics.median(sizes)) if sizes else 0,
            **{s: summary_ms(times[s]) for s in SYSTEMS},
            "engine_added": summary_ms(engine_added),
            "plugin_added": summary_ms(plugin_added),
            "blob": summary_ms(blob_s),
            "blob_bytes": int(blob_bytes),
            "blob_mb_per_s": round(blob_bytes / blob_med / 1e6, 1) if blob_med > 0 else None,
            "blob_share_of_plugin": (round(blob_med / statistics.median(times["plugin"]), 3)
                                     if times["plugin"] else None),
            "plugin_added_minus_blob": summary_ms(plugin_net),
            "raw_s": times, "raw_blob_s": blob_s,
        }
        log(f"latency {label}: floor {med_p90(out['floor'])}  engine {med_p90(out['engine'])}  "
            f"plugin {med_p90(out['plugin'])} ms (median / p90)")
        return out

    # ---- 2. concurrency ---------------------------------------------------------------------------

    def burst(self, system: str, graphs: list[dict], pool: list[FloorClient]) -> float:
        go = threading.Event()
        ends: list[float | None] = [None] * len(graphs)
        errors: list[BaseException] = []

        def worker(j: int) -> None:
            go.wait()
            try:
                if system == "floor":
                    ends[j] = self.run_floor(graphs[j], client=pool[j]).ended_at
                elif system == "engine":
                    ends[j] = self.run_engine(graphs[j]).ended_at
                else:
                    ends[j] = self.run_plugin(graphs[j]).ended_at
            except BaseException as exc:  # noqa: BLE001 - reported after the burst
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(j,), daemon=True) for j in range(len(graphs))]
        for t in threads:
            t.start()
        time.sleep(0.02)   # every worker is parked on go.wait()
        before = self.comfy.object_info_hits()
        started = time.perf_counter()
        go.set()
        for t in threads:
            t.join(300)
        self.count_object_info(system, before, len(graphs))
        if errors or any(e is None for e in ends):
            raise RuntimeError(f"{system} burst failed: {errors[0] if errors else 'a run did not finish'}")
        return max(ends) - started

    def concurrency(self, single_floor_ms: float | None) -> dict:
        pool = [FloorClient(self.comfy.url) for _ in range(CONCURRENCY)]
        walls = {s: [] for s in SYSTEMS}
        try:
            for k in range(self.warmup + self.runs):
                for system in SYSTEMS:
                    graphs = [tiny_graph(self.tag("c8", system, k, j)) for j in range(CONCURRENCY)]
                    wall = self.burst(system, graphs, pool)
                    if k >= self.warmup:
                        walls[system].append(wall)
        finally:
            for client in pool:
                client.close()
        out = {s: summary_ms(walls[s]) for s in SYSTEMS}
        floor8 = out["floor"]["median"]
        out["single_floor_ms"] = single_floor_ms
        for system in SYSTEMS:
            med = out[system]["median"]
            out[f"{system}_vs_floor8"] = round(med / floor8, 2)
            out[f"{system}_vs_8x_single_floor"] = (round(med / (CONCURRENCY * single_floor_ms), 2)
                                                   if single_floor_ms else None)
        out["raw_s"] = walls
        log(f"8-way: floor {med_p90(out['floor'])}  engine {med_p90(out['engine'])}  "
            f"plugin {med_p90(out['plugin'])} ms")
        return out

    # ---- 3. memory ------------------------------------------------------------------------------------

    def memory(self) -> dict:
        self.comfy.fresh()
        self.comfy.config(image_bytes=BIG_BYTES)
        creds = dict(self.cos.credentials) if self.cos else {}
        runs = []
        for i in range(self.args.memory_runs):
            baseline = self.plugin.status_kib("VmRSS")
            reset = self.plugin.reset_peak()
            sample = self.run("plugin", tiny_graph(self.tag("mem", i)), BIG_BYTES, credentials=creds, timeout=600)
            peak = self.plugin.status_kib("VmHWM")
            summary = sample.info["summary"]
            entry = (summary.get("outputs") or [{}])[0]
            runs.append({"seconds": round(sample.seconds, 3), "rss_before_mib": round(mib(baseline), 1),
                         "peak_mib": round(mib(peak), 1), "peak_reset": reset, "blobs_sent": sample.info["blobs"],
                         "uploaded": bool(entry.get("uploaded")), "returned_as": entry.get("returned_as", "blob"),
                         "url": entry.get("url", ""), "notes": summary.get("notes", [])})
            log(f"memory run {i}: peak {runs[-1]['peak_mib']} MiB (before {runs[-1]['rss_before_mib']} MiB), "
                f"{sample.seconds:.2f} s, returned as {runs[-1]['returned_as']}")
        self.comfy.fresh()
        n_mib = BIG_BYTES / MiB
        return {"output_bytes": BIG_BYTES, "cos": bool(self.cos), "runs": runs,
                "peak_mib": max(r["peak_mib"] for r in runs),
                "limit_mib": round(MEMORY_FACTOR * n_mib + MEMORY_BASE_MIB, 1)}

    # ---- 4. COS upload ------------------------------------------------------------------------------

    def cos_upload(self) -> dict:
        storage = CosStorage(CosSettings.from_credentials(self.cos.credentials))
        sizes = {"2 MiB": 2 * MiB, "50 MiB": 50 * MiB}
        payloads = {label: os.urandom(n) for label, n in sizes.items()}
        times = {label: [] for label in sizes}
        for i in range(1 + self.args.cos_runs):     # one warm-up round
            for label, data in payloads.items():
                key = f"bench/{self.nonce}/upload-{label.replace(' ', '')}-{i}.bin"
                started = time.perf_counter()
                storage.upload(key, data, "application/octet-stream")
                if i:
                    times[label].append(time.perf_counter() - started)
        out = {}
        for label, n in sizes.items():
            stat = summary_ms(times[label])
            stat["mb_per_s"] = round(n / (stat["median"] / 1000) / 1e6, 1)
            out[label] = stat
        out["raw_s"] = times
        log("COS upload: " + ", ".join(f"{k} {v['median']:.1f} ms" for k, v in out.items() if k != "raw_s"))
        return out

    # ---- 5. history ----------------------------------------------------------------------------------

    def history(self) -> dict:
        """Each round: clear the history, run all three, fill it with HISTORY_FILL entries
        (/_test/fill_history), run all three again."""
        times = {f"{s}@{p}": [] for s in SYSTEMS for p in ("small", "large")}
        sizes = {"small": [], "large": []}
        for i in range(self.warmup + self.runs):
            self.comfy.clear_history()
            for point in ("small", "large"):
                if point == "large":
                    self.comfy.fill_history(HISTORY_FILL)
                sizes[point].append(self.comfy.history_size())
                for system in SYSTEMS:
                    sample = self.run(system, tiny_graph(self.tag("hist", point, system, i)))
                    if i >= self.warmup:
                        times[f"{system}@{point}"].append(sample.seconds)
        self.comfy.clear_history()
        return _history_summary(times, sizes, paired_rounds=True)

    def history_by_queueing(self) -> dict:
        """A real ComfyUI (--fill-history): measure, queue HISTORY_FILL cached prompts without
        client_id as fast as possible, wait for them, measure again. Not interleaved (the fill
        cannot be undone without clearing the user's history); it leaves the entries there."""
        times = {f"{s}@{p}": [] for s in SYSTEMS for p in ("small", "large")}
        sizes = {"small": [], "large": []}
        for point in ("small", "large"):
            if point == "large":
                self.fill_by_queueing(HISTORY_FILL)
            sizes[point].append(self.comfy.history_size())
            for i in range(self.warmup + self.runs):
                for system in SYSTEMS:
                    sample = self.run(system, tiny_graph(self.tag("histq", point, system, i)))
                    if i >= self.warmup:
                        times[f"{system}@{point}"].append(sample.seconds)
        return _history_summary(times, sizes, paired_rounds=False)

    def fill_by_queueing(self, n: int) -> None:
        import requests
        session = requests.Session()
        body = json.dumps({"prompt": tiny_graph(self.tag("fill"))})
        log(f"queueing {n} cached prompts (no client_id)")
        for _ in range(n):
            session.post(self.comfy.url + "/prompt", data=body, headers={"Content-Type": "application/json"},
                         timeout=30).raise_for_status()
        self.comfy.wait_idle()


def _history_summary(times: dict, sizes: dict, paired_rounds: bool) -> dict:
    out = {k: summary_ms(v) for k, v in times.items()}
    for system in SYSTEMS:
        small, large = times[f"{system}@small"], times[f"{system}@large"]
        # Paired per round when both points ran in the same round; else median vs median.
        delta = paired(small, large) if paired_rounds else [statistics.median(large) - statistics.median(small)]
        out[f"{system}_delta"] = summary_ms(delta)
    out["entries"] = {k: [min(v), max(v)] for k, v in sizes.items()}
    out["paired"] = paired_rounds
    out["raw_s"] = times
    log("history: " + ", ".join(f"{s} {out[f'{s}@small']['median']:.1f} → {out[f'{s}@large']['median']:.1f} ms"
                                for s in SYSTEMS))
    return out


def _check(system: str, count: int, size: int, expect: int | None) -> None:
    if count < 1:
        raise RuntimeError(f"{system}: the run produced no file")
    if expect is not None and size != expect:
        raise RuntimeError(f"{system}: got {size} bytes, expected {expect}")


# ---- targets and report ----------------------------------------------------------------------------

def targets(results: dict) -> list[dict]:
    rows = []

    def add(name: str, value, limit, ok, unit="ms", note=""):
        rows.append({"target": name, "value": value, "limit": limit, "unit": unit,
                     "verdict": "PASS" if ok else "MISS", "note": note})

    for label, lat in (results.get("latency") or {}).items():
        if "engine_added" in lat:
            v = lat["engine_added"]["median"]
            add(f"engine over floor, {label} (median)", v, ENGINE_BUDGET_MS, v <= ENGINE_BUDGET_MS)
            v = lat["plugin_added_minus_blob"]["median"]
            add(f"plugin over floor minus blob transfer, {label} (median)", v, PLUGIN_BUDGET_MS,
                v <= PLUGIN_BUDGET_MS, note=f"blob transfer {lat['blob']['median']:.1f} ms")
    mem = results.get("memory")
    if mem and "peak_mib" in mem:
        add(f"plugin peak RSS, {mem['output_bytes'] / 1e6:.0f} MB output", mem["peak_mib"], mem["limit_mib"],
            mem["peak_mib"] < mem["limit_mib"], unit="MiB")
    oi = results.get("object_info")
    if oi and oi.get("counted"):
        full = oi["engine"]["full"] + oi["plugin"]["full"]
        add("full /object_info requests during engine + plugin runs", full, 0, full == 0, unit="requests")
    hist = results.get("history")
    if hist and "engine_delta" in hist:
        small, large = hist["entries"]["small"][0], hist["entries"]["large"][0]
        for system in ("engine", "plugin"):
            base = hist[f"{system}@small"]["median"]
            limit = round(max(HISTORY_FLAT_MS, HISTORY_FLAT_REL * base), 2)
            v = hist[f"{system}_delta"]["median"]
            add(f"{system}: history {small:,} → {large:,} entries, added cost (median)", v, limit, v <= limit)
    return rows


def report(results: dict) -> str:
    meta = results["meta"]
    out = [f"Run {meta['date']} on {meta['machine']}; `{meta['command']}`; against {meta['against']}; "
           f"{meta['runs']} measured runs after {meta['warmup']} warm-up runs per system, interleaved; "
           f"load average {meta['loadavg_start']} at the start, {meta.get('loadavg_end')} at the end; "
           f"{meta.get('seconds')} s in all. Times in ms, median / p90."]
    lat = results.get("latency") or {}
    if lat:
        out += ["", "**Latency of one run** (added = paired per-round difference to the floor)", "",
                "| output | floor | engine | plugin | engine added | plugin added | blob transfer "
                "| plugin added − blob |",
                "|---|---|---|---|---|---|---|---|"]
        for label, r in lat.items():
            if "floor" not in r:
                continue
            blob = (f"{med_p90(r['blob'])} ({r['blob_mb_per_s']} MB/s, {100 * (r['blob_share_of_plugin'] or 0):.0f} % "
                    "of plugin time)") if r.get("blob_mb_per_s") else med_p90(r["blob"])
            out.append(f"| {label} ({r['file_bytes']:,} B) | {med_p90(r['floor'])} | {med_p90(r['engine'])} | "
                       f"{med_p90(r['plugin'])} | {med_p90(r['engine_added'])} | {med_p90(r['plugin_added'])} | "
                       f"{blob} | {med_p90(r['plugin_added_minus_blob'])} |")
    conc = results.get("concurrency")
    if conc and "floor" in conc:
        out += ["", f"**{CONCURRENCY} simultaneous runs** (tiny PNG; wall time from release to the last result; "
                f"single floor run {conc['single_floor_ms']} ms)", "",
                f"| | wall | ÷ floor {CONCURRENCY}-way wall | ÷ ({CONCURRENCY} × single floor) |", "|---|---|---|---|"]
        for system in SYSTEMS:
            out.append(f"| {system} | {med_p90(conc[system])} | {conc[f'{system}_vs_floor8']} | "
                       f"{conc[f'{system}_vs_8x_single_floor']} |")
    mem = results.get("memory")
    if mem and "runs" in mem:
        r0 = mem["runs"][-1]
        how = ("uploaded to COS, returned as URL only" if r0["uploaded"] and not r0["blobs_sent"]
               else f"returned as {r0['returned_as']}, {r0['blobs_sent']} blob(s)")
        out += ["", f"**Plugin memory, one {mem['output_bytes'] / 1e6:.0f} MB output**: peak RSS (VmHWM, reset before "
                f"each run) {', '.join(str(r['peak_mib']) for r in mem['runs'])} MiB; RSS before "
                f"{r0['rss_before_mib']} MiB; limit 2·N + 80 = {mem['limit_mib']} MiB. What happened: {how}; "
                f"{r0['seconds']} s per run."]
    cos = results.get("cos")
    if cos and "2 MiB" in cos:
        out += ["", "**COS upload** (CosStorage.upload, local COS server: moto behind the COS signature check)", "",
                "| size | median / p90 | throughput |", "|---|---|---|"]
        for label in ("2 MiB", "50 MiB"):
            out.append(f"| {label} | {med_p90(cos[label])} | {cos[label]['mb_per_s']} MB/s |")
    hist = results.get("history")
    if hist and "engine@small" in hist:
        small, large = hist["entries"]["small"][0], hist["entries"]["large"][0]
        how = "paired per round" if hist["paired"] else "median vs median"
        out += ["", f"**History growth** (one tiny run with {small:,} and {large:,} entries in the server's history)",
                "", f"| | {small:,} entries | {large:,} entries | added ({how}) |", "|---|---|---|---|"]
        for system in SYSTEMS:
            out.append(f"| {system} | {med_p90(hist[f'{system}@small'])} | {med_p90(hist[f'{system}@large'])} | "
                       f"{med_p90(hist[f'{system}_delta'])} |")
    oi = results.get("object_info")
    if oi and oi.get("counted"):
        out += ["", f"**/object_info requests during all runs**: engine {oi['engine']['full']} full, "
                f"{oi['engine']['per_class']} per class; plugin {oi['plugin']['full']} full, "
                f"{oi['plugin']['per_class']} per class "
                f"({oi['engine_runs']} engine and {oi['plugin_runs']} plugin runs)."]
    rows = results.get("targets") or []
    if rows:
        out += ["", "**Targets**", "", "| target | value | limit | |", "|---|---|---|---|"]
        for r in rows:
            note = f" ({r['note']})" if r["note"] else ""
            out.append(f"| {r['target']} | {r['value']} {r['unit']}{note} | {r['limit']} {r['unit']} "
                       f"| {r['verdict']} |")
    for phase, err in (results.get("errors") or {}).items():
        out.append(f"\n**{phase} failed**: {err}")
    for phase, why in (results.get("skipped") or {}).items():
        out.append(f"\n*{phase} skipped*: {why}")
    return "\n".join(out) + "\n"


def write_md(text: str) -> None:
    doc = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else f"# Benchmarks\n\n{MD_START}\n{MD_END}\n"
    if MD_START not in doc or MD_END not in doc:
        doc += f"\n{MD_START}\n{MD_END}\n"
    head, rest = doc.split(MD_START, 1)
    _, tail = rest.split(MD_END, 1)
    BENCHMARKS_MD.write_text(f"{head}{MD_START}\n{text}{MD_END}{tail}")


# ---- main ---------------------------------------------------------------------------------------------

def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="a running ComfyUI (default: start the ComfyUI test server)")
    ap.add_argument("--runs", type=int, default=20, help="measured runs per system and case (default 20)")
    ap.add_argument("--warmup", type=int, default=3, help="warm-up runs per system and case (default 3)")
    ap.add_argument("--quick", action="store_true", help="5 runs, 1 memory run, 3 COS uploads per size")
    ap.add_argument("--memory-runs", type=int, default=3)
    ap.add_argument("--cos-runs", type=int, default=5)
    ap.add_argument("--only", default="", help="comma list of phases: latency,concurrency,memory,cos,history")
    ap.add_argument("--fill-history", action="store_true",
                    help=f"with --url: queue {HISTORY_FILL} cached prompts to measure history growth (leaves them)")
    ap.add_argument("--cos-region")
    ap.add_argument("--cos-bucket")
    ap.add_argument("--cos-endpoint", default="")
    ap.add_argument("--cos-secret-id", default=os.environ.get("BENCH_COS_SECRET_ID", ""))
    ap.add_argument("--cos-secret-key", default=os.environ.get("BENCH_COS_SECRET_KEY", ""))
    ap.add_argument("--write-md", action="store_true", help=f"put the report into {BENCHMARKS_MD.name}")
    ap.add_argument("--json", default=str(RESULTS), help="where to write the JSON results")
    args = ap.parse_args(argv)
    if args.quick:
        args.runs, args.memory_runs, args.cos_runs = 5, 1, 3
    return args


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine() -> str:
    return f"{os.cpu_count()} cores ({platform.machine()}, {platform.system()} {platform.release()}), " \
           f"Python {platform.python_version()}"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    phases = [p.strip() for p in args.only.split(",") if p.strip()] or \
        ["latency", "concurrency", "memory", "cos", "history"]
    work = Path(tempfile.mkdtemp(prefix="comfyui_bench_"))
    started = time.monotonic()
    comfy = cos = plugin = None
    results: dict = {"errors": {}, "skipped": {}}
    results["meta"] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
        "nproc": os.cpu_count(), "python": platform.python_version(),
        "command": "python bench/run.py" + "".join(f" {a}" for a in argv),
        "against": args.url or "the ComfyUI test server (tests/servers/comfyui_server.py)",
        "runs": args.runs, "warmup": args.warmup, "loadavg_start": _loadavg(),
    }
    try:
        if args.url:
            comfy = Comfy(args.url)
        else:
            # Loopback only: a proxy from the environment must not sit between client and server.
            os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
            comfy = start_sim(work / "comfysim")
        log(f"ComfyUI at {comfy.url}")
        if args.cos_region and args.cos_bucket:
            cos = given_cos(args.cos_region, args.cos_bucket, args.cos_secret_id, args.cos_secret_key,
                            args.cos_endpoint)
        elif not args.url:
            cos = start_local_cos(work / "cos_server.log")
            log(f"COS test server at {cos.credentials['cos_endpoint']}")
        plugin_env = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"} if not args.url else {}
        plugin = TimedPlugin.start(env=plugin_env)
        log(f"plugin process {plugin.proc.pid} ready")
        bench = Bench(args, comfy, plugin, cos)
        results["latency"] = {}

        def phase(name: str, fn: Callable[[], dict], store: Callable[[dict], None]) -> None:
            if name.split(":")[0] not in phases:
                return
            t0 = time.monotonic()
            try:
                store(fn())
            except Exception as exc:  # noqa: BLE001 - one broken phase must not hide the others
                traceback.print_exc()
                results["errors"][name] = f"{type(exc).__name__}: {exc}"
            finally:
                log(f"{name} took {time.monotonic() - t0:.1f} s")

        comfy.fresh()
        phase("latency:tiny", lambda: bench.latency("tiny PNG", tiny_graph, None),
              lambda r: results["latency"].__setitem__("tiny PNG", r))
        if comfy.controllable:
            def mid():
                comfy.fresh()
                comfy.config(image_bytes=MID_BYTES)
                try:
                    return bench.latency("3 MB PNG", tiny_graph, MID_BYTES)
                finally:
                    comfy.fresh()
        else:
            def mid():
                name = comfy.upload(f"bench_noise_{bench.nonce}.png", noise_png(1024))
                return bench.latency("3 MB PNG", lambda tag: load_save_graph(name, tag), None)
        phase("latency:3mb", mid, lambda r: results["latency"].__setitem__("3 MB PNG", r))
        single = (results["latency"].get("tiny PNG") or {}).get("floor", {}).get("median")
        phase("concurrency", lambda: bench.concurrency(single), lambda r: results.__setitem__("concurrency", r))
        if comfy.controllable:
            phase("memory", bench.memory, lambda r: results.__setitem__("memory", r))
        elif "memory" in phases:
            results["skipped"]["memory"] = "needs the test server (it pads SaveImage output to 100 MB)"
        if cos is not None:
            phase("cos", bench.cos_upload, lambda r: results.__setitem__("cos", r))
        elif "cos" in phases:
            results["skipped"]["cos"] = "no COS (give --cos-region, --cos-bucket and keys)"
        if comfy.controllable:
            comfy.fresh()
            phase("history", bench.history, lambda r: results.__setitem__("history", r))
        elif args.fill_history:
            phase("history", bench.history_by_queueing, lambda r: results.__setitem__("history", r))
        elif "history" in phases:
            results["skipped"]["history"] = "on a real ComfyUI only with --fill-history (it queues 5,000 prompts)"
        results["object_info"] = {
            "counted": comfy.controllable,
            "floor": dict(zip(("full", "per_class"), bench.object_info["floor"], strict=True)),
            "engine": dict(zip(("full", "per_class"), bench.object_info["engine"], strict=True)),
            "plugin": dict(zip(("full", "per_class"), bench.object_info["plugin"], strict=True)),
            "engine_runs": bench.run_counts["engine"], "plugin_runs": bench.run_counts["plugin"],
        }
        bench.floor_client.close()
    finally:
        for thing in (plugin, cos, comfy):
            if thing is not None:
                try:
                    thing.close() if thing is plugin else thing.stop()
                except Exception:  # noqa: BLE001
                    traceback.print_exc()
        shutil.rmtree(work, ignore_errors=True)
    results["meta"]["seconds"] = round(time.monotonic() - started, 1)
    results["meta"]["loadavg_end"] = _loadavg()
    results["targets"] = targets(results)
    text = report(results)
    print(text)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str))
    log(f"results in {out} ({results['meta']['seconds']} s)")
    if args.write_md:
        write_md(text)
        log(f"report written into {BENCHMARKS_MD}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
