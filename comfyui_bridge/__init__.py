"""comfyui_bridge: run ComfyUI workflows (plain or BizyAir containers) and collect their outputs.

Dify-free. The plugin's tools, the command line (`python -m comfyui_bridge`) and the benchmarks
all go through this API:

    from comfyui_bridge import Engine, RunRequest, load_workflow, parse_servers

    engine = Engine(parse_servers("http://127.0.0.1:8188"))
    result = engine.run(RunRequest(workflow=load_workflow(raw), prompt="a red fox", timeout=120))
    result.outputs        # [OutputFile(name, mime_type, data, ...)], result.error, result.warnings

    submitted = engine.submit(request)                  # returns once ComfyUI accepted the prompt
    collected = engine.collect(submitted.job, wait=30)  # "queued" / "running" / "finished" + result
"""

from .deadline import Deadline
from .endpoint import ServerConfig, parse_servers
from .engine import Collected, Engine, Submitted
from .errors import (AuthRejected, BadResponse, BridgeError, ConnectionFailed, ExecutionFailed, InputError,
                     NotComfyUI, PromptRejected, RunLost, RunTimeout, StorageError, WorkflowFormatError)
from .jobs import Job
from .models import OutputFile, RunRequest, RunResult
from .workflow import load_workflow, parse_workflow

__version__ = "0.1.0"

__all__ = [
    "AuthRejected", "BadResponse", "BridgeError", "Collected", "ConnectionFailed", "Deadline", "Engine",
    "ExecutionFailed", "InputError", "Job", "NotComfyUI", "OutputFile", "PromptRejected", "RunLost", "RunRequest",
    "RunResult", "RunTimeout", "ServerConfig", "StorageError", "Submitted", "WorkflowFormatError", "load_workflow",
    "parse_servers", "parse_workflow",
]
