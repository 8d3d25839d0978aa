"""The example apps, the chat turn each is run with, and what the user must see.

The submit-and-collect app (examples/comfyui_bizyair_jobs_chatflow.yml, JOBS_EXAMPLE) submits the
same workflow with comfyui_submit and collects it with comfyui_collect in a Loop, each collect
waiting the seconds its node sets: the live test slows the sampler (node 3) down to a few seconds
more than one such wait (`slow_down`), so the reply must show the submission, at least one
"running" line, then the image, in that order (check_jobs_turn).

Every app in examples/ is run three times: without COS (only the ComfyUI address is configured),
with COS (the local COS test server), and with nothing listening at the ComfyUI address. The
inputs are what a user gives the app: the Start form (a prompt, the BizyAir SDXL workflow exported
in API format) and a chat message.

What is expected comes from reading that workflow (tests/fixtures/workflows/bizyair/
sdxl_ksampler_txt2img_api.json): one SaveImage node ("9") fed by a 1024×1024 EmptyLatentImage
with batch 1, and one sampler seed (node "3", input "seed"). So the reply must show exactly one
1024×1024 PNG from node 9, attached to the message and visible in the answer text, with or
without COS; with COS the durable URL is in the reply too. With ComfyUI down the run fails with
the plugin's message naming the address, and no file.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from dify_host import ChatTurn, DifyHost
from graphon.file.enums import FileTransferMethod, FileType
from graphon.file.models import File
from media_facts import png_size

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
WORKFLOW = ROOT / "tests" / "fixtures" / "workflows" / "bizyair" / "sdxl_ksampler_txt2img_api.json"
PROMPT = "a red fox in a snowy birch forest at dawn, soft light"
QUERY = "Draw it, please."
PROVIDER = "comfyui_bizyair"
DOWN_URL = "http://127.0.0.1:9"   # nothing listens on the discard port
KINDS = ("no_cos", "cos", "comfyui_down")
JOBS_EXAMPLE = "comfyui_bizyair_jobs_chatflow.yml"
SAMPLER_CLASS = "BizyAir_KSampler"     # node 3 of WORKFLOW

# Read from WORKFLOW (see the module docstring).
IMAGE_COUNT = 1
IMAGE_NODE = "9"
IMAGE_SIZE = (1024, 1024)
SEED_INPUTS = {"3.seed"}

MARKDOWN_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
UNRESOLVED = re.compile(r"\{\{#[^#}]+#\}\}")


@dataclass(frozen=True)
class Case:
    example: str      # file name in examples/
    kind: str         # one of KINDS

    @property
    def cos(self) -> bool:
        return self.kind == "cos"

    @property
    def name(self) -> str:
        return self.kind

    @property
    def id(self) -> str:
        return f"{Path(self.example).stem}-{self.name}"

    def dsl(self) -> str:
        return (EXAMPLES / self.example).read_text(encoding="utf-8")


def example_files() -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob("*.yml")) + sorted(p.name for p in EXAMPLES.glob("*.yaml"))


def all_cases() -> list[Case]:
    return [Case(example, kind) for example in example_files() for kind in KINDS]


def _nodes(dsl: str, kind: str) -> list[dict[str, Any]]:
    doc = yaml.safe_load(dsl)
    return [n for n in doc["workflow"]["graph"]["nodes"] if n.get("data", {}).get("type") == kind]


def tool_node_ids(dsl: str) -> list[str]:
    return [n["id"] for n in _nodes(dsl, "tool")]


def start_inputs(dsl: str, host: DifyHost) -> dict[str, Any]:
    """What a user types into the app's Start form: the prompt and the workflow file."""
    (start,) = _nodes(dsl, "start")
    inputs: dict[str, Any] = {}
    for var in start["data"]["variables"]:
        if var["type"] in ("paragraph", "text-input"):
            inputs[var["variable"]] = PROMPT
        elif var["type"] == "file":
            inputs[var["variable"]] = host.files.upload(WORKFLOW.read_bytes(), WORKFLOW.name, "application/json")
        else:
            raise AssertionError(f"tests/contract/cases.py does not know how a user fills a {var['type']!r} "
                                 f"Start input ({var['variable']}); teach start_inputs()")
    return inputs


def credentials(comfyui_url: str, cos: dict[str, str] | None) -> dict[str, Any]:
    """graphon's DSL credentials: the provider's settings as Dify stores them (strings)."""
    values = {"comfyui_base_url": comfyui_url, **(cos or {})}
    return {"tool_credentials": [{"provider": PROVIDER, "values": values}]}


