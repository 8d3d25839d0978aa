#!/usr/bin/env python3
"""Build comfyui_bridge/data/pack_defs.json: node definitions of popular custom-node packs, read from the
packs' own Python source without running it.

    python scripts/build_pack_defs.py /path/to/owner+pack/repo [...]     # git dirs (bare or .git)
    python scripts/build_pack_defs.py --check /path/...                  # exit 1 if the file differs

Each argument is a git directory holding a pack (for example a mirrored snapshot, MIRROR/<owner>+<name>/repo); the
newest commit is read with `git show`, nothing is checked out or imported. For every node class the script
finds its registration name (NODE_CLASS_MAPPINGS dicts and updates, NODE_CONFIG-style {"name": {"class": X}},
`mapping[X.NAME] = X`, V3 `io.Schema(node_id=...)`), its `INPUT_TYPES` (a small static evaluator: dict/tuple
literals, module constants, `IO.*` names, combos from calls become open lists) or V3 `inputs=[io.X.Input(...)]`,
and its `RETURN_TYPES` / `RETURN_NAMES` (or V3 outputs).

What targeting needs is kept and nothing else: input names and types (STRING with multiline/forceInput, INT
seed inputs with their bounds), output types and names. Classes with no text, conditioning, any-type or seed
input or output are left out (their absence changes nothing for targeting), as are classes the bundled
`node_defs.json` already has. Combos keep no choices. The compact encoding is expanded by
`comfyui_bridge.nodeinfo.load_pack_defs`:

    "Class": {"i": {"name": CODE}, "o": ["TYPE", ...], "n": ["output name", ...]}   # "n" only if names differ

CODE is S / Sm / Sf (STRING, multiline, forceInput), I F C B (INT FLOAT COMBO BOOLEAN widgets whose name could
pass for a text field, such as `log_prompt` or `prompt_template`), s:min:max (a seed INT and its bounds), or a
link type kept verbatim when it is conditioning-like or "*". Other inputs (IMAGE, MODEL, ..., plain numbers) are
dropped: targeting infers nothing from them.

What is written, and what is not: the only file written is --out (default comfyui_bridge/data/pack_defs.json,
which must be a .json file). It holds our own extracted, trimmed metadata: class names, input and output names,
their types and seed bounds, and each pack's repository and commit. No pack source, docstring, tooltip, default
value, file or directory is copied or vendored into this repository. The git directories given as arguments
(for example snapshots brought by `fetch`) are only read, from wherever they are, and stay outside it.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "comfyui_bridge" / "data" / "pack_defs.json"
BUNDLED = ROOT / "comfyui_bridge" / "data" / "node_defs.json"
MAX_FILE = 1_500_000


class _Unknown:
    """A value the static evaluator cannot know (a call, a runtime list)."""

    def __repr__(self) -> str:
        return "?"


UNKNOWN = _Unknown()
OPEN_COMBO = ("__combo__",)

# V3 io.<Type> names whose ComfyUI type string is not simply upper-case.
V3_TYPES = {"AnyType": "*", "Clip": "CLIP", "Vae": "VAE", "ClipVision": "CLIP_VISION",
            "ClipVisionOutput": "CLIP_VISION_OUTPUT", "ControlNet": "CONTROL_NET", "UpscaleModel": "UPSCALE_MODEL",
            "StyleModel": "STYLE_MODEL", "Conditioning": "CONDITIONING", "Sigmas": "SIGMAS", "Guider": "GUIDER",
            "Noise": "NOISE", "Sampler": "SAMPLER", "Combo": "COMBO", "MultiCombo": "COMBO"}
# comfy_types IO enum members are their own names, except these.
IO_ENUM = {"ANY": "*", "NUMBER": "FLOAT,INT", "PRIMITIVE": "STRING,FLOAT,INT,BOOLEAN"}


@dataclass
class Module:
    path: str
    tree: ast.Module
    consts: dict = field(default_factory=dict)
    funcs: dict = field(default_factory=dict)


@dataclass
class Pack:
    repo: str
    commit: str
    modules: list
    classes: dict = field(default_factory=dict)       # class name -> (module, ClassDef)
    consts: dict = field(default_factory=dict)         # pack-wide top-level constants (fallback)
    funcs: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------
# Reading a pack

def git(gitdir: Path, *args: str) -> bytes:
    # Reads the given git directory only (ls-tree/show/rev-parse); nothing from the pack is executed.
    return subprocess.run(["git", "--git-dir", str(gitdir), *args],  # noqa: S603, S607
                          check=True, capture_output=True).stdout


def load_pack(gitdir: Path) -> Pack:
    commit = git(gitdir, "rev-parse", "HEAD").decode().strip()
    where = gitdir.resolve()
    while where.name in ("repo", ".git") and where.parent != where:
        where = where.parent          # MIRROR/<owner>+<name>/repo[/.git]
    repo = where.name.replace("+", "/", 1)
    listing = git(gitdir, "ls-tree", "-r", "-l", "HEAD").decode("utf-8", "replace").splitlines()
    modules = []
    for line in listing:
        meta, path = line.split("\t", 1)
        size = meta.split()[3]
        if not path.endswith(".py") or not size.isdigit() or int(size) > MAX_FILE:
            continue
        if re.search(r"(^|/)(tests?|examples?|docs?|scripts?|\.github|node_modules|venv)/", path):
            continue
        try:
            src = git(gitdir, "show", f"HEAD:{path}").decode("utf-8", "replace")
            tree = ast.parse(src)
        except (subprocess.CalledProcessError, SyntaxError, ValueError):
            continue
        modules.append(Module(path, tree))
    pack = Pack(repo, commit, modules)
    for m in modules:
        for node in ast.walk(m.tree):
            if isinstance(node, ast.ClassDef):
                pack.classes.setdefault(node.name, (m, node))
        for node in m.tree.body:
            if isinstance(node, ast.FunctionDef):
                m.funcs[node.name] = node
                pack.funcs.setdefault(node.name, node)
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                m.consts[node.targets[0].id] = node.value
                pack.consts.setdefault(node.targets[0].id, node.value)
    return pack


# ----------------------------------------------------------------------------------------------
# A small, tolerant evaluator

class Evaluator:
    def __init__(self, pack: Pack, module: Module, cls: ast.ClassDef | None = None):
        self.pack, self.module, self.cls = pack, module, cls
        self.locals: dict[str, Any] = {}
        self.depth = 0

    def class_attr(self, cls: ast.ClassDef, name: str) -> Any:
        for stmt in cls.body:
            if isinstance(stmt, ast.Assign):
                for t in stmt.targets:
                    if isinstance(t, ast.Name) and t.id == name:
                        return self.eval(stmt.value)
        for base in cls.bases:
            found = self.pack.classes.get(base.id) if isinstance(base, ast.Name) else None
            if found:
                sub = Evaluator(self.pack, found[0], found[1])
                sub.depth = self.depth + 1
                if sub.depth < 8:
                    return sub.class_attr(found[1], name)
        return UNKNOWN

    def name(self, ident: str) -> Any:
        if ident in self.locals:
            return self.locals[ident]
        if ident in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[ident]
        for table in (self.module.consts, self.pack.consts):
            if ident in table and self.depth < 8:
                self.depth += 1
                try:
                    return self.eval(table[ident])
                finally:
                    self.depth -= 1
        if ident in ("MAX_RESOLUTION",):
            return 16384
        return UNKNOWN

    def eval(self, node: ast.AST | None) -> Any:       # noqa: C901 - one case per AST node kind
        if node is None:
            return None
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.Tuple, ast.List)):
            out: list = []
            for elt in node.elts:
                if isinstance(elt, ast.Starred):
                    v = self.eval(elt.value)
                    out.extend(v if isinstance(v, (list, tuple)) else [])
                else:
                    out.append(self.eval(elt))
            return tuple(out) if isinstance(node, ast.Tuple) else out
        if isinstance(node, ast.Dict):
            d: dict = {}
            for k, v in zip(node.keys, node.values, strict=False):
                if k is None:
                    sub = self.eval(v)
                    if isinstance(sub, dict):
                        d.update(sub)
                    continue
                key = self.eval(k)
                if isinstance(key, str):
                    d[key] = self.eval(v)
            return d
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.Attribute):
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("IO", "comfy_types", "ComfyTypes"):
                return IO_ENUM.get(node.attr, node.attr)
            if isinstance(base, ast.Name) and base.id in ("cls", "s", "self") and self.cls is not None:
                return self.class_attr(self.cls, node.attr)
            if isinstance(base, ast.Name) and base.id in self.pack.classes:
                m, c = self.pack.classes[base.id]
                return Evaluator(self.pack, m, c).class_attr(c, node.attr)
            if node.attr == "value" and isinstance(base, ast.Attribute):     # Enum member .value
                return self.eval(base)
            return UNKNOWN
        if isinstance(node, ast.JoinedStr):
            parts = []
            for v in node.values:
                x = self.eval(v.value) if isinstance(v, ast.FormattedValue) else self.eval(v)
                if not isinstance(x, (str, int, float)):
                    return UNKNOWN
                parts.append(str(x))
            return "".join(parts)
        if isinstance(node, ast.BinOp):
            a, b = self.eval(node.left), self.eval(node.right)
            if isinstance(node.op, ast.Add) and type(a) is type(b) and isinstance(a, (str, tuple, list)):
                return a + b
            if isinstance(node.op, ast.BitOr) and isinstance(a, dict) and isinstance(b, dict):
                return {**a, **b}
            if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
                return self.arith(node.op, a, b)
            return UNKNOWN
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            v = self.eval(node.operand)
            return -v if isinstance(v, (int, float)) else UNKNOWN
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.IfExp):
            return self.eval(node.body)
        if isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.Subscript)):
            return UNKNOWN
        return UNKNOWN

    @staticmethod
    def arith(op: ast.operator, a: int | float, b: int | float) -> Any:
        """+ - * ** << on two numbers (bounds such as 0xffffffffffffffff or 2**64 - 1)."""
        try:
            if isinstance(op, ast.Add):
                return a + b
            if isinstance(op, ast.Sub):
                return a - b
            if isinstance(op, ast.Mult):
                return a * b
            if isinstance(op, ast.Pow) and abs(b) < 200:
                return a ** b
            if isinstance(op, ast.LShift) and isinstance(a, int) and isinstance(b, int) and 0 <= b < 200:
                return a << b
        except (TypeError, ValueError, OverflowError):
            pass
        return UNKNOWN

    def call(self, node: ast.Call) -> Any:
        func = node.func
        fname = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if fname == "dict":
            d = {}
            for a in node.args:
                v = self.eval(a)
                if isinstance(v, dict):
                    d.update(v)
            d.update({kw.arg: self.eval(kw.value) for kw in node.keywords if kw.arg})
            return d
        if fname in ("AnyType", "AlwaysEqualProxy", "AnyTypeProxy", "any_type"):
            return "*"
        if fname in ("tuple", "list") and node.args:
            v = self.eval(node.args[0])
            return (tuple(v) if fname == "tuple" else list(v)) if isinstance(v, (tuple, list)) else OPEN_COMBO
        if fname in ("get_filename_list", "listdir", "sorted", "keys", "list", "get_list", "glob"):
            return OPEN_COMBO
        if fname in ("format",) and isinstance(func, ast.Attribute):
            base = self.eval(func.value)
            args = [self.eval(a) for a in node.args]
            if isinstance(base, str) and all(isinstance(a, (str, int)) for a in args):
                try:
                    return base.format(*args)
                except (IndexError, KeyError, ValueError):
                    return UNKNOWN
            return UNKNOWN
        lam = self.module.consts.get(fname) if isinstance(func, ast.Name) else None
        if isinstance(lam, ast.Lambda) and len(lam.args.args) == len(node.args) and self.depth < 6:
            sub = Evaluator(self.pack, self.module, self.cls)
            sub.depth = self.depth + 1
            sub.locals = {a.arg: self.eval(v) for a, v in zip(lam.args.args, node.args, strict=False)}
            return sub.eval(lam.body)
        # A pack helper `def f(x, y=...): ...; return <expr>` (rgthree's get_name, Derfuu's Field.string),
        # or a method of a pack class called as Class.method(...).
        fdef = None
        if isinstance(func, ast.Name):
            fdef = self.module.funcs.get(fname) or self.pack.funcs.get(fname)
        elif (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
              and func.value.id in self.pack.classes):
            fdef = method(self.pack.classes[func.value.id][1], func.attr)
        if fdef is not None and self.depth < 6:
            return self.apply(fdef, node)
        return UNKNOWN

    def apply(self, fdef: ast.FunctionDef, node: ast.Call) -> Any:
        params = [a.arg for a in fdef.args.args]
        if params and params[0] in ("self", "cls", "s"):
            params = params[1:]
        defaults = fdef.args.defaults
        bound: dict[str, Any] = {}
        for name, d in zip(params[len(params) - len(defaults):], defaults, strict=False):
            bound[name] = self.eval(d)
        for name, v in zip(params, node.args, strict=False):
            bound[name] = self.eval(v)
        for kw in node.keywords:
            if kw.arg:
                bound[kw.arg] = self.eval(kw.value)
        sub = Evaluator(self.pack, self.module, self.cls)
        sub.depth = self.depth + 1
        sub.locals = bound
        return sub.run_function(fdef)

    def run_function(self, fdef: ast.FunctionDef) -> Any:
        """Evaluate INPUT_TYPES-like bodies: assignments, subscript assignments, .update(), the return."""
        result = UNKNOWN
        for stmt in self._flat(fdef.body):
            if isinstance(stmt, ast.Assign):
                value = self.eval(stmt.value)
                for t in stmt.targets:
                    if isinstance(t, ast.Name):
                        self.locals[t.id] = value
                    elif isinstance(t, ast.Subscript):
                        self._set_item(t, value)
                    elif isinstance(t, ast.Tuple) and isinstance(value, (tuple, list)) and len(value) == len(t.elts):
                        for elt, v in zip(t.elts, value, strict=False):
                            if isinstance(elt, ast.Name):
                                self.locals[elt.id] = v
            elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
                call = stmt.value
                if isinstance(call.func, ast.Attribute) and call.func.attr == "update" and call.args:
                    target = self._resolve_target(call.func.value)
                    value = self.eval(call.args[0])
                    if isinstance(target, dict) and isinstance(value, dict):
                        target.update(value)
            elif isinstance(stmt, ast.Return):
                value = self.eval(stmt.value)
                if isinstance(value, dict):
                    return value
                result = value
        return result

    def pairs_inputs(self) -> dict | None:
        """`required`/`optional` built as lists of (name, spec) pairs by a helper (UltimateSDUpscale)."""
        pairs = {k: v for k, v in self.locals.items() if k in ("required", "optional") and isinstance(v, list)
                 and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in v)}
        return {k: dict(v) for k, v in pairs.items()} or None

    def _flat(self, body: list) -> list:
        out = []
        for stmt in body:
            if isinstance(stmt, (ast.If, ast.Try, ast.With)):
                inner = list(getattr(stmt, "body", []))
                if isinstance(stmt, ast.Try):
                    inner += [s for h in stmt.handlers for s in h.body] if not stmt.body else []
                out.extend(self._flat(inner))
            else:
                out.append(stmt)
        return out

    def _resolve_target(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Name):
            return self.locals.get(node.id)
        if isinstance(node, ast.Subscript):
            base = self._resolve_target(node.value)
            key = self.eval(node.slice)
            if isinstance(base, dict) and isinstance(key, str):
                return base.setdefault(key, {})
        return None

    def _set_item(self, t: ast.Subscript, value: Any) -> None:
        base = self._resolve_target(t.value)
        key = self.eval(t.slice)
        if isinstance(base, dict) and isinstance(key, str):
            base[key] = value


# ----------------------------------------------------------------------------------------------
# Node classes

def method(cls: ast.ClassDef, name: str) -> ast.FunctionDef | None:
    return next((s for s in cls.body if isinstance(s, ast.FunctionDef) and s.name == name), None)


def inherited(pack: Pack, cls: ast.ClassDef, name: str, depth: int = 0) -> tuple[Module | None, ast.ClassDef | None]:
    """The class (self or a base in the pack) defining method or attribute `name`."""
    for stmt in cls.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name == name:
            return None, cls
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets):
            return None, cls
    if depth > 6:
        return None, None
    for base in cls.bases:
        if isinstance(base, ast.Name) and base.id in pack.classes:
            m, c = pack.classes[base.id]
            _, found = inherited(pack, c, name, depth + 1)
            if found is not None:
                return (m if found is c else None), found
    return None, None


def v1_definition(pack: Pack, module: Module, cls: ast.ClassDef) -> dict | None:
    _, owner = inherited(pack, cls, "INPUT_TYPES")
    if owner is None:
        return None
    owner_mod = next((m for m, c in pack.classes.values() if c is owner), module)
    fdef = method(owner, "INPUT_TYPES")
    ev = Evaluator(pack, owner_mod, cls)
    inputs = ev.run_function(fdef) if fdef is not None else UNKNOWN
    if not isinstance(inputs, dict) or not any(isinstance(v, dict) and v for v in inputs.values()):
        inputs = ev.pairs_inputs() or {}
    ev2 = Evaluator(pack, module, cls)
    rtypes = ev2.class_attr(cls, "RETURN_TYPES")
    rnames = ev2.class_attr(cls, "RETURN_NAMES")
    return {"inputs": inputs, "outputs": rtypes, "names": rnames}


def v3_type(call: ast.Call) -> str:
    """io.Conditioning.Input(...) → CONDITIONING; io.Custom("X").Input → X."""
    f = call.func
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Attribute):
        return V3_TYPES.get(f.value.attr, f.value.attr.upper())
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Call):
        inner = f.value
        if inner.args and isinstance(inner.args[0], ast.Constant) and isinstance(inner.args[0].value, str):
            return inner.args[0].value
    return "*"


def v3_definition(pack: Pack, module: Module, cls: ast.ClassDef) -> tuple[str, dict] | None:
    fdef = method(cls, "define_schema")
    if fdef is None:
        return None
    schema = next((n for n in ast.walk(fdef)
                   if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "Schema"), None)
    if schema is None:
        return None
    ev = Evaluator(pack, module, cls)
    kw = {k.arg: k.value for k in schema.keywords if k.arg}
    node_id = ev.eval(kw.get("node_id"))
    if not isinstance(node_id, str):
        return None
    inputs: dict = {"required": {}}
    for item in getattr(kw.get("inputs"), "elts", []) or []:
        if not isinstance(item, ast.Call) or not item.args:
            continue
        name = ev.eval(item.args[0])
        if not isinstance(name, str):
            continue
        opts = {k.arg: ev.eval(k.value) for k in item.keywords if k.arg}
        inputs["required"][name] = (v3_type(item), {k: v for k, v in opts.items() if isinstance(v, (bool, int, float))})
    outputs, names = [], []
    for item in getattr(kw.get("outputs"), "elts", []) or []:
        if isinstance(item, ast.Call):
            outputs.append(v3_type(item))
            opts = {k.arg: ev.eval(k.value) for k in item.keywords if k.arg}
            label = opts.get("display_name") or (ev.eval(item.args[0]) if item.args else None)
            names.append(label if isinstance(label, str) else outputs[-1])
    return node_id, {"inputs": inputs, "outputs": tuple(outputs), "names": tuple(names)}


def registrations(pack: Pack) -> dict[str, str]:
    """class_type → class name, from every registration pattern the packs use."""
    reg: dict[str, str] = {}

    def key_of(ev: Evaluator, k: ast.AST) -> Any:
        return ev.eval(k)

    def class_of(v: ast.AST) -> str | None:
        if isinstance(v, ast.Name) and v.id in pack.classes:
            return v.id
        if isinstance(v, ast.Attribute) and v.attr in pack.classes:
            return v.attr
        if isinstance(v, ast.Dict):       # NODE_CONFIG style {"class": X, "name": ...}
            for k, vv in zip(v.keys, v.values, strict=False):
                if isinstance(k, ast.Constant) and k.value == "class":
                    return class_of(vv)
        return None

    for m in pack.modules:
        ev = Evaluator(pack, m)
        for node in ast.walk(m.tree):
            if isinstance(node, ast.Dict):
                for k, v in zip(node.keys, node.values, strict=False):
                    if k is None:
                        continue
                    cname = class_of(v)
                    key = key_of(ev, k) if cname else None
                    if cname and isinstance(key, str):
                        reg.setdefault(key, cname)
            elif isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Subscript):
                        cname = class_of(node.value)
                        key = key_of(ev, t.slice) if cname else None
                        if cname and isinstance(key, str):
                            reg.setdefault(key, cname)
            elif isinstance(node, ast.Call) and node.args and len(node.args) >= 2:
                # register_node(Class, "Name", ...) and similar helpers
                cname = class_of(node.args[0])
                key = ev.eval(node.args[1]) if cname else None
                if cname and isinstance(key, str) and re.match(r"^[\w .+|()\-\[\]🔬]+$", key):
                    reg.setdefault(key, cname)
    return reg


# ----------------------------------------------------------------------------------------------
# Trimming to what targeting needs

COND_LIKE = re.compile(r"CONDITIONING|EMBEDS|_COND$|^COND|TUPLE|PIPE", re.I)


def norm_type(t: Any) -> str | None:
    if isinstance(t, str):
        return t
    if isinstance(t, (list, tuple)) or t is OPEN_COMBO:
        return "COMBO"
    return None


TEXTISH_NAME = re.compile(r"text|prompt|string|caption|tag|value|desc|word|style|lyric|question|instruction|"
                          r"positive|negative|title|content|message|query", re.I)
WIDGET_CODES = {"INT": "I", "FLOAT": "F", "COMBO": "C", "BOOLEAN": "B", "STRING": "S"}


def encode_input(name: str, spec: Any) -> str | None:
    """The input's compact code, or None when targeting has no use for it (a non-conditioning link)."""
    if not isinstance(spec, (tuple, list)) or not spec:
        return None
    t = norm_type(spec[0])
    if t is None:
        return None
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if t == "STRING":
        return "Sf" if opts.get("forceInput") else "Sm" if opts.get("multiline") else "S"
    if t == "INT" and ("seed" in name.lower() or opts.get("control_after_generate")):
        lo, hi = opts.get("min"), opts.get("max")
        lo = lo if isinstance(lo, int) and not isinstance(lo, bool) else ""
        hi = hi if isinstance(hi, int) and not isinstance(hi, bool) else ""
        return f"s:{lo}:{hi}"
    if t in WIDGET_CODES:
        # A number/combo/boolean only needs recording when its name could pass for a text field.
        return WIDGET_CODES[t] if TEXTISH_NAME.search(name) else None
    if t == "*" or COND_LIKE.search(t):
        return t
    return None


