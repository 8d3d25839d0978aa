"""Tencent Cloud COS storage (cos-python-sdk-v5).

Design choices that matter to callers:

* One `CosStorage` per invocation, built from that invocation's credentials; the SDK client is
  made inside it, never at module level, so no tenant's keys outlive its call.
* The SDK's own retry is off (`retry=0`): its retry loop sleeps 1+2+3 s and, for body-less
  requests, can end in an `UnboundLocalError`. We retry 5xx and transport errors ourselves, a
  bounded number of times with a short backoff, and every request has a (connect, read) timeout.
* `cos_endpoint` only changes where *our* requests go (SDK IP/Port/Scheme; the bucket host stays
  in the Host header and the signature). URLs handed to users never use it: they are built from
  a production-shaped config — `https://<bucket>.cos.<region>.myqcloud.com/<key>` or the
  `cos_domain` — because `<endpoint>/<key>` loses the virtual host and no vhost server could
  route it. Set `cos_domain` when users must reach objects through another address.
* ETags are returned without their double quotes.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosClientError, CosServiceError

from ..deadline import WATCHDOG, Deadline
from ..errors import InputError, StorageError
from ..guarded_http import shared_session
from ..scrub import one_line
from . import UploadResult
from .keys import sanitize_prefix

MB = 1024 * 1024
MULTIPART_THRESHOLD = 20 * MB      # COS docs: simple upload up to 20 MB, multipart above
PART_SIZE = 20 * MB
TRIES = 3
BACKOFF = 0.3                      # seconds; attempt k waits BACKOFF * k before it starts
TIMEOUT = (5.0, 30.0)              # (connect, read) per request
MAX_URL_EXPIRES = 365 * 24 * 3600
UPLOAD_CEILING = 300.0             # an upload given no deadline (checks, benchmarks) ends within this

URL_MODES = ("public", "presigned")
REQUIRED = ("cos_region", "cos_secret_id", "cos_secret_key", "cos_bucket")
# Fields that only make sense with the required ones. cos_prefix / cos_url_mode /
# cos_url_expires are left out on purpose: Dify may send their defaults even when COS is unused.
OPTIONAL_SIGNALS = ("cos_token", "cos_domain", "cos_endpoint")

_REGION = re.compile(r"^[a-z]{2,}(?:-[a-z0-9]+)+$")
_BUCKET = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?-\d{4,}$")
_BUCKET_HOST = re.compile(r"^(?P<bucket>[a-z0-9-]+-\d+)\.cos\.(?P<region>[a-z0-9-]+)\.myqcloud\.com$")
_REGION_HOST = re.compile(r"^cos\.(?P<region>[a-z0-9-]+)\.myqcloud\.com$")
_TRANSPORT_HINTS = ("connection", "timed out", "timeout", "max retries", "reset", "refused",
                    "remotedisconnected", "broken pipe", "name or service", "nameresolution",
                    "temporary failure", "ssl", "eof occurred", "protocol")

_AUTH_ID_CODES = {"InvalidAccessKeyId", "InvalidSecretId", "AccessKeyDisabled", "UserNotExist"}
_AUTH_KEY_CODES = {"SignatureDoesNotMatch"}
_TOKEN_CODES = {"ExpiredToken", "InvalidToken", "TokenExpired", "InvalidSecurityToken"}
_CLOCK_CODES = {"RequestTimeTooSkewed"}
_MISSING_CODES = {"NoSuchBucket", "NoSuchResource"}


# ---- settings ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class CosSettings:
    """Validated COS settings. Secrets are kept out of repr()."""

    region: str
    secret_id: str = field(repr=False)
    secret_key: str = field(repr=False)
    bucket: str
    token: str = field(default="", repr=False)
    prefix: str = "comfyui/"
    url_mode: str = "public"
    url_expires: int = 3600
    domain: str = ""        # "https://cdn.example.com[/path]", scheme always present
    endpoint: str = ""      # "http://10.0.0.5:9000", scheme and port always present

    @classmethod
    def from_credentials(cls, creds: Mapping[str, Any]) -> CosSettings | None:
        """Parse Dify credentials (strings, maybe empty). None when COS is not configured at all;
        InputError naming the fields when it is only partly configured or a value is malformed."""
        val = {name: _text(creds.get(name)) for name in
               REQUIRED + OPTIONAL_SIGNALS + ("cos_prefix", "cos_url_mode", "cos_url_expires")}
        if not any(val[n] for n in REQUIRED + OPTIONAL_SIGNALS):
            return None
        missing = [n for n in REQUIRED if not val[n]]
        if missing:
            names = ", ".join(missing)
            raise InputError(
                f"The COS settings are incomplete: {names} {'is' if len(missing) == 1 else 'are'} empty. "
                "Fill in cos_region, cos_secret_id, cos_secret_key and cos_bucket, or clear every COS "
                "field to return files without uploading them.",
                message_zh=f"COS 配置不完整：{names} 为空。请填写 cos_region、cos_secret_id、cos_secret_key "
                           "和 cos_bucket，或清空所有 COS 字段以不上传文件。",
                detail={"missing": missing}, code="storage_config")
        for name in ("cos_secret_id", "cos_secret_key", "cos_token"):
            if any(ch.isspace() for ch in val[name]):
                raise _config_error(f"{name} contains spaces or line breaks; paste it again as one word.",
                                    f"{name} 中含有空格或换行，请重新粘贴。", name)
        try:
            region = _parse_region(val["cos_region"])
            return cls(region=region, secret_id=val["cos_secret_id"], secret_key=val["cos_secret_key"],
                       bucket=_parse_bucket(val["cos_bucket"], region), token=val["cos_token"],
                       prefix=sanitize_prefix(val["cos_prefix"]),
                       url_mode=_parse_url_mode(val["cos_url_mode"]),
                       url_expires=_parse_expires(val["cos_url_expires"]),
                       domain=_parse_domain(val["cos_domain"]), endpoint=_parse_endpoint(val["cos_endpoint"]))
        except InputError as exc:
            # Messages quote the bad value; a secret pasted into the wrong field must not show.
            secrets = [val[n] for n in ("cos_secret_id", "cos_secret_key", "cos_token") if val[n]]
            raise InputError(_redact(exc.message, secrets), message_zh=_redact(exc.message_zh, secrets),
                             detail=exc.detail, code=exc.code) from None

    @property
    def host(self) -> str:
        """The bucket's production host name."""
        return f"{self.bucket}.cos.{self.region}.myqcloud.com"

    @property
    def target(self) -> str:
        """Where our requests go, as shown in messages."""
        return f"{self.endpoint} (bucket host {self.host})" if self.endpoint else self.host

    def secrets(self) -> list[str]:
        """Values that must never appear in any text we produce."""
        return [s for s in (self.secret_id, self.secret_key, self.token) if s]


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text


