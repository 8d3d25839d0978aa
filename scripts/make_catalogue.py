#!/usr/bin/env python3
"""Build the BizyAir catalogue (comfyui_bridge/data/catalogue/) from the node definitions.

Which BizyAir cloud models the ready-made tools offer is decided here, in CURATED: one entry per
model, naming its node class, where the images go, which node input each of the tools' options
(aspect_ratio, resolution, count, duration, audio) sets, and the widget values that pick the model
inside a class that serves several (e.g. `model: veo3.1-pro`). Everything else is read from the
definitions a bizyengine 1.2.114 container reported (tests/fixtures/captures/object_info_bizyair.json,
plus LoadImage / SaveImage / SaveVideo from the stock ComfyUI capture):

* the workflow of each model: the model's node with every widget at its definition's default, a
  LoadImage per input image, and a SaveImage / SaveVideo on its first output;
* the index (index.json): per tool, per model, the allowed values of each option exactly as the
  definition lists them (choices, bounds, or the single value a one-choice list allows).

The script refuses a class BizyAir has retired (nodeinfo.BIZYAIR_DEPRECATED, or `deprecated` in the
definition), an option whose input the class lacks, a required input it cannot fill, and a default
that its own definition rejects. Run from the repository root:

    python scripts/make_catalogue.py [--check]

`--check` exits 1 when the committed files differ from what the definitions produce.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from comfyui_bridge.nodeinfo import BIZYAIR_DEPRECATED  # noqa: E402

CORE_SOURCE = ROOT / "tests/fixtures/captures/object_info.json"
BIZYAIR_SOURCE = ROOT / "tests/fixtures/captures/object_info_bizyair.json"
OUT_DIR = ROOT / "comfyui_bridge/data/catalogue"
INDEX = OUT_DIR / "index.json"
SOURCE_LABEL = "bizyengine-1.2.114 (tests/fixtures/captures/object_info_bizyair.json)"

MAIN, OUTPUT, FIRST_IMAGE = "1", "2", "3"     # node ids in every generated workflow
EXAMPLE_IMAGE = "example.png"                 # replaced by the uploaded file's name at run time
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")

TOOLS = {
    "edit_image": {"output": "IMAGE", "options": ("aspect_ratio", "resolution", "count"), "default": "nanobanana"},
    "text_to_video": {"output": "VIDEO", "options": ("duration", "aspect_ratio", "resolution", "audio"),
                      "default": "kling_2_6"},
    "image_to_video": {"output": "VIDEO", "options": ("duration", "aspect_ratio", "resolution", "audio"),
                       "default": "kling_2_6"},
}


@dataclass(frozen=True)
class Images:
    """How input images attach to the node: fixed inputs (`inputs`), or BizyAir's dynamic form (the
    first image on `inputs[0]`, more on image_2, image_3 … and their number in `count_input`; the
    names are those BizyAir's frontend creates with its "Update inputs" button)."""

    inputs: tuple[str, ...]
    count_input: str = ""
    minimum: int = 1

    def spec(self, definition: dict) -> dict:
        if not self.count_input:
            return {"min": self.minimum, "max": len(self.inputs), "inputs": list(self.inputs)}
        count = _input_spec(definition, self.count_input)
        return {"min": self.minimum, "max": int(count[1]["max"]), "inputs": list(self.inputs),
                "pattern": "image_{n}", "count_input": self.count_input}


@dataclass(frozen=True)
class Option:
    input: str
    exclude: tuple = ()                       # choices the tool does not offer (e.g. "Custom" sizes)
    aliases: tuple[tuple[str, str], ...] = ()  # the tool's word → the node's (e.g. auto → adaptive)
    sizes: bool = False                       # a "W*H" list that both aspect_ratio and resolution pick from


@dataclass(frozen=True)
class Pick:
    tool: str
    key: str
    class_type: str
    label: str
    options: dict[str, Option] = field(default_factory=dict)
    images: Images | None = None
    fixed: dict[str, Any] = field(default_factory=dict)
    negative: str = ""                        # the node's negative-prompt input, if it has one
    replacement: str = ""                     # the model to use when BizyAir retires this one


