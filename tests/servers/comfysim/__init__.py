"""Pieces of the simulated ComfyUI 0.8.0 server (see ../comfyui_server.py for the entry point).

    media       file encoders (PNG with tEXt metadata, APNG, WebP, FLAC, MP3, MP4, WebM, latent)
    files       the input/output/temp folders, save-path counters, upload rules
    graph       object_info registry, POST /prompt validation, execution order, cache signatures
    nodes       simulated node classes and the pass-through for every other known class
    engine      queue, worker thread, history, cache, websocket message routing (ServerState)
    app         the aiohttp application: routes (with and without /api), ws, faults, /_test/*
"""
