"""Local stand-ins for the services the plugin talks to (simulated ComfyUI, COS, ...)."""