def opt(name: str, **kw: Any) -> Option:
    return Option(name, **kw)


AUTO_ADAPTIVE = (("auto", "adaptive"),)
SLOTS_1 = Images(("image",))
DYNAMIC = Images(("images",), count_input="inputcount")


def _edit() -> list[Pick]:
    t = "edit_image"
    return [
        Pick(t, "nanobanana", "BizyAir_NanoBanana", "NanoBanana (Gemini 2.5 Flash Image)",
             {"aspect_ratio": opt("aspect_ratio")},
             Images(("image", "image2", "image3", "image4", "image5")), {"operation": "edit"},
             replacement="nanobanana_2"),
        Pick(t, "nanobanana_2", "BizyAir_NanoBanana2", "NanoBanana 2 (Gemini 3.1 Flash Image)",
             {"aspect_ratio": opt("aspect_ratio"), "resolution": opt("resolution")}, DYNAMIC,
             replacement="nanobanana_pro"),
        Pick(t, "nanobanana_pro", "BizyAir_NanoBananaPro", "NanoBanana Pro (Gemini 3 Pro Image)",
             {"aspect_ratio": opt("aspect_ratio"), "resolution": opt("resolution")}, DYNAMIC,
             {"operation": "edit"}, replacement="nanobanana_2"),
        Pick(t, "seededit_3", "BizyAir_Seededit3", "Seededit 3.0 (Doubao)", {}, SLOTS_1,
             replacement="seedream_4_5"),
        Pick(t, "seedream_4_5", "BizyAir_Seedream4_5", "Seedream 4.5 (Doubao)",
             {"resolution": opt("size", exclude=("Custom",)), "count": opt("max_images")}, DYNAMIC,
             replacement="seedream_5"),
        Pick(t, "seedream_5", "BizyAir_Seedream5", "Seedream 5.0 (Doubao)",
             {"resolution": opt("size", exclude=("Custom",)), "count": opt("max_images")}, DYNAMIC,
             replacement="seedream_4_5"),
        Pick(t, "gpt_image_1", "BizyAir_GPT_IMAGE_EDIT_API", "GPT Image 1 (OpenAI)",
             {"aspect_ratio": opt("size"), "count": opt("variants")}, Images(("images",)),
             replacement="gpt_image_2"),
        Pick(t, "gpt_image_2", "BizyAir_GPT_IMAGE_2_I2I_API", "GPT Image 2 (OpenAI)",
             {"aspect_ratio": opt("aspect_ratio"), "resolution": opt("resolution")}, DYNAMIC,
             replacement="gpt_image_1"),
        Pick(t, "flux_kontext_pro", "BizyAir_Flux_Kontext_API", "FLUX.1 Kontext Pro",
             {"aspect_ratio": opt("aspect_ratio")}, SLOTS_1, {"model": "flux-kontext-pro"},
             replacement="flux_kontext_max"),
        Pick(t, "flux_kontext_max", "BizyAir_Flux_Kontext_API", "FLUX.1 Kontext Max",
             {"aspect_ratio": opt("aspect_ratio")}, SLOTS_1, {"model": "flux-kontext-max"},
             replacement="flux_kontext_pro"),
        Pick(t, "kling_2", "BizyAir_Kling_2_I2I_API", "Kling 2 image-to-image",
             {"aspect_ratio": opt("aspect_ratio"), "resolution": opt("resolution"), "count": opt("variants")},
             SLOTS_1, replacement="nanobanana"),
    ]


