"""COS publishing stays inside the call: a stalled upload is cut at the deadline, nothing is
retried past it, and the files that were not uploaded say why (they still go back to Dify)."""

from __future__ import annotations

import time

from comfyui_bridge.deadline import Deadline
from comfyui_bridge.models import OutputRef
from comfyui_bridge.outputs import make_file
from comfyui_bridge.publish import PUBLISH_GRACE, publish, publish_deadline
from comfyui_bridge.storage.cos import CosSettings, CosStorage

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 2000


def files(n: int):
    counters: dict[str, int] = {}
    return [make_file(OutputRef(str(i), f"f{i}.png", "", "output", "images"), PNG, "image/png", "pid", counters)
            for i in range(n)]


def test_a_stalled_upload_is_cut_at_the_deadline_and_the_rest_are_not_attempted(cos_server, cos_credentials):
    storage = CosStorage(CosSettings.from_credentials(cos_credentials))
    cos_server.control("stall_next", n=1, seconds=30)
    start = time.monotonic()
    results = publish(storage, files(3), prompt_id="pid", deadline=Deadline.after(2.0))
    seconds = time.monotonic() - start
    assert seconds < 2.0 + 2.0          # not 30 s, and not 3 tries × 30 s
    assert [r.error_code for r in results] == ["storage_timeout"] * 3
    assert "still returned to Dify" in results[0].error


def test_with_time_left_the_same_uploads_succeed(cos_server, cos_credentials):
    storage = CosStorage(CosSettings.from_credentials(cos_credentials))
    results = publish(storage, files(2), prompt_id="pid", deadline=Deadline.after(20))
    assert all(r.ok for r in results), [r.error for r in results]


def test_publishing_gets_what_is_left_of_the_run_plus_a_small_grace():
    run = Deadline.after(10)
    assert abs(publish_deadline(run).remaining() - (10 + PUBLISH_GRACE)) < 0.5
    assert abs(publish_deadline(Deadline.after(0)).remaining() - PUBLISH_GRACE) < 0.5