def _config_error(message: str, message_zh: str, name: str) -> InputError:
    return InputError(message, message_zh=message_zh, detail={"field": name}, code="storage_config")


def _parse_region(raw: str) -> str:
    text = raw.lower()
    host = _REGION_HOST.match(text)
    if host:                                    # pasted "cos.ap-guangzhou.myqcloud.com"
        text = host.group("region")
    if not _REGION.match(text):
        raise _config_error(f"cos_region '{raw}' is not a COS region. Use the region id from the COS "
                            "console, for example ap-guangzhou or ap-shanghai.",
                            f"cos_region “{raw}” 不是有效的 COS 地域，请填写控制台中的地域代码，例如 ap-guangzhou。",
                            "cos_region")
    return text


def _parse_bucket(raw: str, region: str) -> str:
    text = raw.lower()
    if "://" in text or ".myqcloud.com" in text:   # pasted the bucket's URL or host
        host = urlsplit(text if "://" in text else "https://" + text).hostname or ""
        found = _BUCKET_HOST.match(host)
        if not found:
            raise _config_error(f"cos_bucket '{raw}' is not a bucket name. Enter the name with its APPID, "
                                "for example images-1250000000.",
                                f"cos_bucket “{raw}” 不是存储桶名称，请填写带 APPID 的名称，例如 images-1250000000。",
                                "cos_bucket")
        if found.group("region") != region:
            raise _config_error(f"cos_bucket points at region {found.group('region')} but cos_region is "
                                f"{region}. Make them match.",
                                f"cos_bucket 所在地域为 {found.group('region')}，但 cos_region 为 {region}，请保持一致。",
                                "cos_bucket")
        text = found.group("bucket")
    if not _BUCKET.match(text):
        raise _config_error(f"cos_bucket '{raw}' must be the full bucket name including the APPID "
                            "(name-appid, for example images-1250000000).",
                            f"cos_bucket “{raw}” 必须是包含 APPID 的完整存储桶名称（例如 images-1250000000）。",
                            "cos_bucket")
    return text


