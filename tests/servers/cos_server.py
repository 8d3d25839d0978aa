"""A local COS-compatible server for tests: moto's S3 backend plus COS behaviour.

    python tests/servers/cos_server.py [PORT]        # 0 (default) picks a free port

Prints `listening 127.0.0.1:PORT` as its first stdout line. Environment:

* COS_VERIFY_KEYS="AK:SK[:TOKEN],..."  verify COS q-sign signatures (Authorization header and
  presigned q-* query) for these keys, as qcloud_cos/cos_auth.py computes them. Unknown AK →
  403 InvalidAccessKeyId, wrong signature → 403 SignatureDoesNotMatch, outside q-sign-time →
  403 AccessDenied ("Request has expired"). A key with a TOKEN must carry it as the
  x-cos-security-token header or as a signed query parameter, else 400 ExpiredToken (our
  emulation of an expired/mismatched STS token). Unsigned requests pass through (moto applies
  bucket policies, so a public-read policy lets anonymous GETs in).
* S3_UPLOAD_PART_MIN_SIZE defaults to 1048576 here (moto's 5 MB would reject COS's 1 MB parts).

Test control (only when the Host is the bare listening address, so no bucket vhost request can
reach it): `GET /_test/fail_next?n=2&status=503[&method=PUT][&code=AccessDenied]` makes the next n bucket
requests (optionally only that method) fail with that status and a COS-style XML error;
`GET /_test/reset` clears it.

Why not stock moto_server: its dispatcher parses every Authorization header as AWS SigV4 and
answers HTTP 500 to COS's `q-sign-algorithm=sha1&...` header. Error bodies get a <Resource>
element because the COS SDK only parses errors that have Code, Message, Resource and RequestId.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import sys
import threading
import time
import uuid
from urllib.parse import parse_qs, parse_qsl, quote, unquote
from xml.sax.saxutils import escape

os.environ.setdefault("S3_UPLOAD_PART_MIN_SIZE", "1048576")   # must precede the moto import

from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

CONTROL_HOSTS = {"127.0.0.1", "localhost", "[::1]"}


def parse_keys(spec: str) -> dict[str, tuple[str, str]]:
    """'AK:SK[:TOKEN],...' → {AK: (SK, TOKEN or '')}."""
    keys = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        ak, sk, *token = item.split(":", 2)
        keys[ak] = (sk, token[0] if token else "")
    return keys


def error_body(code: str, message: str, resource: str) -> bytes:
    rid = uuid.uuid4().hex
    return (f"<?xml version='1.0' encoding='utf-8' ?>\n<Error><Code>{escape(code)}</Code>"
            f"<Message>{escape(message)}</Message><Resource>{escape(resource)}</Resource>"
            f"<RequestId>{rid}</RequestId><TraceId>{rid}</TraceId></Error>").encode()


def send_error(environ, start_response, status: int, code: str, message: str):
    _drain(environ)
    body = error_body(code, message, environ.get("HTTP_HOST", "") + environ.get("PATH_INFO", ""))
    reason = {400: "Bad Request", 403: "Forbidden", 500: "Internal Server Error",
              502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Error")
    start_response(f"{status} {reason}", [("Content-Type", "application/xml"),
                                          ("Content-Length", str(len(body)))])
    return [body]


def _drain(environ) -> None:
    # Read an unread request body so a kept-alive connection stays in sync.
    length = int(environ.get("CONTENT_LENGTH") or 0)
    stream = environ["wsgi.input"]
    while length > 0:
        chunk = stream.read(min(length, 1 << 20))
        if not chunk:
            break
        length -= len(chunk)


def _host_name(environ) -> str:
    host = environ.get("HTTP_HOST", "")
    return host.rsplit(":", 1)[0] if not host.endswith("]") else host


class Faults:
    """The /_test control routes and the failures they arm."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.remaining = 0
        self.status = 503
        self.method = ""
        self.code = ""
        self.stalls = 0
        self.stall_seconds = 0.0

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if _host_name(environ) in CONTROL_HOSTS and path.startswith("/_test/"):
            return self.control(path, parse_qs(environ.get("QUERY_STRING", "")), start_response)
        with self.lock:
            hit = self.remaining > 0 and self.method in ("", environ["REQUEST_METHOD"])
            if hit:
                self.remaining -= 1
            stall = self.stalls > 0 and environ["REQUEST_METHOD"] in ("PUT", "POST")
            if stall:
                self.stalls -= 1
        if stall:   # a network that stops moving mid-upload: nothing is answered for a while
            time.sleep(self.stall_seconds)
        if hit:
            code = self.code or ("ServiceUnavailable" if self.status == 503 else "InternalError")
            return send_error(environ, start_response, self.status, code, "injected fault")
        return self.app(environ, start_response)

    def control(self, path, query, start_response):
        with self.lock:
            if path == "/_test/fail_next":
                self.remaining = int(query.get("n", ["1"])[0])
                self.status = int(query.get("status", ["503"])[0])
                self.method = query.get("method", [""])[0].upper()
                self.code = query.get("code", [""])[0]
            elif path == "/_test/stall_next":
                self.stalls = int(query.get("n", ["1"])[0])
                self.stall_seconds = float(query.get("seconds", ["30"])[0])
            elif path == "/_test/reset":
                self.remaining = 0
                self.stalls = 0
            else:
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"unknown control route"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


