from comfyui_bridge.client import ComfyClient
from comfyui_bridge.endpoint import ServerConfig


def test_proxy_settings_from_the_environment_are_honoured_once_per_server(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "comfy.lan")
    assert ComfyClient(ServerConfig("http://comfy.lan:8188")).session.proxies == {}
    far = ComfyClient(ServerConfig("http://gpu.example.com:8188")).session.proxies
    assert far.get("http") == "http://proxy.internal:3128"


def test_a_custom_ca_bundle_from_the_environment_is_used(monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/company-ca.pem")
    assert ComfyClient(ServerConfig("https://comfy.lan")).session.verify == "/etc/ssl/company-ca.pem"


def test_auth_headers_go_on_every_request_but_never_into_the_label():
    server = ServerConfig("http://h:8188", token="t0k3n-abc", extra_headers=(("X-Key", "v-123"),))
    assert server.headers() == {"Authorization": "Bearer t0k3n-abc", "X-Key": "v-123"}
    assert "t0k3n" not in server.label and set(server.secrets()) == {"t0k3n-abc", "v-123"}