def _video(tool: str) -> list[Pick]:
    t2v = tool == "text_to_video"
    suffix = "T2V" if t2v else "I2V"
    first = None if t2v else Images(("first_frame_image",))
    d, ar, res = opt("duration"), opt("aspect_ratio"), opt("resolution")
    ratio = opt("ratio", aliases=AUTO_ADAPTIVE)
    picks = [
        Pick(tool, "kling_2_6", f"BizyAir_Kling_2_6_{suffix}_API", "Kling 2.6",
             {"duration": d, "audio": opt("sound"), **({"aspect_ratio": ar} if t2v else {})}, first,
             replacement="kling_3_0_std"),
    ]
    kling_21 = ("kling_2_1_master",) if t2v else ("kling_2_1_std", "kling_2_1_pro", "kling_2_1_master")
    for key in kling_21:
        tier = key.rsplit("_", 1)[1]
        picks.append(Pick(tool, key, f"BizyAir_Kling_2_1_{suffix}_API", f"Kling 2.1 {tier.title()}",
                          {"duration": d, "aspect_ratio": ar}, first, {"model_name": f"kling-v2-1-{tier}"},
                          negative="negative_prompt", replacement="kling_2_6"))
    if not t2v:
        picks.append(Pick(tool, "kling_2_5_turbo", "BizyAir_Kling_2_5_I2V_API", "Kling 2.5 Turbo",
                          {"duration": d}, first, negative="negative_prompt", replacement="kling_2_6"))
    for tier in ("std", "pro"):
        options = {"duration": d, "audio": opt("sound"), **({"aspect_ratio": ar} if t2v else {})}
        picks.append(Pick(tool, f"kling_3_0_{tier}", f"BizyAir_Kling_3_0_{suffix}_API", f"Kling 3.0 {tier.title()}",
                          options, first, {"model_name": f"kling-v3.0-{tier}"}, negative="negative_prompt",
                          replacement="kling_2_6"))
    for key, model in (("seedance_1_0_pro", "doubao-seedance-1-0-pro-250528"),
                       ("seedance_1_0_pro_fast", "doubao-seedance-1-0-pro-fast-251015")):
        picks.append(Pick(tool, key, f"BizyAir_Seedance_1_0_{suffix}_API",
                          "Seedance 1.0 Pro" + (" Fast" if key.endswith("fast") else ""),
                          {"duration": d, "aspect_ratio": ratio, "resolution": res}, first, {"model": model},
                          replacement="seedance_1_5_pro"))
    picks.append(Pick(tool, "seedance_1_5_pro", f"BizyAir_Seedance_1_5_{suffix}_API", "Seedance 1.5 Pro",
                      {"duration": d, "aspect_ratio": ratio, "resolution": res, "audio": opt("generate_audio")},
                      first, replacement="seedance_1_0_pro"))
    for key, mode in (("seedance_2_0", "std"), ("seedance_2_0_fast", "fast")):
        picks.append(Pick(tool, key, f"BizyAir_Seedance_2_0_{suffix}_API",
                          "Seedance 2.0" + (" Fast" if mode == "fast" else ""),
                          {"duration": d, "aspect_ratio": ratio, "resolution": res, "audio": opt("generateAudio")},
                          first, {"mode": mode}, replacement="seedance_1_5_pro"))
    hailuo = [("hailuo_2_3", "MiniMax-Hailuo-2.3")] + ([] if t2v else [("hailuo_2_3_fast", "MiniMax-Hailuo-2.3-Fast")])
    for key, model in hailuo:
        picks.append(Pick(tool, key, f"BizyAir_Hailuo2_3_{suffix}", "Hailuo 2.3" + (" Fast" if "Fast" in model else ""),
                          {"duration": d, "resolution": res}, first, {"model": model}, replacement="kling_2_6"))
    for key, model in (("veo_3_1_fast", "veo3.1-fast"), ("veo_3_1_pro", "veo3.1-pro")):
        picks.append(Pick(tool, key, f"BizyAir_Veo_V3_1_{suffix}_API", f"Veo 3.1 {key.rsplit('_', 1)[1].title()}",
                          {"aspect_ratio": ar, "resolution": res}, first, {"model": model},
                          replacement="kling_2_6"))
    for key, model in (("sora_2", "sora-2"), ("sora_2_pro", "sora-2-pro")):
        picks.append(Pick(tool, key, f"BizyAir_Sora_V2_{suffix}_API", "Sora 2" + (" Pro" if "pro" in key else ""),
                          {"duration": d, "aspect_ratio": ar}, None if t2v else Images(("image",)), {"model": model},
                          replacement="veo_3_1_fast"))
    if t2v:
        size = opt("size", sizes=True)
        for version in ("2_5", "2_6"):
            picks.append(Pick(tool, f"wan_{version}", f"BizyAir_Wan_V{version}_T2V_API",
                              f"Wan {version.replace('_', '.')}",
                              {"duration": d, "aspect_ratio": size, "resolution": size, "audio": opt("auto_audio")},
                              None, negative="negative_prompt", replacement="wan_2_7"))
    if not t2v:
        for version in ("2_5", "2_6"):
            picks.append(Pick(tool, f"wan_{version}", f"BizyAir_Wan_V{version}_I2V_API",
                              f"Wan {version.replace('_', '.')}",
                              {"duration": d, "resolution": res, "audio": opt("auto_audio")}, Images(("image",)),
                              negative="negative_prompt", replacement="wan_2_7"))
    picks.append(Pick(tool, "wan_2_7", f"BizyAir_Wan_V2_7_{suffix}_API", "Wan 2.7",
                      {"duration": d, "resolution": res, **({"aspect_ratio": ratio} if t2v else {})},
                      None if t2v else Images(("first_frame",)), negative="negative_prompt",
                      replacement="wan_2_6" if not t2v else "kling_2_6"))
    for key, model in (("vidu_q3_pro", "viduq3-pro"), ("vidu_q3_turbo", "viduq3-turbo")):
        picks.append(Pick(tool, key, f"BizyAir_VIDU_Q3_{suffix}_API", f"Vidu Q3 {key.rsplit('_', 1)[1].title()}",
                          {"duration": d, "resolution": res, "audio": opt("audio"),
                           **({"aspect_ratio": ar} if t2v else {})},
                          None if t2v else Images(("image",)), {"model": model}, replacement="kling_2_6"))
    return picks


