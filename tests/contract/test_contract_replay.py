"""Replay contract (every CI run, no ComfyUI): every example app, run by graphon (Dify's workflow
engine), its tool node answered with a recording of what the built plugin said in the live
test. Fails, naming the command to run, when a recording is missing or was made with another
build of the plugin."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import pytest
import yaml
from cases import (
    DOWN_URL,
    QUERY,
    Case,
    all_cases,
    check,
    check_turn,
    credentials,
    example_files,
    start_inputs,
    tool_node_ids,
)
from cos_fixture import COS_AK, COS_APPID, COS_REGION, COS_SK
from dify_host import ChatTurn, DifyHost
from plugin_route import Recording, ReplayInvoker, current_identifier

# Same credential names as cos_fixture.cos_credentials (the live run); values are never used.
REPLAY_COS = {"cos_region": COS_REGION, "cos_secret_id": COS_AK, "cos_secret_key": COS_SK,
              "cos_bucket": f"replay-{COS_APPID}", "cos_token": "", "cos_prefix": "", "cos_url_mode": "public",
              "cos_url_expires": "", "cos_domain": "", "cos_endpoint": "http://127.0.0.1:9"}


@pytest.fixture(scope="module")
def identifier() -> str:
    return current_identifier()


@contextlib.contextmanager
def replayed(case: Case, dsl: str, identifier: str) -> Iterator[tuple[DifyHost, ChatTurn]]:
    """Run `dsl` for `case` with the case's recording answering the tool node."""
    recording = Recording.load(case.example, case.name)
    recording.check_fresh(identifier)
    invoker = ReplayInvoker(recording)
    with DifyHost() as host:
        # Only the names of the credentials must match the recording; nothing is contacted.
        creds = credentials(DOWN_URL, REPLAY_COS if case.cos else None)
        turn = host.run_chat(dsl, invoker=invoker, credentials=creds, start_inputs=start_inputs(dsl, host), query=QUERY)
        assert invoker.calls == len(recording.exchanges), "the app made fewer tool calls than recorded"
        yield host, turn


@pytest.mark.parametrize("case", all_cases(), ids=lambda c: c.id)
def test_example_app_replay(case: Case, identifier):
    with replayed(case, case.dsl(), identifier) as (host, turn):
        check(case, turn, host)


def _with_answer(dsl: str, template: str) -> str:
    doc = yaml.safe_load(dsl)
    (tool_id,) = tool_node_ids(dsl)
    for node in doc["workflow"]["graph"]["nodes"]:
        if node["data"].get("type") == "answer":
            node["data"]["answer"] = template.replace("TOOL", tool_id)
    return yaml.safe_dump(doc, allow_unicode=True)


def test_an_answer_showing_only_markdown_is_empty_without_cos(identifier):
    """The chatflow as first shipped: Answer = {{#tool.markdown#}}. Without COS `markdown` is
    empty, and the Answer never references the files: the user sees nothing."""
    case = Case(example_files()[0], "no_cos")
    with replayed(case, _with_answer(case.dsl(), "{{#TOOL.markdown#}}"), identifier) as (host, turn):
        assert turn.succeeded and turn.files == []
        with pytest.raises(AssertionError, match=re.escape("the reply is empty")):
            check_turn(case, turn, host)


def test_an_answer_showing_markdown_shows_the_cos_image_because_it_is_streamed(identifier):
    """With COS, `markdown` holds the image line. Dify's tool node ends the stream of every variable
    sent whole with an empty chunk (the Answer would show nothing); the plugin streams its text
    variables, so the Answer shows the link. It still misses the attached file the contract asks for."""
    case = Case(example_files()[0], "cos")
    with replayed(case, _with_answer(case.dsl(), "{{#TOOL.markdown#}}"), identifier) as (host, turn):
        assert turn.succeeded and turn.files == []
        assert re.fullmatch(r"!\[[^\]]+_9_1\.png\]\(https://[^)]+\.myqcloud\.com/comfyui/[^)]+_9_1\.png\)",
                            turn.answer.strip()), turn.answer
        with pytest.raises(AssertionError, match=re.escape("the reply carries 0 file(s), expected 1")):
            check_turn(case, turn, host)
