"""From a finished run to Dify messages, with the real engine, the ComfyUI test server and the
COS test server: URLs beside blobs, large files as links, COS failures that lose nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from comfyui_bridge.endpoint import parse_servers
from comfyui_bridge.engine import Engine
from comfyui_bridge.models import RunRequest
from comfyui_bridge.storage.cos import CosSettings, CosStorage
from comfyui_bridge.workflow import load_workflow
from cos_fixture import COS_SK, fetch
from tools.delivery import deliver, markdown, messages, sentence, summary

WORKFLOWS = Path(__file__).parent / "fixtures/workflows"
MB = 1024 * 1024


class Recorder:
    """Stands in for the SDK's Tool: records what would be sent (the SDK only wraps these)."""

    def create_blob_message(self, blob, meta=None):
        return ("blob", blob, meta)

    def create_link_message(self, link):
        return ("link", link)

    def create_variable_message(self, name, value):
        return ("variable", name, value)

    def create_json_message(self, obj):
        return ("json", obj)

    def create_text_message(self, text):
        return ("text", text)


def run(comfy, name="empty_save_1024.json", **config):
    if config:
        comfy.config(**config)
    return Engine(parse_servers(comfy.url)).run(RunRequest(workflow=load_workflow((WORKFLOWS / name).read_bytes()),
                                                           timeout=30))


def storage(creds):
    return CosStorage(CosSettings.from_credentials(creds), backoff=0.01)


def test_each_file_gets_a_blob_and_a_url_with_the_real_etag(comfy_server, cos_server, cos_credentials):
    cos_server.make_public(cos_credentials["cos_bucket"])
    report = deliver(run(comfy_server, "batch4_save.json"), storage(cos_credentials), 15 * MB, [])
    sent = list(messages(Recorder(), report))
    blobs = [m for m in sent if m[0] == "blob"]
    assert len(blobs) == 4 and all(m[2]["mime_type"] == "image/png" for m in blobs)
    variables = {m[1]: m[2] for m in sent if m[0] == "variable"}
    assert variables["url"] == variables["urls"][0] and len(variables["urls"]) == 4
    assert variables["markdown"] == markdown(report) and variables["markdown"].count("![") == 4
    for entry, blob in zip(summary(report)["outputs"], blobs):
        assert entry["uploaded"] and len(entry["etag"]) == 32 and entry["etag"] not in entry["url"]
        assert fetch(cos_server, entry["url"]).content == blob[1]


def test_files_over_the_blob_limit_travel_as_url_only_and_the_user_is_told(comfy_server, cos_server,
                                                                           cos_credentials):
    cos_server.make_public(cos_credentials["cos_bucket"])
    report = deliver(run(comfy_server, image_bytes=2 * MB), storage(cos_credentials), 1 * MB, [])
    sent = list(messages(Recorder(), report))
    assert [m[0] for m in sent if m[0] in ("blob", "link")] == ["link"]
    (link,) = [m[1] for m in sent if m[0] == "link"]
    assert len(fetch(cos_server, link).content) >= 2 * MB
    assert "over the 1 MB blob limit: returned as a URL only" in sentence(report)


def test_files_over_the_limit_without_cos_are_named_not_sent(comfy_server):
    report = deliver(run(comfy_server, image_bytes=2 * MB), None, 1 * MB, [])
    sent = list(messages(Recorder(), report))
    assert not [m for m in sent if m[0] in ("blob", "link")]
    assert "configure COS" in sentence(report)


def test_cos_5xx_then_success_is_retried_and_uploaded(comfy_server, cos_server, cos_credentials):
    cos_server.fail_next(2, status=503)
    report = deliver(run(comfy_server), storage(cos_credentials), 15 * MB, [])
    assert [i.url != "" for i in report.items] == [True]


def test_cos_auth_failure_still_returns_the_files_and_says_why(comfy_server, cos_credentials):
    creds = dict(cos_credentials, cos_secret_key="wrongSecretKey0000000000000000000")
    report = deliver(run(comfy_server, "batch4_save.json"), storage(creds), 15 * MB, [creds["cos_secret_key"]])
    sent = list(messages(Recorder(), report))
    assert len([m for m in sent if m[0] == "blob"]) == 4
    entries = summary(report)["outputs"]
    assert all(not e["uploaded"] and "SecretKey" in e["upload_error"] for e in entries)
    text = sentence(report)
    assert "Upload to COS failed for 4 of 4 file(s)" in text and "still returned" in text
    assert "wrongSecretKey" not in repr(sent) and COS_SK not in repr(sent)


@pytest.mark.parametrize("name, status", [("runtime_error_after_partial_output.json", "partial")])
def test_a_failed_run_with_finished_outputs_is_delivered_as_partial(comfy_server, name, status):
    report = deliver(run(comfy_server, name), None, 15 * MB, [])
    sent = list(messages(Recorder(), report))
    variables = {m[1]: m[2] for m in sent if m[0] == "variable"}
    assert variables["status"] == status
    assert summary(report)["failed_node"]["class_type"] == "SplitAudioChannels"
