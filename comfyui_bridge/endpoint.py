"""Where a ComfyUI server is and how to authenticate to it (parsed from the provider credentials)."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

from .errors import InputError

_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


@dataclass(frozen=True)
class ServerConfig:
    """One ComfyUI server. `base_url` has no trailing slash and keeps an `/api` prefix if given."""

    base_url: str                              # never holds user:password (see basic_auth)
    token: str = field(default="", repr=False)
    extra_headers: tuple[tuple[str, str], ...] = field(default_factory=tuple, repr=False)
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)   # from http://user:pass@host

    @property
    def label(self) -> str:
        """The server as users know it, without credentials or query."""
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        return urlunsplit((parts.scheme, host + (f":{parts.port}" if parts.port else ""), parts.path, "", ""))

    def url(self, path: str) -> str:
        return self.base_url + path

    def ws_url(self, client_id: str) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, parts.netloc, parts.path + "/ws", f"clientId={client_id}", ""))

    def headers(self) -> dict[str, str]:
        """Auth headers for every HTTP request and the websocket handshake alike."""
        out: dict[str, str] = {}
        if self.token:
            out["Authorization"] = f"Bearer {self.token}"
        elif self.basic_auth:
            out["Authorization"] = f"Basic {_basic(*self.basic_auth)}"
        for name, value in self.extra_headers:
            out[name] = value
        return out

    def secrets(self) -> list[str]:
        """Values that must never appear in any text we produce."""
        vals = [self.token] if self.token else []
        vals += [v for _, v in self.extra_headers if v]
        if self.basic_auth:
            vals += [v for v in (self.basic_auth[1], _basic(*self.basic_auth)) if v]
        return vals

    def identity(self) -> tuple[str, str]:
        """(base URL, a digest of the credentials): what a per-server cache is keyed by, so two
        tenants with different tokens on one gateway URL never share an entry."""
        creds = repr((self.token, self.extra_headers, self.basic_auth)).encode()
        return self.base_url, hashlib.sha256(creds).hexdigest()[:16]


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def parse_base_url(raw: str) -> str:
    text = (raw or "").strip()
    if not text:
        raise InputError("The ComfyUI URL is empty. Enter the address of your ComfyUI server, "
                         "for example http://127.0.0.1:8188.",
                         message_zh="ComfyUI 地址为空。请填写 ComfyUI 服务器地址，例如 http://127.0.0.1:8188。")
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"'{raw.strip()}' is not an http(s) URL. Use a form like http://host:8188.",
                         message_zh=f"“{raw.strip()}” 不是 http(s) 地址，请使用 http://主机:8188 这样的形式。")
    try:
        _ = parts.port   # reading it raises ValueError for a port that is not a number (or out of range)
    except ValueError:
        raise InputError(f"The port in '{raw.strip()}' is not a number.",
                         message_zh=f"“{raw.strip()}” 中的端口不是数字。") from None
    path = parts.path.rstrip("/")
    # Users paste the UI address with a trailing "/" or "/api"; both are the same API root.
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def split_user_info(url: str) -> tuple[str, tuple[str, str] | None]:
    """(URL without `user:password@`, (user, password) or None)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    netloc = parts.netloc.rsplit("@", 1)[1]
    return (urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)),
            (unquote(parts.username or ""), unquote(parts.password or "")))


def parse_extra_header(raw: str) -> tuple[tuple[str, str], ...]:
    """'Name: value' pairs → header pairs. Rejects malformed lines with a clear message. Several
    headers are separated by `\\n` typed as two characters (Dify's credential fields are single-line)
    or by real line breaks."""
    pairs = []
    for line in (raw or "").replace("\\n", "\n").splitlines():
        line = line.strip()
        if not line:
            continue
        name, sep, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not _HEADER_NAME.match(name) or not value:
            raise InputError("The extra header must look like 'Name: value', for example "
                             "'X-Api-Key: abc123'.",
                             message_zh="额外请求头的格式应为“名称: 值”，例如“X-Api-Key: abc123”。")
        pairs.append((name, value))
    return tuple(pairs)


def parse_servers(base_urls: str, token: str = "", extra_header: str = "") -> list[ServerConfig]:
    """One or several servers (comma or newline separated), sharing the same auth."""
    headers = parse_extra_header(extra_header)
    items = [u for u in re.split(r"[,\n\r]+", base_urls or "") if u.strip()]
    if not items:
        parse_base_url("")  # raises the "empty" message
    token = (token or "").strip()
    servers: list[ServerConfig] = []
    for item in items:
        url, basic = split_user_info(parse_base_url(item))
        if basic and token:
            raise InputError(
                f"{ServerConfig(url).label} has a user name and password in its URL and a ComfyUI token is set: "
                "both would go in the Authorization header. Keep one: remove user:password@ from the URL, or "
                "clear the token.",
                message_zh="服务器地址中带有用户名和密码，同时又设置了 ComfyUI Token：两者都要使用 Authorization 头。"
                           "请只保留一种：删除地址中的 user:password@，或清空 Token。")
        server = ServerConfig(url, token, headers, basic)
        if all(s.base_url != url for s in servers):
            servers.append(server)
    return servers
