"""Several ComfyUI servers: least-queue order, skipping dead ones, naming broken ones, failover."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import requests

from comfyui_bridge import bizyair, routing
from comfyui_bridge.client import ComfyClient
from comfyui_bridge.deadline import Deadline
from comfyui_bridge.endpoint import ServerConfig
from comfyui_bridge.errors import AuthRejected, BadResponse, ConnectionFailed, PromptRejected

WORKFLOW = json.loads((Path(__file__).parent / "fixtures" / "workflows" / "empty_save_1024.json").read_text("utf-8"))


def make_client(server: ServerConfig) -> ComfyClient:
    return ComfyClient(server)


def cfg(comfy) -> ServerConfig:
    return ServerConfig(comfy.url)


def with_queue(comfy, pending: int):
    """Hold `pending` prompts in the server's queue."""
    comfy.config(paused_queue=True)
    for _ in range(pending):
        requests.post(comfy.url + "/prompt", json={"prompt": WORKFLOW}, timeout=5).raise_for_status()
    assert requests.get(comfy.url + "/prompt", timeout=5).json()["exec_info"]["queue_remaining"] == pending
    return comfy


def dead_server() -> ServerConfig:
    """An address where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return ServerConfig(f"http://127.0.0.1:{port}")


# ---- choose_server ---------------------------------------------------------------------------

def test_the_shorter_queue_goes_first(comfy_server, comfy_server_factory):
    busy = with_queue(comfy_server, 2)
    idle = comfy_server_factory()
    assert routing.choose_server([cfg(busy), cfg(idle)], make_client) == [cfg(idle), cfg(busy)]


def test_three_servers_one_down(comfy_server, comfy_server_factory):
    one = with_queue(comfy_server, 1)
    empty = comfy_server_factory()
    down = dead_server()
    assert routing.choose_server([cfg(one), down, cfg(empty)], make_client) == [cfg(empty), cfg(one)]


def test_ties_keep_the_configured_order(comfy_server, comfy_server_factory):
    a = with_queue(comfy_server, 1)
    b = with_queue(comfy_server_factory(), 1)
    c = with_queue(comfy_server_factory(), 0)
    assert routing.choose_server([cfg(a), cfg(b), cfg(c)], make_client) == [cfg(c), cfg(a), cfg(b)]
    assert routing.choose_server([cfg(b), cfg(a)], make_client) == [cfg(b), cfg(a)]


def test_a_server_too_slow_to_say_its_queue_is_skipped(comfy_server, comfy_server_factory):
    slow = comfy_server_factory()
    slow.config(route_delay={"GET /prompt": 1.5})
    probes = routing.probe_all([cfg(slow), cfg(comfy_server)], make_client, deadline=Deadline.after(0.5))
    assert [p.healthy for p in probes] == [False, True]
    chosen = routing.choose_server([cfg(slow), cfg(comfy_server)], make_client, deadline=Deadline.after(0.5))
    assert chosen == [cfg(comfy_server)]


def test_no_healthy_server_gives_an_empty_order_with_reasons():
    servers = [dead_server(), dead_server()]
    assert routing.choose_server(servers, make_client) == []
    assert all("refused" in p.error for p in routing.probe_all(servers, make_client))


def test_a_single_server_is_not_probed(comfy_server):
    before = comfy_server.stats()["requests"].get("GET /prompt", 0)
    assert routing.choose_server([cfg(comfy_server)], make_client) == [cfg(comfy_server)]
    assert comfy_server.stats()["requests"].get("GET /prompt", 0) == before


def test_probes_carry_the_servers_auth(comfy_server_factory):
    locked = comfy_server_factory(token="tok-routing-123")
    good = ServerConfig(locked.url, token="tok-routing-123")
    bad = ServerConfig(locked.url + "/api", token="nope-nope-nope")
    probes = routing.probe_all([good, bad], make_client)
    assert probes[0].queue_remaining == 0
    assert not probes[1].healthy and "nope-nope-nope" not in probes[1].error


# ---- check_all -------------------------------------------------------------------------------

def test_check_all_names_the_broken_servers(comfy_server, comfy_server_factory):
    html = comfy_server_factory()
    html.config(html_everywhere=True)
    down = dead_server()
    results = routing.check_all([cfg(comfy_server), down, cfg(html)], make_client)
    assert [ok for _, ok, _ in results] == [True, False, False]
    assert "0.8.0" in results[0][2]
    ok, en, zh = routing.summarize(results)
    assert not ok
    assert down.label in en and html.url in en and comfy_server.url not in en
    assert "2 of 3" in en and down.label in zh


def test_check_all_with_a_bizyair_diagnosis(comfy_server, comfy_server_factory):
    wrong = comfy_server_factory()
    wrong.config(bizyair_state="stub_wrongkey", bizyair_key="sk-testkey000")

    def check(client):
        diagnosis = bizyair.diagnose(client)
        return diagnosis.ok, diagnosis.message

    results = routing.check_all([cfg(comfy_server), cfg(wrong)], make_client, check=check)
    assert [ok for _, ok, _ in results] == [True, False]
    assert "BIZYAIR_API_KEY" in results[1][2] and "sk-testkey000" not in results[1][2]
    assert routing.summarize(results[:1])[0] is True


# ---- is_failover_error -------------------------------------------------------------------------

def _queue_error(server: ServerConfig) -> Exception:
    with pytest.raises(Exception) as caught:
        ComfyClient(server).queue_prompt(WORKFLOW, "pid-1", "client-1", deadline=Deadline.after(0.5))
    return caught.value


def test_refused_connections_fail_over():
    error = _queue_error(dead_server())
    assert isinstance(error, ConnectionFailed) and routing.is_failover_error(error)


def test_a_proxy_saying_comfyui_is_down_fails_over(comfy_server):
    comfy_server.config(route_status={"POST /prompt": 502})
    error = _queue_error(cfg(comfy_server))
    assert isinstance(error, BadResponse) and routing.is_failover_error(error)


@pytest.mark.parametrize("fault", [{"route_status": {"POST /prompt": 500}},
                                   {"route_delay": {"POST /prompt": 1.5}}])
def test_answers_that_may_mean_accepted_or_broken_everywhere_do_not_fail_over(comfy_server, fault):
    comfy_server.config(**fault)
    error = _queue_error(cfg(comfy_server))
    assert not routing.is_failover_error(error)


def test_validation_and_auth_errors_do_not_fail_over(comfy_server_factory):
    locked = comfy_server_factory(token="tok-failover-1")
    auth = _queue_error(ServerConfig(locked.url, token="wrong-token-9"))
    assert isinstance(auth, AuthRejected) and not routing.is_failover_error(auth)
    broken = dict(WORKFLOW)
    broken["9"] = {"class_type": "NoSuchNode", "inputs": {}}
    with pytest.raises(PromptRejected) as caught:
        ComfyClient(ServerConfig(locked.url, token="tok-failover-1")).queue_prompt(
            broken, "p", "c", deadline=Deadline.after(2))
    assert not routing.is_failover_error(caught.value)


def test_raw_transport_errors_are_classified_too():
    assert routing.is_failover_error(requests.exceptions.ConnectTimeout())
    assert routing.is_failover_error(ConnectionRefusedError())
    assert not routing.is_failover_error(requests.exceptions.ReadTimeout())
    assert not routing.is_failover_error(ValueError("x"))
