"""Names vulture cannot see being used (scripts/dev lint passes this file to it).

Each line is used by something outside our code: the Dify SDK (it finds our Tool/ToolProvider
subclasses and calls their hooks), urllib3/requests (they read connection classes and session
settings we set), websocket-client (it calls the frame reader methods we override), or Python
itself (a signal handler's arguments).
"""

# ruff: noqa: F821, B018
ComfyuiBizyairProvider          # provider/comfyui_bizyair.py, loaded by the SDK
_validate_credentials           # ToolProvider hook
ComfyuiWorkflowTool             # tools/*.py, loaded by the SDK
TextToImageTool
EditImageTool
ImageToVideoTool
TextToVideoTool
ListCapabilitiesTool
forget_server_modes             # server_mode.py: tests reset the process-wide memory of server modes
ComfyuiSubmitTool
ComfyuiCollectTool
ComfyuiCancelTool
ConnectionCls                   # urllib3 pools read it (guarded_http.py)
pool_classes_by_scheme          # urllib3 PoolManager reads it
trust_env                       # requests.Session settings (client.py)
proxies
verify
recv_strict                     # websocket-client's frame reader calls it (ws.py)
cont_frame                      # websocket-client's WebSocket reads it
signum                          # signal handler signature (main.py)