def relevant(enc_inputs: dict, outputs: list) -> bool:
    codes = list(enc_inputs.values())
    if any(c in ("S", "Sm", "Sf", "*") or c.startswith("s:") or COND_LIKE.search(c) for c in codes):
        return True
    return any(t in ("STRING", "*") or COND_LIKE.search(t) for t in outputs)


def trim(raw: dict) -> dict | None:
    inputs = raw["inputs"] if isinstance(raw.get("inputs"), dict) else {}
    enc: dict[str, str] = {}
    for section in ("required", "optional"):
        sec = inputs.get(section)
        if not isinstance(sec, dict):
            continue
        for name, spec in sec.items():
            if isinstance(name, str):
                e = encode_input(name, spec)
                if e:
                    enc[name] = e
    outs = raw.get("outputs")
    outputs = [norm_type(o) or "*" for o in outs] if isinstance(outs, (tuple, list)) else []
    names_raw = raw.get("names")
    names = [str(n) if isinstance(n, str) else o for n, o in zip(names_raw, outputs, strict=False)] \
        if isinstance(names_raw, (tuple, list)) and len(names_raw) == len(outputs) else outputs
    if not enc and not outputs:
        return None
    if not relevant(enc, outputs):
        return None
    d: dict[str, Any] = {"i": enc, "o": outputs}
    if names != outputs:
        d["n"] = names
    return d