CURATED: list[Pick] = _edit() + _video("text_to_video") + _video("image_to_video")


# ---- reading definitions ----------------------------------------------------------------------

def load_classes(path: Path) -> dict[str, dict]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return data["classes"] if isinstance(data.get("classes"), dict) else data


def _sections(definition: dict) -> dict[str, dict]:
    inputs = definition.get("input") or {}
    return {s: inputs.get(s) or {} for s in ("required", "optional")}


def _input_spec(definition: dict, name: str) -> list:
    for section in _sections(definition).values():
        if name in section:
            spec = section[name]
            return [spec[0], spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}]
    raise SystemExit(f"{definition.get('name')}: no input {name!r}")


def _choices(spec: list) -> list | None:
    if isinstance(spec[0], list):
        return list(spec[0])
    if spec[0] == "COMBO":
        return list(spec[1].get("options") or [])
    return None


def _default(spec: list) -> Any:
    choices = _choices(spec)
    opts = spec[1]
    if "default" in opts:
        return opts["default"]
    if choices is not None:
        return choices[0]
    return {"INT": opts.get("min", 0), "FLOAT": opts.get("min", 0.0), "STRING": "", "BOOLEAN": False}[spec[0]]


def _is_widget(spec: list) -> bool:
    return (_choices(spec) is not None or spec[0] in WIDGET_TYPES) and not spec[1].get("forceInput")


def _option(pick: Pick, name: str, option: Option, definition: dict) -> dict:
    spec = _input_spec(definition, option.input)
    choices = _choices(spec)
    out: dict[str, Any] = {"input": option.input}
    if option.sizes:
        table = size_table(pick, choices or [])
        default = pick.fixed.get(option.input, _default(spec))
        aspect, tier = next((a, t) for a, tiers in table.items() for t, v in tiers.items() if v == default)
        out.update(kind="size", table=table, default=aspect if name == "aspect_ratio" else tier)
        return out
    if choices is not None:
        values = [c for c in choices if c not in option.exclude]
        if not values:
            raise SystemExit(f"{pick.key}: option {name} leaves no choice")
        out.update(kind="fixed" if len(values) == 1 else "choice", values=values)
        if option.exclude:
            out["exclude"] = list(option.exclude)
    elif spec[0] == "BOOLEAN":
        out.update(kind="flag", values=[False, True])
    elif spec[0] in ("INT", "FLOAT"):
        out.update(kind="range", min=spec[1].get("min"), max=spec[1].get("max"))
    else:
        raise SystemExit(f"{pick.key}: option {name} → {option.input} is a {spec[0]}, not a value to choose")
    out["default"] = pick.fixed.get(option.input, _default(spec))
    if option.aliases:
        out["aliases"] = dict(option.aliases)
    return out


