"""Command line on the same engine the Dify plugin uses.

    python -m comfyui_bridge run WORKFLOW --prompt TEXT --url COMFYUI_URL --out DIR
    python -m comfyui_bridge inspect WORKFLOW [--url COMFYUI_URL]

`run` saves every output to DIR and prints one line per file; `inspect` prints, as JSON, the
decisions the tool would make (where the prompt goes, seeds, image inputs, outputs).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .client import ComfyClient
from .endpoint import parse_servers
from .engine import Engine, node_info
from .errors import BridgeError
from .models import DEFAULT_TIMEOUT, RunRequest
from .nodeinfo import NodeInfo
from .plan import inspect_workflow
from .workflow import load_workflow


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except BridgeError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m comfyui_bridge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(required=True)

    run = sub.add_parser("run", help="run a workflow and save its outputs")
    run.add_argument("workflow", type=Path)
    run.add_argument("--prompt", default="")
    run.add_argument("--negative", default="")
    run.add_argument("--url", required=True, help="ComfyUI URL (several: comma separated)")
    run.add_argument("--out", type=Path, required=True)
    run.add_argument("--prompt-node", default="")
    run.add_argument("--seed", type=int, default=None)
    run.add_argument("--override", action="append", default=[], metavar="NODE.INPUT=JSON",
                     help="set any input, e.g. --override 5.width=768 (repeatable)")
    run.add_argument("--image", action="append", default=[], type=Path, help="input image (repeatable)")
    run.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    run.add_argument("--token", default="", help="Bearer token for an auth proxy")
    run.add_argument("--header", default="", help="extra header 'Name: value'")
    run.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    run.set_defaults(func=_run)

    inspect = sub.add_parser("inspect", help="show where the prompt, seeds and images would go")
    inspect.add_argument("workflow", type=Path)
    inspect.add_argument("--url", default="", help="ComfyUI URL for node definitions (else bundled data)")
    inspect.set_defaults(func=_inspect)
    return parser


def _overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--override needs NODE.INPUT=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _run(args: argparse.Namespace) -> int:
    servers = parse_servers(args.url, args.token, args.header)
    graph = load_workflow(args.workflow.read_bytes())
    request = RunRequest(workflow=graph, prompt=args.prompt, negative_prompt=args.negative,
                         prompt_node=args.prompt_node, seed=args.seed, overrides=_overrides(args.override),
                         images=[(p.name, p.read_bytes()) for p in args.image], timeout=args.timeout)

    def progress(kind: str, data: dict) -> None:
        if not args.quiet:
            sys.stderr.write(f"[{kind}] {json.dumps(data, ensure_ascii=False)}\n")

    result = Engine(servers).run(request, on_progress=progress)
    args.out.mkdir(parents=True, exist_ok=True)
    for f in result.outputs:
        path = args.out / f.name
        path.write_bytes(f.data)
        sys.stdout.write(f"{path}\t{f.mime_type}\t{f.size} bytes\tnode {f.node_id}\n")
    for text in result.texts:
        sys.stdout.write(f"text\t{text}\n")
    for warning in result.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    if result.error:
        sys.stderr.write(f"error: {result.error.message}\n")
        return 1
    sys.stderr.write(f"done: prompt {result.prompt_id} on {result.server}, {len(result.outputs)} file(s), "
                     f"{result.timings.get('downloaded', 0):.2f} s\n")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    raw = args.workflow.read_bytes()
    if args.url:
        nodeinfo = node_info(ComfyClient(parse_servers(args.url)[0]))
    else:
        nodeinfo = NodeInfo()
    report = inspect_workflow(raw, nodeinfo)
    sys.stdout.write(json.dumps(report, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