class SignatureCheck:
    """Verify COS q-sign-algorithm=sha1 signatures for the configured keys."""

    def __init__(self, app, keys: dict[str, tuple[str, str]]):
        self.app = app
        self.keys = keys

    def __call__(self, environ, start_response):
        auth = environ.get("HTTP_AUTHORIZATION", "")
        query = environ.get("QUERY_STRING", "")
        presigned = False
        if auth.startswith("q-sign-algorithm="):
            fields = dict(p.split("=", 1) for p in auth.split("&") if "=" in p)
        elif "q-sign-algorithm=" in query:
            fields = {k: v for k, v in parse_qsl(query, keep_blank_values=True) if k.startswith("q-")}
            presigned = True
        else:
            return self.app(environ, start_response)   # anonymous: moto applies bucket policy
        problem = self.verify(environ, fields, presigned)
        if problem:
            return send_error(environ, start_response, *problem)
        if presigned:   # moto serves private objects only to "authorized" requests
            environ["HTTP_AUTHORIZATION"] = "q-sign-algorithm=sha1&verified-presigned-url"
        return self.app(environ, start_response)

    def verify(self, environ, f: dict[str, str], presigned: bool):
        ak = f.get("q-ak", "")
        if ak not in self.keys:
            return 403, "InvalidAccessKeyId", "The access key Id you provided does not exist in our records."
        secret_key, token = self.keys[ak]
        try:
            start, end = (int(x) for x in f.get("q-sign-time", "").split(";"))
        except ValueError:
            return 403, "AccessDenied", "q-sign-time is malformed."
        if not start <= time.time() <= end:
            return 403, "AccessDenied", "Request has expired"
        params = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        expected = self.signature(environ, f, params, secret_key)
        if not hmac.compare_digest(expected, f.get("q-signature", "")):
            return 403, "SignatureDoesNotMatch", "The request signature we calculated does not match."
        if token:
            signed_params = f.get("q-url-param-list", "").split(";")
            given = (params.get("x-cos-security-token") if presigned and "x-cos-security-token" in signed_params
                     else environ.get("HTTP_X_COS_SECURITY_TOKEN"))
            if given != token:
                return 400, "ExpiredToken", "The provided token has expired."
        return None

    @staticmethod
    def signature(environ, f: dict[str, str], params: dict[str, str], secret_key: str) -> str:
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
        path = unquote(raw.split("?", 1)[0])
        lowered = {quote(k, "-_.~").lower(): v for k, v in params.items()}
        param_str = "&".join(f"{n}={quote(lowered.get(n, ''), '-_.~')}"
                             for n in sorted(filter(None, f.get("q-url-param-list", "").split(";"))))
        header_str = "&".join(f"{n}={quote(_header(environ, n), '-_.~')}"
                              for n in sorted(filter(None, f.get("q-header-list", "").split(";"))))
        fmt = f"{environ['REQUEST_METHOD'].lower()}\n{path}\n{param_str}\n{header_str}\n"
        key_time = f.get("q-key-time", "")
        string_to_sign = f"sha1\n{f.get('q-sign-time', '')}\n{hashlib.sha1(fmt.encode()).hexdigest()}\n"
        sign_key = hmac.new(secret_key.encode(), key_time.encode(), hashlib.sha1).hexdigest()
        return hmac.new(sign_key.encode(), string_to_sign.encode(), hashlib.sha1).hexdigest()


def _header(environ, name: str) -> str:
    if name in ("content-type", "content-length"):
        return environ.get(name.upper().replace("-", "_"), "")
    return environ.get("HTTP_" + name.upper().replace("-", "_"), "")


class ErrorResource:
    """Give moto's XML errors the <Resource> element COS always sends (the SDK needs it)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None   # moto/Flask never use the legacy write()

        body_iter = self.app(environ, capture)
        status, headers = captured["status"], captured["headers"]
        if int(status.split()[0]) < 400:
            start_response(status, headers)
            return body_iter
        try:
            body = b"".join(body_iter)
        finally:
            getattr(body_iter, "close", lambda: None)()
        if b"<Error>" in body and b"<Resource>" not in body:
            resource = escape(environ.get("HTTP_HOST", "") + environ.get("PATH_INFO", "")).encode()
            if b"<RequestId>" not in body:
                body = body.replace(b"</Error>", f"<RequestId>{uuid.uuid4().hex}</RequestId></Error>".encode())
            body = body.replace(b"<RequestId>", b"<Resource>" + resource + b"</Resource><RequestId>", 1)
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]


def build_app(keys: dict[str, tuple[str, str]]):
    app = ErrorResource(create_backend_app("s3"))
    if keys:
        app = SignatureCheck(app, keys)
    return Faults(app)


def main(argv: list[str]) -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = int(argv[1]) if len(argv) > 1 else 0
    server = make_server("127.0.0.1", port, build_app(parse_keys(os.environ.get("COS_VERIFY_KEYS", ""))),
                         threaded=True, request_handler=MotoRequestHandler)
    print(f"listening 127.0.0.1:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main(sys.argv)
