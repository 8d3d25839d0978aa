"""The servers a bench run talks to: the ComfyUI test server and the local COS server (both
started as subprocesses with the test fixtures' own launch code), or a real ComfyUI (--url)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import requests
from comfy_fixture import ComfyServer, start_comfy_server
from cos_fixture import COS_AK, COS_APPID, COS_REGION, COS_SK, LAUNCHER, CosServer, _read_port


class Comfy:
    """A ComfyUI to benchmark. `sim` is the test server handle (None for a real ComfyUI):
    everything that needs its /_test routes checks `controllable` first."""

    def __init__(self, url: str, sim: ComfyServer | None = None):
        self.url = url.rstrip("/")
        self.sim = sim
        self._http = requests.Session()
        self._http.trust_env = False

    @property
    def controllable(self) -> bool:
        return self.sim is not None

    def config(self, **knobs) -> None:
        if self.sim is not None:
            self.sim.config(**knobs)

    def object_info_hits(self) -> tuple[int, int]:
        """(full /object_info, /object_info/{cls}) requests so far, with and without /api."""
        if self.sim is None:
            return (0, 0)
        counts = self.sim.stats()["requests"]   # route templates, /api prefix folded in
        return counts.get("GET /object_info", 0), counts.get("GET /object_info/{cls}", 0)

    def history_size(self) -> int:
        if self.sim is not None:
            return len(self.sim.stats()["history"])
        return len(self._http.get(self.url + "/history", timeout=60).json())

    def clear_history(self) -> None:
        self._http.post(self.url + "/history", json={"clear": True}, timeout=30).raise_for_status()

    def fill_history(self, n: int) -> int:
        resp = self._http.post(f"{self.url}/_test/fill_history", params={"n": n}, timeout=60)
        resp.raise_for_status()
        return resp.json()["history"]

    def fresh(self) -> None:
        """Between phases on the test server: default config, no queue/history/files (frees disk)."""
        if self.sim is not None:
            self.sim.reset()
            self.sim.wait_idle()

    def wait_idle(self) -> None:
        if self.sim is not None:
            self.sim.wait_idle(timeout=120)
            return
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            data = self._http.get(self.url + "/prompt", timeout=10).json()
            if not data["exec_info"]["queue_remaining"]:
                return
            time.sleep(0.05)

    def upload(self, name: str, data: bytes) -> str:
        resp = self._http.post(self.url + "/upload/image", files={"image": (name, data, "image/png")},
                               data={"type": "input", "overwrite": "true"}, timeout=60)
        resp.raise_for_status()
        info = resp.json()
        return f"{info['subfolder']}/{info['name']}" if info.get("subfolder") else info["name"]

    def stop(self) -> None:
        self._http.close()
        if self.sim is not None:
            self.sim.stop()


def start_sim(base_dir: Path) -> Comfy:
    sim = start_comfy_server(base_dir=base_dir)
    return Comfy(sim.url, sim)


@dataclass
class Cos:
    """Where COS uploads go: credentials as Dify sends them (cos_endpoint set for a local server)."""

    credentials: dict[str, str]
    process: subprocess.Popen | None = None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        if self.process.stdout:
            self.process.stdout.close()


def start_local_cos(log_path: Path) -> Cos:
    """tests/servers/cos_server.py with the same environment as the `cos_server` fixture, and one
    fresh bucket."""
    env = dict(os.environ, S3_UPLOAD_PART_MIN_SIZE="1048576", COS_VERIFY_KEYS=f"{COS_AK}:{COS_SK}")
    with open(log_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, str(LAUNCHER), "0"], stdout=subprocess.PIPE, stderr=err,
                                env=env, text=True)
    try:
        server = CosServer(port=_read_port(proc, time.monotonic() + 30))
        bucket = f"bench{uuid.uuid4().hex[:8]}-{COS_APPID}"
        server.client().create_bucket(Bucket=bucket)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    creds = {"cos_region": COS_REGION, "cos_secret_id": COS_AK, "cos_secret_key": COS_SK, "cos_bucket": bucket,
             "cos_token": "", "cos_prefix": "bench/", "cos_url_mode": "public", "cos_url_expires": "",
             "cos_domain": "", "cos_endpoint": server.endpoint}
    return Cos(creds, proc)


def given_cos(region: str, bucket: str, secret_id: str, secret_key: str, endpoint: str = "") -> Cos:
    return Cos({"cos_region": region, "cos_secret_id": secret_id, "cos_secret_key": secret_key,
                "cos_bucket": bucket, "cos_token": "", "cos_prefix": "bench/", "cos_url_mode": "public",
                "cos_url_expires": "", "cos_domain": "", "cos_endpoint": endpoint})