def _parse_url_mode(raw: str) -> str:
    mode = raw.lower() or "public"
    if mode not in URL_MODES:
        raise _config_error(f"cos_url_mode must be 'public' or 'presigned', not '{raw}'.",
                            f"cos_url_mode 只能是 public 或 presigned，而不是“{raw}”。", "cos_url_mode")
    return mode


def _parse_expires(raw: str) -> int:
    if not raw:
        return 3600
    try:
        seconds = int(raw)
    except ValueError:
        seconds = 0
    if not 1 <= seconds <= MAX_URL_EXPIRES:
        raise _config_error(f"cos_url_expires must be a whole number of seconds between 1 and "
                            f"{MAX_URL_EXPIRES} (for example 3600), not '{raw}'.",
                            f"cos_url_expires 必须是 1 到 {MAX_URL_EXPIRES} 之间的整数秒（例如 3600），而不是“{raw}”。",
                            "cos_url_expires")
    return seconds


def _split_url(raw: str, name: str, default_scheme: str):
    text = raw if "://" in raw else f"{default_scheme}://{raw}"
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (parts.scheme not in ("http", "https") or not parts.hostname or port == -1
            or parts.username or parts.password or parts.query or parts.fragment):
        raise _config_error(f"{name} '{raw}' is not a valid address. Use a form like "
                            f"{'cdn.example.com' if name == 'cos_domain' else 'http://storage.example.com:9000'}.",
                            f"{name} “{raw}” 不是有效的地址。", name)
    return parts, port


