import base64

import pytest

from comfyui_bridge.endpoint import ServerConfig, parse_base_url, parse_extra_header, parse_servers
from comfyui_bridge.errors import InputError


@pytest.mark.parametrize("raw, expected", [
    ("http://10.0.0.5:8188", "http://10.0.0.5:8188"),
    ("http://10.0.0.5:8188/", "http://10.0.0.5:8188"),
    ("https://comfy.example.com/api/", "https://comfy.example.com/api"),
    ("comfy:8188", "http://comfy:8188"),
    ("  http://host.docker.internal:8188  ", "http://host.docker.internal:8188"),
])
def test_base_urls_are_normalised(raw, expected):
    assert parse_base_url(raw) == expected


@pytest.mark.parametrize("raw", ["", "ftp://x", "http://", "http://host:port"])
def test_bad_base_urls_get_a_message_with_an_example(raw):
    with pytest.raises(InputError) as err:
        parse_base_url(raw)
    assert "http" in err.value.message


def test_several_servers_comma_or_newline_separated_share_auth_and_drop_duplicates():
    servers = parse_servers("http://a:8188, http://b:8188\nhttp://a:8188/", token="t0k3n", extra_header="X-Key: v1")
    assert [s.base_url for s in servers] == ["http://a:8188", "http://b:8188"]
    assert all(s.headers() == {"Authorization": "Bearer t0k3n", "X-Key": "v1"} for s in servers)


def test_extra_header_must_be_name_colon_value():
    assert parse_extra_header("X-Api-Key: abc") == (("X-Api-Key", "abc"),)
    with pytest.raises(InputError):
        parse_extra_header("just-a-value")


def test_websocket_url_follows_scheme_and_prefix():
    assert ServerConfig("https://h/api").ws_url("c1") == "wss://h/api/ws?clientId=c1"
    assert ServerConfig("http://h:8188").ws_url("c1") == "ws://h:8188/ws?clientId=c1"


def test_user_info_in_the_url_becomes_basic_auth_on_every_channel_and_never_shows():
    (server,) = parse_servers("http://us%40er:pa55word@h:8188/api/")
    assert server.base_url == "http://h:8188/api" and server.basic_auth == ("us@er", "pa55word")
    basic = base64.b64encode(b"us@er:pa55word").decode()
    # headers() is what both the HTTP requests and the websocket handshake send
    assert server.headers() == {"Authorization": f"Basic {basic}"}
    assert "pa55word" not in server.label and "pa55word" not in repr(server)
    assert {"pa55word", basic} <= set(server.secrets())


def test_user_info_and_a_token_together_are_refused_with_the_fix():
    with pytest.raises(InputError, match="Keep one"):
        parse_servers("http://u:p@h:8188", token="tok-123456")


def test_credentials_change_the_cache_identity_but_not_the_url():
    a, b = ServerConfig("http://h:8188", token="t1"), ServerConfig("http://h:8188", token="t2")
    assert a.identity()[0] == b.identity()[0] and a.identity() != b.identity()
