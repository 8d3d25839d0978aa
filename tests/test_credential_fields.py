"""Dify's credential fields (text-input, secret-input) are single-line: what the help texts, the
placeholders and the README ask for must be typeable there, and must parse."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
import yaml

from comfyui_bridge.endpoint import parse_extra_header, parse_servers
from comfyui_bridge.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
CREDENTIALS = yaml.safe_load((ROOT / "provider" / "comfyui_bizyair.yaml").read_text(encoding="utf-8"))[
    "credentials_for_provider"]

# How each language says "new line" / "one per line".
MULTILINE_WORDS = {"en_US": r"new line|newline|one per line|line break", "zh_Hans": r"换行|每行",
                   "ja_JP": r"改行|1 行に", "pt_BR": r"quebra de linha|um por linha"}


@pytest.mark.parametrize("name", ["comfyui_base_url", "comfyui_extra_header"])
def test_help_texts_never_ask_for_a_line_break(name):
    conf = CREDENTIALS[name]
    assert conf["type"] in ("text-input", "secret-input")
    for lang, text in conf["help"].items():
        assert not re.search(MULTILINE_WORDS[lang], text), (name, lang, text)


def test_the_extra_header_example_of_every_help_text_parses_into_two_headers():
    for lang, text in CREDENTIALS["comfyui_extra_header"]["help"].items():
        example = re.search(r"X-Api-Key: abc\\nX-Tenant: team1", text)
        assert example, lang
        assert parse_extra_header(example.group(0)) == (("X-Api-Key", "abc"), ("X-Tenant", "team1"))


@pytest.mark.parametrize("readme", ["README.md", "readme/README_zh_Hans.md"])
def test_the_readme_extra_header_example_parses(readme):
    text = (ROOT / readme).read_text(encoding="utf-8")
    row = next(line for line in text.split("\n") if line.startswith("| `comfyui_extra_header`"))
    example = re.search(r"`(X-Api-Key: [^`]+)`", row).group(1)
    assert parse_extra_header(example) == (("X-Api-Key", "abc"), ("X-Tenant", "team1"))


def test_extra_headers_split_on_a_typed_backslash_n_and_on_real_line_breaks():
    assert parse_extra_header(r"X-Api-Key: k1\nAuthorization: Basic dXNlcjpwYXNz") == (
        ("X-Api-Key", "k1"), ("Authorization", "Basic dXNlcjpwYXNz"))
    assert parse_extra_header("X-Api-Key: k1\r\nX-Other: v") == (("X-Api-Key", "k1"), ("X-Other", "v"))
    # ";" stays inside a value: it is common in header values (cookies, parameters).
    assert parse_extra_header("Cookie: a=1; b=2") == (("Cookie", "a=1; b=2"),)
    with pytest.raises(InputError, match="Name: value"):
        parse_extra_header(r"X-Api-Key: k1\nnot a header")


def test_several_comfyui_addresses_are_comma_separated():
    servers = parse_servers("http://comfy-a.example.com:8188, comfy-b.example.com:8188/,http://comfy-a.example.com:8188")
    # scheme added where missing, trailing "/" dropped, duplicates removed
    assert [s.base_url for s in servers] == ["http://comfy-a.example.com:8188", "http://comfy-b.example.com:8188"]


def _placeholder_and_help_texts():
    for name, conf in CREDENTIALS.items():
        for key in ("placeholder", "help"):
            for lang, text in (conf.get(key) or {}).items():
                yield f"{name}.{key}.{lang}", text


def test_examples_use_reserved_names_not_private_addresses():
    """RFC 2606 names (example.com) are what the Marketplace's domain scan ignores; a private
    address such as 10.0.0.5 reads as a host the plugin contacts."""
    for where, text in _placeholder_and_help_texts():
        for host in re.findall(r"https?://([^/:\s]+)", text):
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                continue
            assert address.is_loopback, f"{where}: {host}"
    endpoint = CREDENTIALS["cos_endpoint"]["placeholder"]
    assert all("storage.example.com" in text for text in endpoint.values())