def build(gitdirs: list[Path]) -> dict:
    bundled = set(json.loads(BUNDLED.read_text(encoding="utf-8"))["classes"])
    classes: dict[str, dict] = {}
    sources = []
    for gd in gitdirs:
        pack = load_pack(gd)
        reg = registrations(pack)
        found: dict[str, dict] = {}
        registered = set(reg.values())
        for m, c in pack.classes.values():
            v3 = v3_definition(pack, m, c)
            if v3 is not None:
                t3 = trim(v3[1])
                if t3:
                    found.setdefault(v3[0], t3)
        for key, cname in reg.items():
            m, c = pack.classes[cname]
            raw = v1_definition(pack, m, c)
            t = trim(raw) if raw is not None else None
            if t:
                found.setdefault(key, t)
        for cname, (m, c) in pack.classes.items():      # node classes no pattern above registered
            if cname in registered or cname in found or method(c, "INPUT_TYPES") is None:
                continue
            raw = v1_definition(pack, m, c)
            t = trim(raw) if raw is not None else None
            if t:
                found.setdefault(cname, t)
        kept = 0
        for key, d in found.items():
            if key in bundled or key in classes:
                continue
            classes[key] = d
            kept += 1
        sources.append({"repo": pack.repo, "commit": pack.commit, "classes": kept})
        print(f"{pack.repo}@{pack.commit[:8]}: {len(reg)} registered, {kept} kept", file=sys.stderr)
    return {"about": "Trimmed custom-node definitions for targeting; generated by scripts/build_pack_defs.py "
                     "from each pack's source (format in the script's docstring)",
            "sources": sorted(sources, key=lambda s: s["repo"].lower()),
            "classes": dict(sorted(classes.items()))}


def render(data: dict) -> str:
    lines = ["{", f' "about": {json.dumps(data["about"])},', ' "sources": [']
    for i, s in enumerate(data["sources"]):
        lines.append(f"  {json.dumps(s)}{',' if i < len(data['sources']) - 1 else ''}")
    lines += [" ],", ' "classes": {']
    items = list(data["classes"].items())
    for i, (name, d) in enumerate(items):
        sep = "," if i < len(items) - 1 else ""
        body = json.dumps(d, ensure_ascii=False, separators=(",", ":"))
        lines.append(f"  {json.dumps(name, ensure_ascii=False)}: {body}{sep}")
    lines += [" }", "}", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gitdirs", nargs="+", type=Path, help="git directories of the packs (newest commit is read)")
    ap.add_argument("--check", action="store_true", help="verify the committed file is up to date")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if args.out.suffix != ".json":
        ap.error("--out must be a .json file: the script writes the trimmed definitions and nothing else")
    text = render(build(args.gitdirs))
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date; run scripts/build_pack_defs.py", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}: {len(json.loads(text)['classes'])} classes, {len(text.encode()) // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
