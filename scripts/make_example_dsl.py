#!/usr/bin/env python3
"""Regenerate the example apps in examples/ from the tool YAML and the manifest.

    python scripts/make_example_dsl.py

* examples/comfyui_bizyair_chatflow.yml: one call of comfyui_workflow (`render`);
* examples/comfyui_bizyair_jobs_chatflow.yml: comfyui_submit, then comfyui_collect in a Loop node
  until the job is no longer queued or running (`render_jobs`, see the end of this file).

The example depends on the plugin package by its unique identifier (`author/name:version@checksum`),
and the checksum changes with every packaged file: this script builds the package exactly as
`scripts/dev package` does and writes the identifier of that build. Run it after any change to the
plugin (tests/test_examples.py fails until the example matches), or run
`scripts/dev py tests/contract/record.py`, which does this and re-records the contract replays.

The flow is the one users migrate from (Start with a prompt and a workflow file → HTTP request to a
FastAPI wrapper → code node → Answer), with the plugin's tool node in place of the last three, in
the format Dify exports (DSL 0.3.1, tool_node_version 2).

The Answer shows the tool's `text` (one sentence; with COS it carries the durable URL) and its
`files` (Dify renders each file as `![name](signed file URL)` and attaches it to the message), so
the image shows with and without COS. It does not use `markdown` or `url`: Dify's tool node closes
every custom variable's stream with an empty final chunk, so a variable sent with a plain (not
streamed) variable message renders empty in an Answer that references it (tests/contract shows it).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "examples" / "comfyui_bizyair_chatflow.yml"
START, TOOL, ANSWER, NOTE = "1764115200001", "1764115200002", "answer", "1764115200009"
LANGS = ("en_US", "ja_JP", "pt_BR", "zh_Hans")
NOTE_TEXT = (
    "ComfyUI BizyAir example. 1) Install the comfyui_bizyair plugin and authorize it with your ComfyUI URL "
    "(from Docker: http://host.docker.internal:8188); the COS fields are optional. 2) Run: type a prompt and "
    "attach your workflow (.json; ComfyUI Workflow → Export (API) is best), then send any chat message. The answer "
    "shows the images (with COS, their URLs too). No workflow file? Swap this tool for Edit image, Text to video "
    "or Image to video (BizyAir): same text and files outputs.\n"
    "示例：先安装 comfyui_bizyair 插件并填写 ComfyUI 地址完成授权（COS 可选）；运行时填写提示词并上传工作流 JSON 文件，"
    "再发送任意消息，回复中会直接显示生成的图片（配置了 COS 时还会给出图片链接）。"
    "没有工作流文件？可把此工具换成 图片编辑 / 文生视频 / 图生视频（BizyAir），输出同样是 text 和 files。")
# What the Answer node shows: the tool's sentence, then its files (rendered as images by Dify).
ANSWER_TEMPLATE = f"{{{{#{TOOL}.text#}}}}\n\n{{{{#{TOOL}.files#}}}}"


def _package_identifier(manifest: dict) -> str:
    sys.path.insert(0, str(ROOT / "scripts"))
    import build_pkg

    with tempfile.TemporaryDirectory() as out:
        checksum = build_pkg.build(ROOT, Path(out)).checksum
    return f"{manifest['author']}/{manifest['name']}:{manifest['version']}@{checksum}"


def _i18n(value: dict | None) -> dict | None:
    return None if value is None else {lang: value.get(lang, value["en_US"]) for lang in LANGS}


def _param_schema(p: dict) -> dict:
    """A parameter as Dify caches it in the node (`paramSchemas`)."""
    return {
        "auto_generate": None, "default": p.get("default"), "form": p["form"],
        "human_description": _i18n(p["human_description"]), "label": _i18n(p["label"]),
        "llm_description": p.get("llm_description", ""), "max": p.get("max"), "min": p.get("min"),
        "name": p["name"], "options": p.get("options", []), "placeholder": _i18n(p.get("placeholder")),
        "precision": p.get("precision"), "required": p.get("required", False), "scope": None,
        "template": None, "type": p["type"],
    }


def _mixed(value: str) -> dict:
    return {"type": "mixed", "value": value}


def _constant(value) -> dict:
    return {"type": "constant", "value": value}


def _placed(node: dict, x: int, y: int, height: int, width: int = 244) -> dict:
    return {**node, "height": height, "position": {"x": x, "y": y}, "positionAbsolute": {"x": x, "y": y},
            "selected": False, "sourcePosition": "right", "targetPosition": "left", "width": width}


def _note_json(text: str) -> str:
    paragraphs = [{"children": [{"detail": 0, "format": 0, "mode": "normal", "style": "", "text": line,
                                 "type": "text", "version": 1}],
                   "direction": "ltr", "format": "", "indent": 0, "type": "paragraph", "version": 1,
                   "textFormat": 0} for line in text.split("\n")]
    return json.dumps({"root": {"children": paragraphs, "direction": "ltr", "format": "", "indent": 0,
                                "type": "root", "version": 1}}, ensure_ascii=False)


def _nodes(tool: dict, manifest: dict, ident: str) -> list[dict]:
    provider_id = f"{manifest['author']}/{manifest['name']}/{manifest['name']}"
    start = {"id": START, "type": "custom", "data": {
        "desc": "", "selected": False, "title": "Start", "type": "start", "variables": [
            {"label": "Prompt", "max_length": 2000, "options": [], "required": True, "type": "paragraph",
             "variable": "prompt"},
            {"allowed_file_extensions": [".json"], "allowed_file_types": ["custom"],
             "allowed_file_upload_methods": ["local_file", "remote_url"], "label": "ComfyUI workflow (.json)",
             "max_length": 5, "options": [], "required": True, "type": "file", "variable": "workflow"}]}}
    tool_node = {"id": TOOL, "type": "custom", "data": {
        "desc": "", "is_team_authorization": True, "output_schema": tool["output_schema"],
        "paramSchemas": [_param_schema(p) for p in tool["parameters"]],
        "params": {p["name"]: "" for p in tool["parameters"] if p["form"] == "llm"},
        "plugin_unique_identifier": ident, "provider_id": provider_id, "provider_name": provider_id,
        "provider_type": "builtin", "selected": False, "title": "Run ComfyUI workflow",
        # Builder settings (form parameters): the workflow file comes from the Start node.
        "tool_configurations": {
            "workflow": {"type": "variable", "value": [START, "workflow"]},
            "workflow_json": _mixed(""), "prompt_node": _mixed(""), "negative_node": _mixed(""),
            "seed": _constant(None), "overrides": _mixed(""), "image_nodes": _mixed(""),
            "timeout": _constant(240), "max_blob_mb": _constant(15), "progress": _constant(False)},
        "tool_description": tool["description"]["llm"],
        "tool_label": tool["identity"]["label"]["en_US"], "tool_name": tool["identity"]["name"],
        "tool_node_version": "2",
        # LLM-form parameters, filled from the Start node here.
        "tool_parameters": {"prompt": _mixed(f"{{{{#{START}.prompt#}}}}"),
                            "negative_prompt": _mixed("blurry, lowres, watermark, text")},
        "type": "tool"}}
    answer = {"id": ANSWER, "type": "custom", "data": {
        "answer": ANSWER_TEMPLATE, "desc": "", "selected": False, "title": "Answer",
        "type": "answer", "variables": []}}
    note = {"id": NOTE, "type": "custom-note", "data": {
        "author": "comfyui_bizyair", "desc": "", "height": 160, "selected": False, "showAuthor": True,
        "text": _note_json(NOTE_TEXT), "theme": "blue", "title": "", "type": "", "width": 420}}
    return [_placed(start, 80, 260, 116), _placed(tool_node, 400, 260, 90), _placed(answer, 720, 260, 105),
            _placed(note, 80, 420, 160, 420)]


def _edge(source: str, source_type: str, target: str, target_type: str) -> dict:
    return {"data": {"isInLoop": False, "sourceType": source_type, "targetType": target_type},
            "id": f"{source}-source-{target}-target", "source": source, "sourceHandle": "source",
            "target": target, "targetHandle": "target", "type": "custom", "zIndex": 0}


def _features() -> dict:
    return {
        "file_upload": {
            "allowed_file_extensions": [".JPG", ".JPEG", ".PNG", ".GIF", ".WEBP", ".SVG"],
            "allowed_file_types": ["image"], "allowed_file_upload_methods": ["local_file", "remote_url"],
            "enabled": False,
            "fileUploadConfig": {"audio_file_size_limit": 50, "batch_count_limit": 5, "file_size_limit": 15,
                                 "image_file_size_limit": 10, "video_file_size_limit": 100,
                                 "workflow_file_upload_limit": 10},
            "image": {"enabled": False, "number_limits": 3, "transfer_methods": ["local_file", "remote_url"]},
            "number_limits": 3},
        "opening_statement": "", "retriever_resource": {"enabled": True},
        "sensitive_word_avoidance": {"enabled": False}, "speech_to_text": {"enabled": False},
        "suggested_questions": [], "suggested_questions_after_answer": {"enabled": False},
        "text_to_speech": {"enabled": False, "language": "", "voice": ""}}


def _app_document(app: dict, ident: str, edges: list[dict], nodes: list[dict], zoom: float) -> dict:
    """A chatflow app as Dify's DSL export writes it: the app, its plugin dependency and its graph."""
    return {
        "app": {"icon_background": "#E0EAFF", "mode": "advanced-chat", "use_icon_as_answer_icon": False, **app},
        "dependencies": [{"current_identifier": None, "type": "package",
                          "value": {"plugin_unique_identifier": ident}}],
        "kind": "app",
        "version": "0.3.1",
        "workflow": {"conversation_variables": [], "environment_variables": [], "features": _features(),
                     "graph": {"edges": edges, "nodes": nodes, "viewport": {"x": 0, "y": 0, "zoom": zoom}}},
    }