# Named shapes a "W*H" size can have, and the resolution tiers by pixel count (what the video
# services call 480P / 720P / 1080P). A size more than 3 % off every shape is refused.
SHAPES = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21", "3:2", "2:3")
TIERS = {"480P": 832 * 480, "720P": 1280 * 720, "1080P": 1920 * 1080}


def size_table(pick: Pick, values: list) -> dict[str, dict[str, str]]:
    """{aspect ratio: {resolution: "W*H"}} for a node that takes its size as one of `values`."""
    table: dict[str, dict[str, str]] = {}
    for value in values:
        w, h = (int(x) for x in str(value).split("*"))
        shape = min(SHAPES, key=lambda s: abs(w / h - int(s.split(":")[0]) / int(s.split(":")[1])))
        a, b = (int(x) for x in shape.split(":"))
        if abs(w / h - a / b) > 0.03 * a / b:
            raise SystemExit(f"{pick.key}: size {value} has no named shape")
        tier = min(TIERS, key=lambda t: abs(TIERS[t] - w * h))
        if tier in table.setdefault(shape, {}):
            raise SystemExit(f"{pick.key}: sizes {table[shape][tier]} and {value} are both {shape} {tier}")
        table[shape][tier] = value
    return table


# ---- building --------------------------------------------------------------------------------

def build_model(pick: Pick, definition: dict, core: dict) -> tuple[dict, dict]:
    """(index entry, workflow) of one curated model."""
    if pick.class_type in BIZYAIR_DEPRECATED or definition.get("deprecated"):
        raise SystemExit(f"{pick.key}: {pick.class_type} is retired by BizyAir; pick another class")
    image_inputs = pick.images.inputs if pick.images else ()
    inputs: dict[str, Any] = {}
    for section, entries in _sections(definition).items():
        for name, raw in entries.items():
            spec = [raw[0], raw[1] if len(raw) > 1 and isinstance(raw[1], dict) else {}]
            if name in image_inputs:
                inputs[name] = [FIRST_IMAGE, 0] if name == image_inputs[0] else None
            elif _is_widget(spec):
                inputs[name] = _default(spec)
            elif section == "required":
                raise SystemExit(f"{pick.key}: required input {name} ({spec[0]}) has no source")
    inputs = {k: v for k, v in inputs.items() if v is not None}
    for name, value in pick.fixed.items():
        spec = _input_spec(definition, name)
        choices = _choices(spec)
        if choices is not None and value not in choices:
            raise SystemExit(f"{pick.key}: {name}={value!r} is not one of {choices}")
        inputs[name] = value
    if pick.images and pick.images.count_input:
        inputs[pick.images.count_input] = 1
    if "prompt" not in inputs:
        raise SystemExit(f"{pick.key}: {pick.class_type} has no prompt input")
    if pick.negative and pick.negative not in inputs:
        raise SystemExit(f"{pick.key}: {pick.class_type} has no {pick.negative} input")
    tool = TOOLS[pick.tool]
    outputs = definition.get("output") or []
    if not outputs or outputs[0] != tool["output"]:
        raise SystemExit(f"{pick.key}: first output is {outputs[:1]}, not {tool['output']}")
    graph = {MAIN: {"class_type": pick.class_type, "inputs": inputs,
                    "_meta": {"title": f"{pick.key}: {pick.label}"}}}
    if tool["output"] == "IMAGE":
        graph[OUTPUT] = {"class_type": "SaveImage",
                         "inputs": {"images": [MAIN, 0], "filename_prefix": f"{pick.tool}/{pick.key}"},
                         "_meta": {"title": "Save image"}}
    else:
        save = core["SaveVideo"]
        graph[OUTPUT] = {"class_type": "SaveVideo",
                         "inputs": {"video": [MAIN, 0], "filename_prefix": f"video/{pick.key}",
                                    "format": _default(_input_spec(save, "format")),
                                    "codec": _default(_input_spec(save, "codec"))},
                         "_meta": {"title": "Save video"}}
    if pick.images:
        graph[FIRST_IMAGE] = {"class_type": "LoadImage", "inputs": {"image": EXAMPLE_IMAGE},
                              "_meta": {"title": "Input image 1"}}
    entry: dict[str, Any] = {
        "label": pick.label, "class_type": pick.class_type, "workflow": f"{pick.tool}/{pick.key}.json",
        "node": MAIN, "prompt": "prompt", "negative": pick.negative or None,
        "images": pick.images.spec(definition) if pick.images else None,
        "options": {name: _option(pick, name, option, definition) for name, option in pick.options.items()},
        "fixed": dict(pick.fixed), "replacement": pick.replacement,
    }
    unknown = set(pick.options) - set(tool["options"])
    if unknown:
        raise SystemExit(f"{pick.key}: options {sorted(unknown)} are not options of {pick.tool}")
    return entry, graph