def _parse_domain(raw: str) -> str:
    if not raw:
        return ""
    parts, port = _split_url(raw, "cos_domain", "https")
    netloc = parts.hostname + (f":{port}" if port else "")
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def _parse_endpoint(raw: str) -> str:
    if not raw:
        return ""
    parts, port = _split_url(raw, "cos_endpoint", "http")
    if parts.path.strip("/"):
        raise _config_error(f"cos_endpoint '{raw}' must be only scheme, host and port "
                            "(for example http://storage.example.com:9000), without a path.",
                            f"cos_endpoint “{raw}” 只能包含协议、主机和端口，不能带路径。", "cos_endpoint")
    port = port or (443 if parts.scheme == "https" else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"


# ---- SDK clients ------------------------------------------------------------------------------

def transport_config(settings: CosSettings, timeout=TIMEOUT) -> CosConfig:
    """The config our requests use: production host, or IP/Port/Scheme for cos_endpoint."""
    extra: dict[str, Any] = {}
    if settings.endpoint:
        parts = urlsplit(settings.endpoint)
        hostname = parts.hostname or ""
        host = f"[{hostname}]" if ":" in hostname else hostname   # IPv6 literal
        extra = {"IP": host, "Port": parts.port, "Scheme": parts.scheme}
    return CosConfig(Region=settings.region, SecretId=settings.secret_id, SecretKey=settings.secret_key,
                     Token=settings.token or None, Timeout=timeout, **extra)


def url_config(settings: CosSettings) -> CosConfig:
    """A production-shaped config for URLs (never IP/Port): the bucket host or cos_domain."""
    extra: dict[str, Any] = {"Scheme": "https"}
    if settings.domain:
        parts = urlsplit(settings.domain)
        extra = {"Scheme": parts.scheme, "Domain": parts.netloc + parts.path}
    return CosConfig(Region=settings.region, SecretId=settings.secret_id, SecretKey=settings.secret_key,
                     Token=settings.token or None, **extra)


def header(headers: Mapping[str, Any], name: str) -> str:
    """Case-insensitive header lookup: COS sends `ETag`, other servers may send `etag`."""
    low = name.lower()
    for k, v in headers.items():
        if str(k).lower() == low:
            return str(v)
    return ""


def unquote_etag(value: str) -> str:
    return value.strip().strip('"')


# ---- storage ----------------------------------------------------------------------------------

class CosStorage:
    """COS implementation of `Storage`. Build one per invocation."""

    def __init__(self, settings: CosSettings, *, tries: int = TRIES, backoff: float = BACKOFF,
                 timeout=TIMEOUT, part_size: int = PART_SIZE,
                 multipart_threshold: int = MULTIPART_THRESHOLD,
                 sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.tries = max(1, tries)
        self.backoff = backoff
        self.part_size = part_size
        self.multipart_threshold = multipart_threshold
        self._sleep = sleep
        self._deadline: Deadline | None = None   # the deadline of the upload in progress (retries stop there)
        try:
            # Our guarded session: an upload stalled by the network is cut at the call's deadline.
            self._client = CosS3Client(transport_config(settings, timeout), retry=0, session=shared_session())
            self._url_client = CosS3Client(url_config(settings), retry=0, session=shared_session())
        except CosClientError as exc:
            raise StorageError(f"The COS settings could not be used: {self._why(exc)}",
                               message_zh="COS 配置无法使用。", code="storage_config") from None

    @property
    def prefix(self) -> str:
        return self.settings.prefix

    # -- validation --

    def check(self) -> None:
        """HeadBucket on the configured bucket (never ListBuckets: bucket-scoped keys must pass)."""
        try:
            self._call(self._client.head_bucket, Bucket=self.settings.bucket)
        except CosServiceError as exc:
            if 400 <= exc.get_status_code() < 500 and exc.get_status_code() != 404 and _code(exc) == "Unknown":
                raise self._explain_bodyless_head(exc) from None
            raise self._explain(exc, "HeadBucket") from None
        except Exception as exc:  # CosClientError and SDK surprises alike
            raise self._explain(exc, "HeadBucket") from None

    def _explain_bodyless_head(self, head: CosServiceError) -> StorageError:
        # A HEAD error has no body, so bad SecretId, bad SecretKey, a stale token and a missing
        # permission look the same. A signed GET of a key that does not exist answers with an XML
        # error whose code tells them apart.
        probe = f"{self.settings.prefix}.comfyui-bridge-check-{uuid.uuid4().hex}"
        try:
            resp = self._call(self._client.get_object, Bucket=self.settings.bucket, Key=probe,
                              Range="bytes=0-0")
            resp["Body"].get_raw_stream().close()
        except CosServiceError as exc:
            code = _code(exc)
            if code in _AUTH_ID_CODES | _AUTH_KEY_CODES | _TOKEN_CODES | _CLOCK_CODES:
                return self._explain(exc, "HeadBucket")
            if head.get_status_code() == 403 and (code in ("NoSuchKey", "NoSuchResource")
                                                  or exc.get_status_code() == 404):
                return self._denied("HeadBucket", "cos:HeadBucket")   # the keys work, HEAD is not allowed
        except Exception:
            pass
        return self._explain(head, "HeadBucket")

    # -- upload --

    def upload(self, key: str, data: bytes, mime_type: str, *, attachment: bool = False,
               deadline: Deadline | None = None) -> UploadResult:
        """Store `data` under `key`, within `deadline` (retries included): a stalled upload is cut
        when it passes, and nothing is retried after it."""
        deadline = deadline or Deadline.after(UPLOAD_CEILING)
        if deadline.expired():
            raise self._out_of_time(key)
        self._deadline = deadline
        try:
            with WATCHDOG.guard(deadline) as guard:
                try:
                    return self._upload(key, data, mime_type, attachment)
                except StorageError:
                    if guard.tripped or deadline.expired():
                        raise self._out_of_time(key) from None
                    raise
        finally:
            self._deadline = None

    def _out_of_time(self, key: str) -> StorageError:
        return StorageError(
            "The upload to COS did not finish within the time left for this call; the file is still "
            "returned to Dify. Raise the tool's timeout, or check the network to COS.",
            message_zh="上传到 COS 未能在本次调用剩余的时间内完成，文件仍会返回给 Dify。请调大工具的超时时间，或检查到 COS 的网络。",
            detail={"key": key}, code="storage_timeout")

    def _upload(self, key: str, data: bytes, mime_type: str, attachment: bool) -> UploadResult:
        view = memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        size = view.nbytes
        mime_type = mime_type or "application/octet-stream"
        headers = {"ContentType": mime_type}
        if attachment:
            headers["ContentDisposition"] = "attachment"
        try:
            if size > self.multipart_threshold:
                etag = self._multipart(key, view, headers)
            else:
                # bytes go to the socket as they are (no copy); other buffers as a memoryview
                body = data if isinstance(data, bytes) else view
                resp = self._call(self._client.put_object, Bucket=self.settings.bucket, Key=key,
                                  Body=body, **headers)
                etag = header(resp, "ETag")
        except StorageError:
            raise
        except Exception as exc:
            raise self._explain(exc, "PutObject", key) from None
        return UploadResult(key=key, url=self.url_for(key), etag=unquote_etag(etag), size=size,
                            mime_type=mime_type)

    def _multipart(self, key: str, view: memoryview, headers: dict[str, str]) -> str:
        bucket = self.settings.bucket
        created = self._call(self._client.create_multipart_upload, Bucket=bucket, Key=key, **headers)
        upload_id = created["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, view.nbytes, self.part_size), start=1):
                # a memoryview slice shares the caller's buffer: no per-part copy
                resp = self._call(self._client.upload_part, Bucket=bucket, Key=key,
                                  Body=view[start:start + self.part_size], PartNumber=number,
                                  UploadId=upload_id)
                parts.append({"PartNumber": number, "ETag": header(resp, "ETag")})
            done = self._call(self._client.complete_multipart_upload, Bucket=bucket, Key=key,
                              UploadId=upload_id, MultipartUpload={"Part": parts})
        except BaseException:
            try:    # best effort: do not leave billed, invisible parts behind
                self._client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            except Exception:
                pass
            raise
        return header(done, "ETag")

    # -- URLs --

    def url_for(self, key: str) -> str:
        """Public: `https://<bucket>.cos.<region>.myqcloud.com/<quoted key>` or `<cos_domain>/<quoted
        key>`. Presigned: the same address with a GET signature valid for `url_expires` seconds
        (and the STS token as x-cos-security-token when one is set)."""
        bucket = self.settings.bucket
        try:
            if self.settings.url_mode == "public":
                return self._url_client.get_object_url(Bucket=bucket, Key=key)
            params = {"x-cos-security-token": self.settings.token} if self.settings.token else {}
            return self._url_client.get_presigned_url(Bucket=bucket, Key=key, Method="GET",
                                                      Expired=self.settings.url_expires, Params=params)
        except Exception as exc:
            raise StorageError(f"Could not build a URL for {key}: {self._why(exc)}",
                               message_zh=f"无法为 {key} 生成链接。", code="storage_failed") from None

    # -- plumbing --

    def _call(self, fn: Callable[..., Any], **kwargs) -> Any:
        """Call the SDK; retry 5xx and transport errors up to `tries` times with a short backoff."""
        for attempt in range(1, self.tries + 1):
            last = attempt == self.tries or (self._deadline is not None and
                                             self._deadline.remaining() < self.backoff * attempt + 0.5)
            try:
                return fn(**kwargs)
            except CosServiceError as exc:
                if exc.get_status_code() < 500 or last:
                    raise
            except CosClientError as exc:
                if not _is_transport(exc) or last:
                    raise
            self._sleep(self.backoff * attempt)
        raise AssertionError("unreachable")

    def _why(self, exc: BaseException) -> str:
        return one_line(exc, 200, secrets=self.settings.secrets())

    def _denied(self, action: str, permission: str = "") -> StorageError:
        s = self.settings
        need = permission or ("cos:HeadBucket and cos:PutObject" if action == "HeadBucket"
                              else f"cos:{action}")
        extra = " (plus cos:GetObject if presigned URLs should open)" if s.url_mode == "presigned" else ""
        return StorageError(
            f"The COS key is valid but is not allowed to use bucket {s.bucket} (AccessDenied): grant it "
            f"{need} on that bucket{extra} in the CAM console.",
            message_zh=f"COS 密钥有效，但无权访问存储桶 {s.bucket}（AccessDenied）：请在访问管理（CAM）中为该密钥授予 "
                       f"{need} 权限。",
            detail={"action": action, "bucket": s.bucket}, code="storage_forbidden")

    def _explain(self, exc: BaseException, action: str, key: str = "") -> StorageError:
        """Turn an SDK exception into a StorageError that says what to fix (no secrets)."""
        s = self.settings
        detail: dict[str, Any] = {"action": action, "bucket": s.bucket, "region": s.region}
        if key:
            detail["key"] = key
        if isinstance(exc, CosServiceError):
            status, code = exc.get_status_code(), _code(exc)
            detail.update(status=status, error_code=code)
            request_id = _safe(exc.get_request_id)
            if request_id and request_id != "Unknown":
                detail["request_id"] = request_id
            return self._explain_service(status, code, _safe(exc.get_error_msg), action, detail)
        if isinstance(exc, CosClientError):
            reason = _transport_reason(one_line(exc, 2000, secrets=s.secrets()))
            hint = "cos_endpoint and the network" if s.endpoint else "cos_region and the network/proxy of the plugin host"
            return StorageError(
                f"Could not reach COS at {s.target}: {reason}. Check {hint}.",
                message_zh=f"无法连接 COS（{s.target}）：{reason}。请检查{'cos_endpoint' if s.endpoint else 'cos_region'}"
                           "以及插件所在主机的网络。",
                detail=detail, code="storage_unreachable")
        return StorageError(f"COS {action} failed: {type(exc).__name__}: {self._why(exc)}",
                            message_zh=f"COS 操作 {action} 失败。", detail=detail, code="storage_failed")

    def _explain_service(self, status: int, code: str, msg: str, action: str,
                         detail: dict[str, Any]) -> StorageError:
        s = self.settings
        if status == 404 and (code in _MISSING_CODES or action == "HeadBucket"):
            return StorageError(
                f"COS bucket {s.bucket} not found in region {s.region}: check the bucket name "
                "(name-appid) and region in the COS console.",
                message_zh=f"在地域 {s.region} 中找不到 COS 存储桶 {s.bucket}：请在 COS 控制台核对存储桶名称（名称-APPID）和地域。",
                detail=detail, code="storage_bucket_missing")
        if code in _TOKEN_CODES or (code in _AUTH_ID_CODES and s.token):
            return StorageError(
                f"COS rejected the temporary credentials ({code}): the STS token in cos_token has "
                "probably expired or does not belong to this SecretId. Get a fresh SecretId, SecretKey "
                "and token together.",
                message_zh=f"COS 拒绝了临时密钥（{code}）：cos_token 可能已过期或与 SecretId 不匹配，请同时重新获取 "
                           "SecretId、SecretKey 和 Token。",
                detail=detail, code="storage_auth")
        if code in _AUTH_ID_CODES:
            return StorageError(
                f"COS does not know this SecretId ({code}): check cos_secret_id — copy it again from "
                "the CAM API key page; the key may have been deleted or disabled.",
                message_zh=f"COS 无法识别该 SecretId（{code}）：请到访问管理 API 密钥页面重新复制 cos_secret_id，该密钥可能已被删除或禁用。",
                detail=detail, code="storage_auth")
        if code in _AUTH_KEY_CODES:
            return StorageError(
                f"COS says the request signature does not match ({code}): cos_secret_key is wrong for "
                "this SecretId. Paste the SecretKey that belongs to it again.",
                message_zh=f"COS 签名不匹配（{code}）：cos_secret_key 与该 SecretId 不对应，请重新粘贴对应的 SecretKey。",
                detail=detail, code="storage_auth")
        if code in _CLOCK_CODES or (status == 403 and "expire" in msg.lower()):
            return StorageError(
                f"COS says the request time is wrong ({code}): the clock of the machine running the "
                "plugin is probably off. Synchronise it (NTP) and try again.",
                message_zh=f"COS 认为请求时间不正确（{code}）：运行插件的机器时钟可能不准，请同步时间后重试。",
                detail=detail, code="storage_auth")
        if status == 403 or code == "AccessDenied":
            return self._denied(action)
        if status >= 500:
            return StorageError(
                f"COS answered HTTP {status} ({code}) to {action} {self.tries} times: the service is "
                "having trouble. Try again later.",
                message_zh=f"COS 连续 {self.tries} 次返回 HTTP {status}（{code}），服务暂时异常，请稍后重试。",
                detail=detail, code="storage_unavailable")
        text = one_line(msg, 200, secrets=s.secrets())
        return StorageError(
            f"COS refused {action} ({code}, HTTP {status})" + (f": {text}" if text and text != "Unknown" else "."),
            message_zh=f"COS 拒绝了操作 {action}（{code}，HTTP {status}）。",
            detail=detail, code="storage_failed")


def _safe(getter: Callable[[], Any]) -> str:
    # The SDK's getters raise KeyError on bodies it could not parse (empty, JSON without 'code').
    try:
        value = getter()
    except Exception:
        return ""
    return "" if value is None else str(value)


def _code(exc: CosServiceError) -> str:
    return _safe(exc.get_error_code) or "Unknown"


def _is_transport(exc: CosClientError) -> bool:
    text = str(exc).lower()
    return any(h in text for h in _TRANSPORT_HINTS)


def _transport_reason(text: str) -> str:
    low = text.lower()
    if "refused" in low:
        return "connection refused"
    if "timed out" in low or "timeout" in low:
        return "no answer in time (timeout)"
    if "name or service" in low or "nameresolution" in low or "temporary failure in name" in low:
        return "the host name could not be resolved"
    if "ssl" in low or "certificate" in low:
        return f"TLS failed ({text[:160]})"
    return text[:200]