def http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - a loopback URL we built
        return resp.read()


@dataclass
class Seen:
    """What the user saw, for the report."""

    answer: str
    files: list[str]


def check_failed_turn(case: Case, turn: ChatTurn) -> Seen:
    """ComfyUI unreachable: the tool node fails with the plugin's message, the run fails with it
    (Dify shows it in the chat), and no file is attached."""
    tool_id = tool_node_ids(case.dsl())[0]     # the first tool call is the one that reaches ComfyUI
    assert not turn.succeeded and turn.error, "the run should fail when nothing listens at the ComfyUI address"
    node_error = turn.node_errors.get(tool_id, "")
    assert "refused" in node_error and DOWN_URL.removeprefix("http://") in node_error, node_error
    assert node_error in turn.error, f"the run's error should carry the plugin's message: {turn.error!r}"
    assert turn.files == [] and not MARKDOWN_IMAGE.search(turn.answer)
    return Seen(answer=f"{turn.answer!r}; error shown: {turn.error}", files=[])


def check(case: Case, turn: ChatTurn, host: DifyHost, **live: Any) -> Seen:
    if case.kind == "comfyui_down":
        return check_failed_turn(case, turn)
    if case.example == JOBS_EXAMPLE:
        return check_jobs_turn(case, turn, host, **live)
    return check_turn(case, turn, host, **live)


def collect_wait(dsl: str) -> float:
    """The seconds each collect of the jobs example waits (its tool node's `wait` setting)."""
    (node,) = [n for n in _nodes(dsl, "tool") if n["data"]["tool_name"] == "comfyui_collect"]
    return float(node["data"]["tool_configurations"]["wait"]["value"])


def slow_down(case: Case) -> dict[str, float]:
    """Test-server node delays that make the case's run longer than one collect (jobs example)."""
    if case.example != JOBS_EXAMPLE or case.kind == "comfyui_down":
        return {}
    return {SAMPLER_CLASS: collect_wait(case.dsl()) + 5}


def _tool_outputs(turn: ChatTurn, dsl: str, tool_name: str) -> dict[str, Any]:
    (node,) = [n for n in _nodes(dsl, "tool") if n["data"]["tool_name"] == tool_name]
    return {name: turn.output(node["id"], name) for name in turn.outputs[node["id"]]}


def check_jobs_turn(case: Case, turn: ChatTurn, host: DifyHost, *,
                    image_bytes: Callable[[str], bytes] | None = None,
                    cos_bytes: Callable[[str], bytes] | None = None) -> Seen:
    """The submit-and-collect chatflow: the reply shows that the job was submitted, that it was
    still running at least once, then the image (attached, shown once); the Loop ends on success."""
    dsl = case.dsl()
    assert turn.error is None and turn.succeeded, f"the run failed: {turn.error}; node errors: {turn.node_errors}"
    answer = turn.answer
    assert not UNRESOLVED.search(answer), f"the reply shows a raw variable reference: {answer!r}"
    submitted = _tool_outputs(turn, dsl, "comfyui_submit")
    job_id = submitted["job_id"]
    assert re.fullmatch(r"cj_[0-9a-f]{24}", job_id) and submitted["status"] in ("queued", "running")
    at_submit = answer.find(f"Submitted the ComfyUI job {job_id}")
    at_running = answer.find(f"The ComfyUI job {job_id} is running")
    at_result = answer.find("Generated 1 image file.")
    assert 0 <= at_submit < at_running < at_result, f"submitted → running → result, in order: {answer!r}"

    (image,) = turn.files
    assert isinstance(image, File) and image.type == FileType.IMAGE and image.mime_type == "image/png"
    assert image.transfer_method == FileTransferMethod.TOOL_FILE and image.filename.endswith(".png")
    data = host.files.stored(image).data
    assert png_size(data) == IMAGE_SIZE
    shown = MARKDOWN_IMAGE.findall(answer)
    assert len(shown) == 1, f"the reply should show the image once, it shows {len(shown)}: {answer!r}"
    name, url = shown[0]
    assert name == image.filename and host.files.lookup(url) is host.files.stored(image)
    assert http_get(url) == data

    out = _tool_outputs(turn, dsl, "comfyui_collect")          # the last collect's outputs
    assert out["status"] == "success" and out["job_id"] == job_id and out["prompt_id"] == submitted["prompt_id"]
    assert [f.related_id for f in out["files"]] == [image.related_id]
    assert set(out["seeds"]) == SEED_INPUTS == set(submitted["seeds"])
    (summary,) = out["json"]
    assert summary["job_id"] == job_id
    assert [(o["node_id"], o["filename"]) for o in summary["outputs"]] == [(IMAGE_NODE, image.filename)]
    (loop,) = _nodes(dsl, "loop")
    assert turn.output(loop["id"], "status") == "success", "the Loop ends with the job's final status"
    if image_bytes is not None:
        assert data == image_bytes(out["prompt_id"]), "the file in the reply is not the one ComfyUI made"
    if case.cos:
        assert out["url"].startswith("https://") and out["url"] in answer and out["urls"] == [out["url"]]
        assert summary["outputs"][0]["uploaded"] is True
        if cos_bytes is not None:
            assert cos_bytes(out["url"]) == data, "the COS object is not the image"
    else:
        assert out["url"] == "" and out["urls"] == [] and "myqcloud.com" not in answer
    return Seen(answer=answer, files=[f"{image.filename} ({image.mime_type}, {len(data)} bytes)"])