def build() -> tuple[dict, dict[str, dict]]:
    core = load_classes(CORE_SOURCE)
    bizy = load_classes(BIZYAIR_SOURCE)
    index: dict[str, Any] = {
        "about": "BizyAir models of the ready-made tools; generated by scripts/make_catalogue.py",
        "source": SOURCE_LABEL, "tools": {}}
    workflows: dict[str, dict] = {}
    for tool, conf in TOOLS.items():
        index["tools"][tool] = {"default": conf["default"], "options": list(conf["options"]), "models": {}}
    for pick in CURATED:
        if pick.class_type not in bizy:
            raise SystemExit(f"{pick.key}: {pick.class_type} is not in {BIZYAIR_SOURCE.name}")
        models = index["tools"][pick.tool]["models"]
        if pick.key in models:
            raise SystemExit(f"{pick.tool}: model {pick.key} twice")
        entry, graph = build_model(pick, bizy[pick.class_type], core)
        models[pick.key] = entry
        workflows[entry["workflow"]] = graph
    for tool, conf in index["tools"].items():
        if conf["default"] not in conf["models"]:
            raise SystemExit(f"{tool}: default {conf['default']} is not a model")
        for key, entry in conf["models"].items():
            if entry["replacement"] and entry["replacement"] not in conf["models"]:
                raise SystemExit(f"{tool}/{key}: replacement {entry['replacement']} is not a model of {tool}")
    return index, workflows


def render(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=1) + "\n"


def expected_files() -> dict[Path, str]:
    index, workflows = build()
    files = {INDEX: render(index)}
    for rel, graph in workflows.items():
        files[OUT_DIR / "workflows" / rel] = render(graph)
    return files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="verify the committed files are up to date")
    args = ap.parse_args()
    files = expected_files()
    present = {p for p in OUT_DIR.rglob("*.json")} if OUT_DIR.exists() else set()
    if args.check:
        stale = sorted(str(p.relative_to(ROOT)) for p, text in files.items()
                       if not p.exists() or p.read_text(encoding="utf-8") != text)
        extra = sorted(str(p.relative_to(ROOT)) for p in present - set(files))
        if stale or extra:
            print(f"catalogue out of date (run scripts/make_catalogue.py): {stale + extra}", file=sys.stderr)
            return 1
        print(f"{OUT_DIR.relative_to(ROOT)} is up to date ({len(files) - 1} workflows)")
        return 0
    for path in present - set(files):
        path.unlink()
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    print(f"wrote {OUT_DIR.relative_to(ROOT)}: index.json and {len(files) - 1} workflows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
