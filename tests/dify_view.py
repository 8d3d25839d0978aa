"""What Dify's tool node makes of the messages a tool yields, for tests that call a tool in-process
with a fake (messages as tuples: ("variable", name, value), ("stream", name, chunk), ...)."""

from __future__ import annotations

from typing import Any


class Recorder:
    """Stands in for the SDK's Tool: records what would be sent (the SDK only wraps these)."""

    def create_blob_message(self, blob, meta=None):
        return ("blob", blob, meta)

    def create_link_message(self, link):
        return ("link", link)

    def create_variable_message(self, name, value):
        return ("variable", name, value)

    def create_stream_variable_message(self, name, value):
        return ("stream", name, value)

    def create_json_message(self, obj):
        return ("json", obj)

    def create_text_message(self, text):
        return ("text", text)


def variables(sent) -> dict[str, Any]:
    """Like Dify's tool node: the last value wins, streamed string pieces are concatenated."""
    out: dict[str, Any] = {}
    for m in sent:
        if m[0] == "variable":
            out[m[1]] = m[2]
        elif m[0] == "stream":
            out[m[1]] = (out.get(m[1]) or "") + m[2]
    return out
