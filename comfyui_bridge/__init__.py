"""comfyui_bridge: run ComfyUI workflows (plain or BizyAir containers) and collect their outputs.

Dify-free. The plugin's tools, the command line (`python -m comfyui_bridge`) and the
benchmarks all go through `Engine.run`.
"""

__version__ = "0.1.0"
