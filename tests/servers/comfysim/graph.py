"""Node registry, prompt validation, execution order and cache signatures.

validate_prompt/validate_inputs are ports of ComfyUI 0.8.0 execution.py, driven by
object_info definitions instead of Python classes, so error types, messages, details and
extra_info match the captures. ExecutionList ports comfy_execution/graph.py (including the
"output node first" pick that decides the order of `executing` frames).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

# A class "has VALIDATE_INPUTS(<input>)" when one of its combos is an upload picker or a
# BizyAir model list that is filled at run time ("to choose"): the combo list is not checked.
UPLOAD_FLAGS = {"image_upload": "image", "audio_upload": "audio", "video_upload": "video"}
DYNAMIC_COMBOS = (["to choose"],)

VALIDATE_PROMPT_FRAME = (
    '  File "/opt/ComfyUI/execution.py", line 1043, in validate_prompt\n'
    "    m = await validate_inputs(prompt_id, prompt, o, validated)\n"
    "        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n")
LINK_FRAMES = {
    "node": ('  File "/opt/ComfyUI/execution.py", line 818, in validate_inputs\n'
             "    o_class_type = prompt[o_id]['class_type']\n"
             "                   ~~~~~~^^^^^^\n"),
    "index": ('  File "/opt/ComfyUI/execution.py", line 820, in validate_inputs\n'
              "    received_type = r[val[1]]\n"
              "                    ~^^^^^^^^\n"),
}


class Registry:
    """object_info definitions: the core set plus optional layers (e.g. BizyAir's classes)."""

    def __init__(self, core: dict[str, dict], layers: dict[str, dict[str, dict]] | None = None):
        self.core = core
        self.layers = layers or {}
        self.enabled = set(self.layers)
        self._lock = threading.Lock()
        self._cache_key: Any = None
        self._cache_bytes = b""

    def set_enabled(self, names: set[str]) -> None:
        with self._lock:
            self.enabled = set(names) & set(self.layers)
            self._cache_key = None

    def get(self, class_type: Any) -> dict | None:
        if not isinstance(class_type, str):
            return None
        if class_type in self.core:
            return self.core[class_type]
        for name in sorted(self.enabled):
            found = self.layers[name].get(class_type)
            if found is not None:
                return found
        return None

    def names(self) -> list[str]:
        out = list(self.core)
        for name in sorted(self.enabled):
            out += [c for c in self.layers[name] if c not in self.core]
        return out

    def with_input_files(self, class_type: str, info: dict, input_images: list[str]) -> dict:
        """LoadImage-style classes list the input folder in their upload combo, as ComfyUI does."""
        spec = info.get("input", {}).get("required", {})
        changed = None
        for name, entry in spec.items():
            if (isinstance(entry, list) and entry and isinstance(entry[0], list) and len(entry) > 1
                    and isinstance(entry[1], dict) and entry[1].get("image_upload")
                    and class_type in ("LoadImage", "LoadImageMask")):
                changed = changed or json.loads(json.dumps(info))
                changed["input"]["required"][name][0] = list(input_images)
        return changed or info

    def object_info_bytes(self, input_images: list[str]) -> bytes:
        key = (tuple(sorted(self.enabled)), tuple(input_images))
        with self._lock:
            if key != self._cache_key:
                out = {name: self.with_input_files(name, self.get(name), input_images) for name in self.names()}
                self._cache_bytes = json.dumps(out).encode("utf-8")
                self._cache_key = key
            return self._cache_bytes

    @staticmethod
    def is_output(info: dict | None) -> bool:
        return bool(info and info.get("output_node") is True)

    @staticmethod
    def return_types(info: dict) -> tuple:
        return tuple(info.get("output", []))

    @staticmethod
    def input_info(info: dict, name: str) -> tuple[Any, str | None, dict | None]:
        """(input_type, category, extra_info) like execution.get_input_info."""
        inputs = info.get("input", {})
        for category in ("required", "optional", "hidden"):
            section = inputs.get(category) or {}
            if name in section:
                spec = section[name]
                if isinstance(spec, list):
                    input_type = spec[0] if spec else None
                    extra = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                else:
                    input_type, extra = spec, {}
                return input_type, category, extra
        return None, None, None

    @staticmethod
    def valid_inputs(info: dict) -> list[str]:
        inputs = info.get("input", {})
        names = list(inputs.get("required") or {})
        names += [n for n in (inputs.get("optional") or {}) if n not in names]
        return names


def is_link(obj: Any) -> bool:
    return (isinstance(obj, list) and len(obj) == 2 and isinstance(obj[0], str)
            and isinstance(obj[1], (int, float)) and not isinstance(obj[1], bool))


def full_type_name(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module in (None, "builtins") else f"{module}.{cls.__qualname__}"


def validate_node_input(received_type: Any, input_type: Any) -> bool:
    if not received_type != input_type:
        return True
    if not isinstance(received_type, str) or not isinstance(input_type, str):
        return False
    if received_type == "*" or input_type == "*":
        return True
    received = {t.strip() for t in received_type.split(",")}
    wanted = {t.strip() for t in input_type.split(",")}
    return len(received & wanted) > 0


class Validator:
    """One POST /prompt validation (ComfyUI's validate_prompt + validate_inputs)."""

    def __init__(self, registry: Registry, file_exists: Callable[[str], bool]):
        self.registry = registry
        self.file_exists = file_exists

    def validate_prompt(self, prompt: dict, partial_targets: list | None = None):
        outputs = []
        for x in prompt:
            if "class_type" not in prompt[x]:
                return False, _invalid("Cannot execute because a node is missing the class_type property.", x), [], {}
            class_type = prompt[x]["class_type"]
            info = self.registry.get(class_type)
            if info is None:
                return False, _invalid(f"Cannot execute because node {class_type} does not exist.", x), [], {}
            if self.registry.is_output(info) and (partial_targets is None or x in partial_targets):
                outputs.append(x)
        if not outputs:
            return (False, {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "",
                            "extra_info": {}}, [], {})

        good, errors, node_errors, validated = [], [], {}, {}
        for o in outputs:
            try:
                valid, reasons, _ = self.validate_inputs(prompt, o, validated)
            except Exception as ex:  # noqa: BLE001 - mirrors ComfyUI's catch-all
                valid = False
                reasons = [{"type": "exception_during_validation", "message": "Exception when validating node",
                            "details": str(ex),
                            "extra_info": {"exception_type": full_type_name(ex),
                                           "traceback": [VALIDATE_PROMPT_FRAME] + getattr(ex, "sim_frames", [])}}]
                validated[o] = (False, reasons, o)
            if valid is True:
                good.append(o)
                continue
            errors.append((o, reasons))
            for node_id, result in validated.items():
                if result[0] is not True and len(result[1]) > 0:
                    if node_id not in node_errors:
                        node_errors[node_id] = {"errors": result[1], "dependent_outputs": [],
                                                "class_type": prompt[node_id]["class_type"]}
                    node_errors[node_id]["dependent_outputs"].append(o)
        if not good:
            details = "\n".join(f"{e['message']}: {e['details']}" for _, errs in errors for e in errs)
            error = {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                     "details": details, "extra_info": {}}
            return False, error, [], node_errors
        return True, None, good, node_errors

    def validate_inputs(self, prompt: dict, unique_id: str, validated: dict):
        if unique_id in validated:
            return validated[unique_id]
        inputs = prompt[unique_id]["inputs"]
        info = self.registry.get(prompt[unique_id]["class_type"])
        custom = self.custom_validated(info)
        errors, valid = [], True

        for x in self.registry.valid_inputs(info):
            input_type, category, extra = self.registry.input_info(info, x)
            if x not in inputs:
                if category == "required":
                    errors.append({"type": "required_input_missing", "message": "Required input is missing",
                                   "details": f"{x}", "extra_info": {"input_name": x}})
                continue
            val = inputs[x]
            config = [input_type, extra]
            if isinstance(val, list):
                if len(val) != 2:
                    errors.append({"type": "bad_linked_input",
                                   "message": "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                                   "details": f"{x}",
                                   "extra_info": {"input_name": x, "input_config": config, "received_value": val}})
                    continue
                o_id = val[0]
                received_type = self._linked_type(prompt, val)
                if not validate_node_input(received_type, input_type):
                    errors.append({"type": "return_type_mismatch",
                                   "message": "Return type mismatch between linked nodes",
                                   "details": f"{x}, received_type({received_type}) mismatch input_type({input_type})",
                                   "extra_info": {"input_name": x, "input_config": config,
                                                  "received_type": received_type, "linked_node": val}})
                    continue
                try:
                    r = self.validate_inputs(prompt, o_id, validated)
                    if r[0] is False:
                        valid = False
                        continue
                except Exception as ex:  # noqa: BLE001
                    valid = False
                    reasons = [{"type": "exception_during_inner_validation",
                                "message": "Exception when validating inner node",
                                "details": str(ex),
                                "extra_info": {"input_name": x, "input_config": config, "exception_message": str(ex),
                                               "exception_type": full_type_name(ex),
                                               "traceback": getattr(ex, "sim_frames", []), "linked_node": val}}]
                    validated[o_id] = (False, reasons, o_id)
                    continue
            else:
                try:
                    if isinstance(val, dict) and "__value__" in val:
                        val = val["__value__"]
                        inputs[x] = val
                    converter = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}.get(input_type) \
                        if isinstance(input_type, str) else None
                    if converter is not None:
                        val = converter(val)
                        inputs[x] = val
                except Exception as ex:  # noqa: BLE001
                    errors.append({"type": "invalid_input_type",
                                   "message": f"Failed to convert an input value to a {input_type} value",
                                   "details": f"{x}, {val}, {ex}",
                                   "extra_info": {"input_name": x, "input_config": config, "received_value": val,
                                                  "exception_message": str(ex)}})
                    continue
                if x in custom:
                    continue
                if "min" in extra and val < extra["min"]:
                    errors.append({"type": "value_smaller_than_min",
                                   "message": f"Value {val} smaller than min of {extra['min']}",
                                   "details": f"{x}",
                                   "extra_info": {"input_name": x, "input_config": config, "received_value": val}})
                    continue
                if "max" in extra and val > extra["max"]:
                    errors.append({"type": "value_bigger_than_max",
                                   "message": f"Value {val} bigger than max of {extra['max']}",
                                   "details": f"{x}",
                                   "extra_info": {"input_name": x, "input_config": config, "received_value": val}})
                    continue
                options = self._combo_options(input_type, extra)
                if options is not None and val not in options:
                    list_info, input_config = str(options), config
                    if len(options) > 20:
                        list_info, input_config = f"(list of length {len(options)})", None
                    errors.append({"type": "value_not_in_list", "message": "Value not in list",
                                   "details": f"{x}: '{val}' not in {list_info}",
                                   "extra_info": {"input_name": x, "input_config": input_config,
                                                  "received_value": val}})
                    continue

        for x, kind in custom.items():
            val = inputs.get(x)
            if kind is None or not isinstance(val, str):
                continue
            if not self.file_exists(val):
                errors.append({"type": "custom_validation_failed", "message": "Custom validation failed for node",
                               "details": f"{x} - Invalid {kind} file: {val}", "extra_info": {"input_name": x}})

        ret = (False, errors, unique_id) if errors or valid is not True else (True, [], unique_id)
        validated[unique_id] = ret
        return ret

    def _linked_type(self, prompt: dict, val: list) -> Any:
        o_id = val[0]
        try:
            o_class_type = prompt[o_id]["class_type"]
        except Exception as ex:
            ex.sim_frames = [LINK_FRAMES["node"]]
            raise
        returns = self.registry.return_types(self.registry.get(o_class_type) or {})
        try:
            return returns[val[1]]
        except Exception as ex:
            ex.sim_frames = [LINK_FRAMES["index"]]
            raise

    @staticmethod
    def _combo_options(input_type: Any, extra: dict) -> list | None:
        if isinstance(input_type, list):
            return input_type
        if input_type == "COMBO":
            return extra.get("options", [])
        return None

    def custom_validated(self, info: dict) -> dict[str, str | None]:
        """{input name: upload kind or None} for inputs a VALIDATE_INPUTS would take over."""
        out = {}
        for name in self.registry.valid_inputs(info):
            input_type, _, extra = self.registry.input_info(info, name)
            for flag, kind in UPLOAD_FLAGS.items():
                if extra.get(flag):
                    out[name] = kind
            if isinstance(input_type, list) and input_type in DYNAMIC_COMBOS:
                out.setdefault(name, None)
        return out


def _invalid(message: str, node_id: str) -> dict:
    return {"type": "invalid_prompt", "message": message, "details": f"Node ID '#{node_id}'", "extra_info": {}}


# ---- execution order (comfy_execution/graph.py) ---------------------------------------------

class DependencyCycle(Exception):
    pass


class ExecutionList:
    def __init__(self, prompt: dict, registry: Registry, is_cached: Callable[[str], bool]):
        self.prompt = prompt
        self.registry = registry
        self.is_cached = is_cached
        self.pending: dict[str, bool] = {}
        self.block_count: dict[str, int] = {}
        self.blocking: dict[str, dict[str, dict]] = {}
        self.staged: str | None = None

    def add_node(self, unique_id: str) -> None:
        stack, links = [unique_id], []
        while stack:
            uid = stack.pop()
            if uid in self.pending:
                continue
            self.pending[uid] = True
            self.block_count[uid] = 0
            self.blocking[uid] = {}
            for value in self.prompt[uid]["inputs"].values():
                if is_link(value):
                    from_id, socket = value
                    if not self.is_cached(from_id):
                        stack.append(from_id)
                    links.append((from_id, socket, uid))
        for from_id, socket, to_id in links:
            self.add_strong_link(from_id, socket, to_id)

    def add_strong_link(self, from_id: str, socket: int, to_id: str) -> None:
        if self.is_cached(from_id):
            return
        self.add_node(from_id)
        if to_id not in self.blocking[from_id]:
            self.blocking[from_id][to_id] = {}
            self.block_count[to_id] += 1
        self.blocking[from_id][to_id][socket] = True

    def is_empty(self) -> bool:
        return not self.pending

    def _is_output(self, node_id: str) -> bool:
        return self.registry.is_output(self.registry.get(self.prompt[node_id]["class_type"]))

    def stage(self) -> str:
        ready = [n for n in self.pending if self.block_count[n] == 0]
        if not ready:
            raise DependencyCycle(next(iter(self.pending)))
        self.staged = self._pick(ready)
        return self.staged

    def _pick(self, ready: list[str]) -> str:
        for node_id in ready:
            if self._is_output(node_id):
                return node_id
        for node_id in ready:
            if any(self._is_output(b) for b in self.blocking[node_id]):
                return node_id
        for node_id in ready:
            for blocked in self.blocking[node_id]:
                if any(self._is_output(b) for b in self.blocking[blocked]):
                    return node_id
        return ready[0]

    def complete(self) -> None:
        node_id, self.staged = self.staged, None
        del self.pending[node_id]
        for blocked in self.blocking[node_id]:
            self.block_count[blocked] -= 1
        del self.blocking[node_id]


# ---- cache signatures (CacheKeySetInputSignature, keyed by inputs not by node id) ---------------

def signatures(prompt: dict, extra_key: Callable[[str, dict], Any]) -> dict[str, str]:
    """{node id: signature}; identical subgraphs get identical signatures whatever their ids."""
    memo: dict[str, str] = {}

    def sig(node_id: str, visiting: frozenset) -> str:
        if node_id in memo:
            return memo[node_id]
        if node_id in visiting:
            raise DependencyCycle(node_id)
        node = prompt[node_id]
        items = []
        for name in sorted(node.get("inputs", {})):
            value = node["inputs"][name]
            if is_link(value) and value[0] in prompt:
                items.append([name, "link", sig(value[0], visiting | {node_id}), value[1]])
            else:
                items.append([name, "value", value])
        raw = json.dumps([node.get("class_type"), items, extra_key(node_id, node)], sort_keys=True, default=str)
        memo[node_id] = hashlib.sha256(raw.encode("utf-8")).hexdigest()
        return memo[node_id]

    for node_id in prompt:
        sig(node_id, frozenset())
    return memo
