"""The command line runs on the same engine: `run` saves files and prints one line per file,
`inspect` prints the decisions the tool would make."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "tests/fixtures/workflows"


def cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "comfyui_bridge", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_inspect_reports_targets_seeds_and_outputs_offline():
    out = cli("inspect", WORKFLOWS / "bizyair/sdxl_ksampler_txt2img_api.json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["format"] == "api"
    assert (report["positive"], report["negative"]) == (["6", "text"], ["7", "text"])
    assert report["seeds"] == [["3", "seed"]] and report["outputs"] == ["9"] and report["images"] == []


def test_inspect_asks_the_server_when_given_a_url(comfy_server, tmp_path):
    # A custom loader only the server describes: with --url its image input is found, offline not.
    graph = json.loads((WORKFLOWS / "load_scale_save.json").read_text())
    graph["7"] = {"class_type": "StudioPhotoLoader", "inputs": {"photo": "x.png"}}
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(graph))
    comfy_server.config(hostile={"GET /object_info/{cls}": {"body": {"StudioPhotoLoader": {
        "input": {"required": {"photo": [["x.png", "y.png"], {"image_upload": True}]}}, "output": ["IMAGE"]}}}})
    online = cli("inspect", path, "--url", comfy_server.url)
    offline = cli("inspect", path)
    assert online.returncode == offline.returncode == 0, online.stderr + offline.stderr
    assert json.loads(online.stdout)["images"] == ["1", "7"]
    assert json.loads(offline.stdout)["images"] == ["1"]


def test_run_saves_every_output_and_prints_one_line_per_file(comfy_server, tmp_path):
    out = cli("run", WORKFLOWS / "batch4_save.json", "--prompt", "x", "--url", comfy_server.url, "--out", tmp_path,
              "--quiet")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 4 and all("image/png" in line and "node 2" in line for line in lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(Path(line.split("\t")[0]).name for line in lines)


def test_run_explains_failures_without_a_traceback(tmp_path):
    out = cli("run", WORKFLOWS / "empty_save_1024.json", "--url", "http://127.0.0.1:9", "--out", tmp_path)
    assert out.returncode == 2
    assert "refused" in out.stderr and "Traceback" not in out.stderr