def check_turn(case: Case, turn: ChatTurn, host: DifyHost, *,
               image_bytes: Callable[[str], bytes] | None = None,
               cos_bytes: Callable[[str], bytes] | None = None) -> Seen:
    """Assert what the user sees after one chat message.

    image_bytes(prompt_id): the file ComfyUI produced (live runs); cos_bytes(url): the object
    behind a COS URL (live runs with COS). Replays check the same things minus those two."""
    dsl = case.dsl()
    assert turn.error is None and turn.succeeded, f"the run failed: {turn.error}; node errors: {turn.node_errors}"

    # The reply text: something to read, every variable resolved.
    answer = turn.answer
    assert answer.strip(), "the reply is empty"
    assert not UNRESOLVED.search(answer), f"the reply shows a raw variable reference: {answer!r}"

    # The files attached to the reply: the workflow's one image, as a Dify file.
    assert len(turn.files) == IMAGE_COUNT, f"the reply carries {len(turn.files)} file(s), expected {IMAGE_COUNT}"
    (image,) = turn.files
    assert isinstance(image, File) and image.type == FileType.IMAGE and image.mime_type == "image/png"
    assert image.transfer_method == FileTransferMethod.TOOL_FILE
    assert image.filename and image.filename.endswith(".png")
    data = host.files.stored(image).data
    assert png_size(data) == IMAGE_SIZE

    # The answer text shows that image (Dify renders a files variable as ![name](signed URL)),
    # and the URL serves exactly those bytes.
    shown = MARKDOWN_IMAGE.findall(answer)
    assert len(shown) == 1, f"the reply should show the image once, it shows {len(shown)} images: {answer!r}"
    name, url = shown[0]
    assert name == image.filename and host.files.lookup(url) is host.files.stored(image), (
        f"the image in the reply is not the attached file served by Dify: {url}")
    assert http_get(url) == data

    # The variables other nodes read.
    (tool_id,) = tool_node_ids(dsl)
    out = {name: turn.output(tool_id, name) for name in turn.outputs[tool_id]}
    assert [f.related_id for f in out["files"]] == [image.related_id]
    assert out["status"] == "success"
    assert isinstance(out["prompt_id"], str) and out["prompt_id"]
    assert set(out["seeds"]) == SEED_INPUTS and all(isinstance(v, int) for v in out["seeds"].values())
    assert isinstance(out["text"], str) and out["text"].strip()
    (summary,) = out["json"]
    assert [(o["node_id"], o["filename"]) for o in summary["outputs"]] == [(IMAGE_NODE, image.filename)]
    if image_bytes is not None:
        assert data == image_bytes(out["prompt_id"]), "the file in the reply is not the one ComfyUI made"

    if case.cos:
        assert len(out["urls"]) == 1 and out["url"] == out["urls"][0] and out["url"].startswith("https://")
        assert out["markdown"] == f"![{image.filename}]({out['url']})"
        assert out["url"] in answer, "with COS the reply should give the durable COS link"
        assert summary["outputs"][0]["uploaded"] is True
        if cos_bytes is not None:
            assert cos_bytes(out["url"]) == data, "the COS object is not the image"
    else:
        assert out["url"] == "" and out["urls"] == [] and out["markdown"] == ""
        assert "myqcloud.com" not in answer
    return Seen(answer=answer, files=[f"{image.filename} ({image.mime_type}, {len(data)} bytes)"])