def _yaml_file(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _rendered(header: str, document: dict) -> str:
    return header + yaml.safe_dump(document, allow_unicode=True, sort_keys=True, width=100)


def make_dsl(tool: dict, manifest: dict, ident: str) -> dict:
    return _app_document(
        {"description": "Chatflow: prompt + ComfyUI workflow file → the comfyui_bizyair plugin → images in the answer.",
         "icon": "🎨", "name": "ComfyUI BizyAir example"},
        ident, [_edge(START, "start", TOOL, "tool"), _edge(TOOL, "tool", ANSWER, "answer")],
        _nodes(tool, manifest, ident), 0.9)


HEADER = ("# Importable Dify chatflow (Studio → Import DSL file) for the comfyui_bizyair plugin.\n"
          "# Start (prompt + workflow file) → Run ComfyUI workflow → Answer with the tool's `text` and `files`.\n"
          "# Replaces the older HTTP-request + code-node flow that called a FastAPI wrapper.\n"
          "# Generated by scripts/make_example_dsl.py.\n")


def render(ident: str | None = None) -> str:
    """The example's text; `ident` defaults to the identifier of a fresh build of the package."""
    manifest = _yaml_file(ROOT / "manifest.yaml")
    ident = ident or _package_identifier(manifest)
    return _rendered(HEADER, make_dsl(_yaml_file(ROOT / "tools" / "comfyui_workflow.yaml"), manifest, ident))


# ---- the submit-and-collect chatflow ------------------------------------------------------------
#
# Start (prompt + workflow file) → Submit (comfyui_submit) → Answer "submitted…" → Loop: Collect
# (comfyui_collect, job_id from Submit, wait 30 s) → Variable Assigner (the loop's `status` :=
# Collect's status) → Answer (Collect's text and files). The loop ends when `status` is neither
# queued nor running, or after LOOP_COUNT rounds. The Loop node's shape is Dify's own (its DSL
# export and the fixtures api/tests/fixtures/workflow/loop_contains_answer.yml and
# increment_loop_with_break_condition_workflow.yml in langgenius/dify): a `loop-start` child node
# `<loop id>start`, children with `parentId` and `isInLoop`/`loop_id`, edges inside the loop with
# `isInLoop: true` and zIndex 1002, loop variables with value_type/var_type, break conditions with
# varType and comparison_operator.

JOBS_OUT = ROOT / "examples" / "comfyui_bizyair_jobs_chatflow.yml"
J_START, J_SUBMIT, J_SUBMITTED, J_LOOP = "1764201600001", "1764201600002", "1764201600003", "1764201600004"
J_LOOP_START, J_COLLECT, J_ASSIGN, J_PROGRESS = f"{J_LOOP}start", "1764201600005", "1764201600006", "1764201600007"
J_NOTE = "1764201600009"
COLLECT_WAIT = 30          # seconds per collect: one progress line in the chat every 30 s
LOOP_COUNT = 40            # 40 × 30 s = 20 min, Dify's default WORKFLOW_MAX_EXECUTION_TIME
JOBS_NOTE_TEXT = (
    "ComfyUI BizyAir, submit and collect. For workflows that run longer than Dify lets one tool call wait "
    "(video models, large workflows): Submit queues the run and returns a job id at once; the Loop collects "
    f"it every {COLLECT_WAIT} s and the answer shows each state (queue position, running node and step) until "
    "the result arrives. Install and authorize the plugin first (COS optional); attach your workflow (.json, "
    "Export (API)) and send any message. Runs longer than 20 min need a larger WORKFLOW_MAX_EXECUTION_TIME "
    "in Dify's .env.\n"
    "提交后收取：适用于超过单次工具调用等待上限的工作流。“提交”立即返回任务 ID，循环每 30 秒收取一次，"
    "回复中逐条显示排队位置、正在运行的节点和步数，直到结果返回。"
    "运行超过 20 分钟时请调大 Dify .env 中的 WORKFLOW_MAX_EXECUTION_TIME。")
SUBMITTED_TEMPLATE = f"{{{{#{J_SUBMIT}.text#}}}}\n\n"
PROGRESS_TEMPLATE = f"{{{{#{J_COLLECT}.text#}}}}\n\n{{{{#{J_COLLECT}.files#}}}}"


def _tool_node(node_id: str, tool: dict, manifest: dict, ident: str, title: str, configurations: dict,
               parameters: dict) -> dict:
    provider_id = f"{manifest['author']}/{manifest['name']}/{manifest['name']}"
    return {"id": node_id, "type": "custom", "data": {
        "desc": "", "is_team_authorization": True, "output_schema": tool["output_schema"],
        "paramSchemas": [_param_schema(p) for p in tool["parameters"]],
        "params": {p["name"]: "" for p in tool["parameters"] if p["form"] == "llm"},
        "plugin_unique_identifier": ident, "provider_id": provider_id, "provider_name": provider_id,
        "provider_type": "builtin", "selected": False, "title": title,
        "tool_configurations": configurations, "tool_description": tool["description"]["llm"],
        "tool_label": tool["identity"]["label"]["en_US"], "tool_name": tool["identity"]["name"],
        "tool_node_version": "2", "tool_parameters": parameters, "type": "tool"}}


def _in_loop(node: dict, x: int, y: int, height: int, width: int = 244) -> dict:
    """A node inside the Loop: position relative to the loop, absolute position beside it."""
    loop_x, loop_y = 1040, 260
    node["data"].update(isInIteration=False, isInLoop=True, loop_id=J_LOOP)
    return {**node, "height": height, "parentId": J_LOOP, "position": {"x": x, "y": y},
            "positionAbsolute": {"x": loop_x + x, "y": loop_y + y}, "selected": False, "sourcePosition": "right",
            "targetPosition": "left", "width": width, "zIndex": 1002}


def _jobs_nodes(submit_tool: dict, collect_tool: dict, manifest: dict, ident: str) -> list[dict]:
    start = {"id": J_START, "type": "custom", "data": {
        "desc": "", "selected": False, "title": "Start", "type": "start", "variables": [
            {"label": "Prompt", "max_length": 2000, "options": [], "required": True, "type": "paragraph",
             "variable": "prompt"},
            {"allowed_file_extensions": [".json"], "allowed_file_types": ["custom"],
             "allowed_file_upload_methods": ["local_file", "remote_url"], "label": "ComfyUI workflow (.json)",
             "max_length": 5, "options": [], "required": True, "type": "file", "variable": "workflow"}]}}
    submit_node = _tool_node(
        J_SUBMIT, submit_tool, manifest, ident, "Submit ComfyUI workflow",
        {"workflow": {"type": "variable", "value": [J_START, "workflow"]},
         "workflow_json": _mixed(""), "prompt_node": _mixed(""), "negative_node": _mixed(""),
         "seed": _constant(None), "overrides": _mixed(""), "image_nodes": _mixed(""), "max_blob_mb": _constant(15)},
        {"prompt": _mixed(f"{{{{#{J_START}.prompt#}}}}"), "negative_prompt": _mixed("blurry, lowres, watermark, text")})
    submitted = {"id": J_SUBMITTED, "type": "custom", "data": {
        "answer": SUBMITTED_TEMPLATE, "desc": "", "selected": False, "title": "Submitted", "type": "answer",
        "variables": []}}
    loop = {"id": J_LOOP, "type": "custom", "data": {
        "break_conditions": [
            {"comparison_operator": "is not", "id": f"5b0f7a5e-3c1d-4b8e-9a51-0c2f1d7e6a0{n}", "value": status,
             "varType": "string", "variable_selector": [J_LOOP, "status"]}
            for n, status in enumerate(("queued", "running"), 1)],
        "desc": "", "error_handle_mode": "terminated", "height": 220, "logical_operator": "and",
        "loop_count": LOOP_COUNT,
        "loop_variables": [{"id": "7d3c2b1a-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "label": "status", "value": "queued",
                            "value_type": "constant", "var_type": "string"}],
        "selected": False, "start_node_id": J_LOOP_START, "title": "Collect until done", "type": "loop",
        "width": 980}}
    loop_start = {"id": J_LOOP_START, "type": "custom-loop-start", "data": {
        "desc": "", "isInLoop": True, "selected": False, "title": "", "type": "loop-start"}}
    collect_node = _tool_node(
        J_COLLECT, collect_tool, manifest, ident, "Collect ComfyUI result",
        {"wait": _constant(COLLECT_WAIT)}, {"job_id": _mixed(f"{{{{#{J_SUBMIT}.job_id#}}}}")})
    assign = {"id": J_ASSIGN, "type": "custom", "data": {
        "desc": "", "items": [{"input_type": "variable", "operation": "over-write", "value": [J_COLLECT, "status"],
                               "variable_selector": [J_LOOP, "status"], "write_mode": "over-write"}],
        "selected": False, "title": "Remember the status", "type": "assigner", "version": "2"}}
    progress = {"id": J_PROGRESS, "type": "custom", "data": {
        "answer": PROGRESS_TEMPLATE, "desc": "", "selected": False, "title": "Progress", "type": "answer",
        "variables": []}}
    note = {"id": J_NOTE, "type": "custom-note", "data": {
        "author": "comfyui_bizyair", "desc": "", "height": 200, "selected": False, "showAuthor": True,
        "text": _note_json(JOBS_NOTE_TEXT), "theme": "blue", "title": "", "type": "", "width": 460}}
    loop_placed = {**_placed(loop, 1040, 260, 220, 980), "zIndex": 1}
    start_placed = {**_in_loop(loop_start, 60, 86, 48, 44), "draggable": False, "selectable": False}
    start_placed["data"] = {k: v for k, v in start_placed["data"].items() if k not in ("isInIteration", "loop_id")}
    return [_placed(start, 80, 260, 116), _placed(submit_node, 380, 260, 90),
            _placed(submitted, 700, 260, 105), loop_placed, start_placed,
            _in_loop(collect_node, 180, 70, 90), _in_loop(assign, 460, 70, 86), _in_loop(progress, 720, 70, 105),
            _placed(note, 80, 440, 200, 460)]


def _loop_edge(source: str, source_type: str, target: str, target_type: str) -> dict:
    edge = _edge(source, source_type, target, target_type)
    edge["data"].update(isInIteration=False, isInLoop=True, loop_id=J_LOOP)
    return {**edge, "zIndex": 1002}


def make_jobs_dsl(submit_tool: dict, collect_tool: dict, manifest: dict, ident: str) -> dict:
    edges = [_edge(J_START, "start", J_SUBMIT, "tool"), _edge(J_SUBMIT, "tool", J_SUBMITTED, "answer"),
             _edge(J_SUBMITTED, "answer", J_LOOP, "loop"),
             _loop_edge(J_LOOP_START, "loop-start", J_COLLECT, "tool"),
             _loop_edge(J_COLLECT, "tool", J_ASSIGN, "assigner"),
             _loop_edge(J_ASSIGN, "assigner", J_PROGRESS, "answer")]
    for edge in edges[:3]:
        edge["data"]["isInIteration"] = False
    return _app_document(
        {"description": "Chatflow: prompt + ComfyUI workflow file → comfyui_submit → comfyui_collect in a Loop "
                        "until the job ends, showing its progress → the files in the answer.",
         "icon": "⏳", "name": "ComfyUI BizyAir submit and collect"},
        ident, edges, _jobs_nodes(submit_tool, collect_tool, manifest, ident), 0.7)


JOBS_HEADER = ("# Importable Dify chatflow (Studio → Import DSL file) for the comfyui_bizyair plugin.\n"
               "# Start (prompt + workflow file) → Submit ComfyUI workflow → Loop { Collect ComfyUI result\n"
               "# (30 s) → remember its status → Answer with its text and files } until the job is no longer\n"
               "# queued or running. Generated by scripts/make_example_dsl.py.\n")


def render_jobs(ident: str | None = None) -> str:
    manifest = _yaml_file(ROOT / "manifest.yaml")
    ident = ident or _package_identifier(manifest)
    submit, collect = (_yaml_file(ROOT / "tools" / f"{name}.yaml") for name in ("comfyui_submit", "comfyui_collect"))
    return _rendered(JOBS_HEADER, make_jobs_dsl(submit, collect, manifest, ident))


def main() -> int:
    manifest = _yaml_file(ROOT / "manifest.yaml")
    ident = _package_identifier(manifest)
    for out, text in ((OUT, render(ident)), (JOBS_OUT, render_jobs(ident))):
        out.write_text(text, encoding="utf-8")
        print(out)
    print(ident)
    return 0


if __name__ == "__main__":
    sys.exit(main())
