"""COS storage: settings, keys, URLs, uploads, validation messages and publishing.

Server tests run against the real local server (tests/servers/cos_server.py) with COS signature
verification on, through the unmodified cos-python-sdk-v5; `cos_endpoint` points our requests at
it while URLs stay production-shaped and are fetched through the loopback with their Host.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tracemalloc
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from cos_fixture import COS_AK, COS_REGION, COS_SECRETS, COS_SK, COS_TMP_AK, COS_TMP_SK, COS_TOKEN, fetch

from comfyui_bridge.errors import InputError, StorageError
from comfyui_bridge.models import OutputFile, OutputRef
from comfyui_bridge.outputs import make_file
from comfyui_bridge.publish import plan_keys, publish
from comfyui_bridge.storage import Storage
from comfyui_bridge.storage.cos import CosSettings, CosStorage
from comfyui_bridge.storage.keys import extension_for, object_key, sanitize_prefix

WRONG_SK = "wrongSecretKeyValue1234567890abcdef"
WRONG_AK = "AKIDwrongSecretIdValue1234567890ab"
WRONG_TOKEN = "wrongStsToken9z8y7x6w5v4u3t2s1r0q"
ALL_SECRETS = COS_SECRETS + (WRONG_SK, WRONG_AK, WRONG_TOKEN)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
WHEN = datetime(2025, 3, 4, 23, 59, tzinfo=UTC)


def assert_clean(*texts: object) -> None:
    """No credential value may appear in anything we show or return as an error."""
    for text in texts:
        for secret in ALL_SECRETS:
            assert secret not in str(text), "a secret leaked into a message"


def assert_clean_error(err: StorageError | InputError) -> None:
    assert_clean(err.message, err.message_zh, err.to_dict(), str(err))


class Sleeps(list):
    """Records backoff sleeps instead of sleeping: retries are counted, not timed."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def storage_for(creds: dict[str, str], **kw) -> tuple[CosStorage, Sleeps]:
    sleeps = Sleeps()
    settings = CosSettings.from_credentials(creds)
    assert settings is not None
    return CosStorage(settings, sleep=sleeps, **kw), sleeps


def output(node: str, data: bytes = PNG, mime: str = "image/png", name: str = "") -> OutputFile:
    ref = OutputRef(node_id=node, filename="ComfyUI_00001_.png", subfolder="user dir", type="output",
                    listed_under="images")
    return OutputFile(ref=ref, data=data, mime_type=mime, kind="image",
                      name=name or f"p1_{node}_1.{extension_for(mime)}")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- keys -------------------------------------------------------------------------------------

def test_key_is_built_from_our_ids_under_a_dated_prefix():
    assert object_key("comfyui/", "3f2a-77", "9", 0, "png", WHEN) == "comfyui/2025/03/04/3f2a-77_9_0.png"
    # the date is UTC whatever the caller's zone
    local = datetime(2025, 3, 5, 1, 0).astimezone()
    assert object_key("", "p", "1", 2, "webp", local).count("/") == 3


@pytest.mark.parametrize("raw, expected", [
    ("", "comfyui/"),
    (None, "comfyui/"),
    ("/", ""),
    ("/a/../b//c", "a/b/c/"),
    ("..\\..\\etc", "etc/"),
    ("  out put ", "out-put/"),
    ("media/comfy/", "media/comfy/"),
    ("./x/./y", "x/y/"),
])
def test_prefix_is_sanitized(raw, expected):
    assert sanitize_prefix(raw) == expected


def test_node_ids_and_extensions_are_reduced_to_safe_characters():
    assert extension_for("image/png") == "png"
    assert extension_for("image/jpeg") == "jpg"
    assert extension_for("video/mp4", "p_9_0.MP4") == "mp4"
    assert extension_for("application/octet-stream", "p_9_0.latent") == "latent"
    assert extension_for("application/x-unknown-thing") == "bin"
    assert extension_for("image/png", "weird.p/n g") == "png"     # our name's ext is not sane: use mime
    key = object_key("comfyui/", "p", "a b/../c", 1, "../PNG", WHEN)
    assert key.startswith("comfyui/2025/03/04/p_a_b_c.") and key.endswith("_1.png") and key.count("/") == 4


@pytest.mark.parametrize("mime, name", [("text/html", "p_9_1.html"), ("image/svg+xml", "p_9_1.svg"),
                                        ("application/javascript", "x.js"), ("text/html", "")])
def test_keys_never_get_a_page_or_script_extension(mime, name):
    assert extension_for(mime, name) == "bin"


def test_planned_keys_are_the_output_names_and_ignore_comfyui_names():
    counters: dict[str, int] = {}
    refs = [OutputRef("9", "ComfyUI_00001_.png", "user dir", "output", "images"),
            OutputRef("9", "ComfyUI_00002_.webp", "user dir", "output", "images"),
            OutputRef("12:3", "clip_00001.mp4", "", "output", "gifs")]
    files = [make_file(ref, PNG, "", "run-1", counters) for ref in refs]
    keys = plan_keys(files, prefix="out/", prompt_id="run-1", when=WHEN)
    assert keys[:2] == ["out/2025/03/04/run-1_9_1.png", "out/2025/03/04/run-1_9_2.webp"]
    assert keys[2].startswith("out/2025/03/04/run-1_12_3.") and keys[2].endswith("_1.mp4")
    assert not any("ComfyUI" in k or "user" in k or "clip" in k for k in keys)


def test_node_ids_that_sanitise_alike_get_different_keys_and_names():
    counters: dict[str, int] = {}
    files = [make_file(OutputRef(node, "ComfyUI_00001_.png", "", "output", "images"), PNG, "", "run-1", counters)
             for node in ("a/b", "a_b", "a b", "a.b")]
    keys = plan_keys(files, prefix="out/", prompt_id="run-1", when=WHEN)
    assert len({f.name for f in files}) == 4 and len(set(keys)) == 4
    assert files[1].name == "run-1_a_b_1.png"            # an id that is already safe stays readable


def test_names_not_of_our_making_or_taken_twice_still_get_distinct_keys():
    files = [output("9", name="p1_9_1.png"), output("9", name="p1_9_1.png"), output("9", name="../../x.html"),
             output("9", name="")]
    keys = plan_keys(files, prefix="out/", prompt_id="run-1", when=WHEN)
    assert len(set(keys)) == 4
    assert keys[0] == "out/2025/03/04/p1_9_1.png" and keys[1] != keys[0]
    assert all(k.startswith("out/2025/03/04/") and ".." not in k and not k.endswith(".html") for k in keys)


def test_key_names_match_the_output_file_names():
    counters: dict[str, int] = {}
    refs = [OutputRef("9", "ComfyUI_00001_.png", "", "output", "images"),
            OutputRef("9", "ComfyUI_00002_.png", "", "output", "images"),
            OutputRef("12:3", "clip_00001.mp4", "", "output", "gifs")]
    files = [make_file(ref, PNG, "", "5b1f-e2", counters) for ref in refs]
    keys = plan_keys(files, prefix="comfyui/", prompt_id="5b1f-e2", when=WHEN)
    assert [k.rsplit("/", 1)[1] for k in keys] == [f.name for f in files]


# ---- settings ---------------------------------------------------------------------------------

def full_creds(**over) -> dict[str, str]:
    creds = {"cos_region": "ap-guangzhou", "cos_secret_id": COS_AK, "cos_secret_key": COS_SK,
             "cos_bucket": "images-1250000000", "cos_token": "", "cos_prefix": "", "cos_url_mode": "",
             "cos_url_expires": "", "cos_domain": "", "cos_endpoint": ""}
    creds.update(over)
    return creds


def test_no_cos_settings_means_no_storage_even_with_dify_defaults():
    assert CosSettings.from_credentials({}) is None
    assert CosSettings.from_credentials({"cos_prefix": "comfyui/", "cos_url_mode": "public",
                                         "cos_url_expires": "3600", "cos_region": " "}) is None


def test_partial_settings_name_the_missing_fields():
    with pytest.raises(InputError) as info:
        CosSettings.from_credentials({"cos_region": "ap-guangzhou", "cos_secret_id": COS_AK, "cos_token": ""})
    msg = info.value.message
    assert "cos_secret_key, cos_bucket are empty" in msg
    assert "cos_region," not in msg.split("are empty")[0]
    assert info.value.detail["missing"] == ["cos_secret_key", "cos_bucket"]
    assert_clean_error(info.value)


def test_defaults_and_normalisation():
    s = CosSettings.from_credentials(full_creds(
        cos_bucket="https://images-1250000000.cos.ap-guangzhou.myqcloud.com/", cos_region=" AP-Guangzhou ",
        cos_domain="cdn.example.com/", cos_endpoint="10.0.0.5:9000"))
    assert (s.region, s.bucket, s.prefix, s.url_mode, s.url_expires) == (
        "ap-guangzhou", "images-1250000000", "comfyui/", "public", 3600)
    assert s.domain == "https://cdn.example.com"
    assert s.endpoint == "http://10.0.0.5:9000"
    assert CosSettings.from_credentials(full_creds(cos_endpoint="https://cos.internal")).endpoint == \
        "https://cos.internal:443"
    assert CosSettings.from_credentials(full_creds(cos_url_mode="Presigned", cos_url_expires=" 86400 ")
                                        ).url_expires == 86400


@pytest.mark.parametrize("field, value, words", [
    ("cos_url_expires", "1h", "cos_url_expires must be a whole number of seconds"),
    ("cos_url_expires", "0", "not '0'"),
    ("cos_url_mode", "private", "'public' or 'presigned'"),
    ("cos_bucket", "images", "including the APPID"),
    ("cos_bucket", "images-1250000000.cos.ap-beijing.myqcloud.com", "points at region ap-beijing"),
    ("cos_region", "guangzhou", "not a COS region"),
    ("cos_endpoint", "http://10.0.0.5:9000/cos", "without a path"),
    ("cos_domain", "ftp://cdn.example.com", "not a valid address"),
    ("cos_secret_key", COS_SK[:10] + " " + COS_SK[10:], "contains spaces"),
])
def test_malformed_values_are_explained(field, value, words):
    with pytest.raises(InputError) as info:
        CosSettings.from_credentials(full_creds(**{field: value}))
    assert words in info.value.message
    assert info.value.detail["field"] == field
    assert_clean_error(info.value)


def test_a_secret_pasted_into_the_wrong_field_is_not_echoed():
    with pytest.raises(InputError) as info:
        CosSettings.from_credentials(full_creds(cos_bucket=COS_SK))
    assert "cos_bucket '[redacted]' must be the full bucket name" in info.value.message
    assert_clean_error(info.value)


def test_repr_hides_secrets():
    s = CosSettings.from_credentials(full_creds(cos_token=COS_TOKEN))
    assert_clean(repr(s))
    assert set(s.secrets()) == {COS_AK, COS_SK, COS_TOKEN}


# ---- URLs (no server needed) ------------------------------------------------------------------

def test_public_urls_use_the_bucket_host_or_the_custom_domain():
    key = "comfyui/2025/03/04/p_9_0 a+b.png"
    plain = CosStorage(CosSettings.from_credentials(full_creds(cos_endpoint="http://10.0.0.5:9000")))
    assert plain.url_for(key) == \
        "https://images-1250000000.cos.ap-guangzhou.myqcloud.com/comfyui/2025/03/04/p_9_0%20a%2Bb.png"
    cdn = CosStorage(CosSettings.from_credentials(full_creds(cos_domain="http://cdn.example.com/base/")))
    assert cdn.url_for("k/x.png") == "http://cdn.example.com/base/k/x.png"
    assert isinstance(plain, Storage)


def test_presigned_urls_never_use_the_endpoint_override():
    s = CosStorage(CosSettings.from_credentials(full_creds(cos_endpoint="http://10.0.0.5:9000",
                                                           cos_url_mode="presigned", cos_url_expires="600")))
    url = urlsplit(s.url_for("k/x.png"))
    assert (url.scheme, url.hostname, url.path) == ("https", "images-1250000000.cos.ap-guangzhou.myqcloud.com",
                                                    "/k/x.png")
    start, end = map(int, parse_qs(url.query)["q-sign-time"][0].split(";"))
    assert end - start == 600 + 60


# ---- against the local server -----------------------------------------------------------------

def test_upload_then_public_url_serves_the_same_bytes(cos_server, cos_bucket, cos_credentials):
    storage, _ = storage_for(cos_credentials)
    storage.check()
    key = "comfyui/2025/03/04/p1_9_0.png"
    res = storage.upload(key, PNG, "image/png")
    assert res.url == f"https://{cos_bucket}.cos.{COS_REGION}.myqcloud.com/{key}"
    assert res.etag == hashlib.md5(PNG).hexdigest()          # real ETag, quotes stripped
    assert (res.key, res.size, res.mime_type) == (key, len(PNG), "image/png")
    assert fetch(cos_server, res.url).status_code == 403     # private bucket: not public yet
    cos_server.make_public(cos_bucket)
    got = fetch(cos_server, res.url)
    assert got.status_code == 200
    assert got.content == PNG
    assert got.headers["Content-Type"] == "image/png"


def test_attachment_uploads_carry_content_disposition(cos_server, cos_bucket, cos_credentials):
    cos_server.make_public(cos_bucket)
    storage, _ = storage_for(cos_credentials)
    small = storage.upload("comfyui/x/p_9_1.bin", b"<html><script>alert(1)</script>", "application/octet-stream",
                           attachment=True)
    plain_png = storage.upload("comfyui/x/p_9_2.png", PNG, "image/png")
    got = fetch(cos_server, small.url)
    assert got.headers["Content-Type"] == "application/octet-stream"
    assert got.headers["Content-Disposition"] == "attachment"
    assert "Content-Disposition" not in fetch(cos_server, plain_png.url).headers


def test_a_multipart_attachment_upload_carries_content_disposition(cos_server, cos_bucket, cos_credentials):
    cos_server.make_public(cos_bucket)
    storage, _ = storage_for(cos_credentials, multipart_threshold=1024 * 1024, part_size=1024 * 1024)
    data = os.urandom(2 * 1024 * 1024 + 10)
    res = storage.upload("comfyui/mp/p_9_1.bin", data, "application/octet-stream", attachment=True)
    got = fetch(cos_server, res.url)
    assert got.content == data and "-" in res.etag                   # it did go multipart
    assert got.headers["Content-Disposition"] == "attachment"


@pytest.mark.parametrize("filename, claimed", [
    ("ComfyUI_00001_.svg", "image/svg+xml"), ("page_00001_.xyz", "text/html"), ("x.html", "text/html"),
    ("x.png.html", "image/png"), ("noext", "application/javascript"), ("x.js", "text/javascript"),
])
def test_published_content_types_come_from_the_allowlist(cos_server, cos_bucket, cos_credentials, filename, claimed):
    """Whatever name and Content-Type the server gives, only raster images, video and audio are stored
    as themselves; anything else is an octet-stream attachment under a .bin key."""
    cos_server.make_public(cos_bucket)
    storage, _ = storage_for(cos_credentials)
    file = make_file(OutputRef("9", filename, "", "output", "images"), b"<svg onload=alert(1)>", claimed, "run-5", {})
    [res] = publish(storage, [file], prompt_id="run-5", when=WHEN)
    got = fetch(cos_server, res.url)
    assert (res.mime_type, got.headers["Content-Type"]) == ("application/octet-stream",) * 2
    assert got.headers["Content-Disposition"] == "attachment"
    assert res.key.endswith(".bin") and file.name.endswith(".bin")


@pytest.mark.parametrize("filename, mime", [("a.png", "image/png"), ("a.webp", "image/webp"), ("a.mp4", "video/mp4"),
                                            ("a.flac", "audio/flac"), ("a.jpeg", "image/jpeg")])
def test_media_is_published_inline_with_its_own_type(cos_server, cos_bucket, cos_credentials, filename, mime):
    cos_server.make_public(cos_bucket)
    storage, _ = storage_for(cos_credentials)
    file = make_file(OutputRef("9", filename, "", "output", "images"), PNG, "text/html", "run-6", {})
    [res] = publish(storage, [file], prompt_id="run-6", when=WHEN)
    got = fetch(cos_server, res.url)
    assert got.headers["Content-Type"] == mime and "Content-Disposition" not in got.headers


def test_presigned_url_serves_the_bytes_and_a_tampered_one_is_refused(cos_server, cos_bucket, cos_credentials):
    storage, _ = storage_for({**cos_credentials, "cos_url_mode": "presigned", "cos_url_expires": "600"})
    res = storage.upload("comfyui/x/p_9_0.png", PNG, "image/png")
    assert res.url.startswith(f"https://{cos_bucket}.cos.{COS_REGION}.myqcloud.com/comfyui/x/p_9_0.png"
                              "?q-sign-algorithm=sha1&q-ak=")
    got = fetch(cos_server, res.url)
    assert (got.status_code, got.content) == (200, PNG)
    sig = parse_qs(urlsplit(res.url).query)["q-signature"][0]
    forged = res.url.replace(sig, sig[:-1] + ("0" if sig[-1] != "0" else "1"))
    refused = fetch(cos_server, forged)
    assert refused.status_code == 403 and b"SignatureDoesNotMatch" in refused.content
    other_key = fetch(cos_server, res.url.replace("p_9_0.png", "p_9_1.png"))
    assert other_key.status_code == 403


def test_sts_token_is_sent_on_uploads_and_signed_into_presigned_urls(cos_server, cos_bucket, cos_credentials):
    creds = {**cos_credentials, "cos_secret_id": COS_TMP_AK, "cos_secret_key": COS_TMP_SK,
             "cos_token": COS_TOKEN, "cos_url_mode": "presigned"}
    storage, _ = storage_for(creds)
    storage.check()
    res = storage.upload("comfyui/sts/p_1_0.png", PNG, "image/png")
    query = parse_qs(urlsplit(res.url).query)
    assert query["x-cos-security-token"] == [COS_TOKEN]
    assert "x-cos-security-token" in query["q-url-param-list"][0]
    assert fetch(cos_server, res.url).content == PNG
    without_token = res.url.split("&x-cos-security-token=")[0]
    assert fetch(cos_server, without_token).status_code in (400, 403)

    stale, _ = storage_for({**creds, "cos_token": WRONG_TOKEN})
    with pytest.raises(StorageError) as info:
        stale.check()
    assert info.value.code == "storage_auth"
    assert "STS token in cos_token has probably expired" in info.value.message
    assert_clean_error(info.value)


def test_large_file_goes_multipart_without_copying_the_buffer(cos_server, cos_bucket, cos_credentials):
    data = os.urandom(1 << 20) * 21 + b"tail"                # 21 MB + 4 B: a 20 MB part and a 1 MB one
    storage, _ = storage_for(cos_credentials)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        res = storage.upload("comfyui/big/p_9_0.mp4", data, "video/mp4")
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert res.etag.endswith("-2") and '"' not in res.etag
    assert res.size == len(data)
    assert peak < 4 * (1 << 20), f"upload allocated {peak} bytes: the 20 MB part was copied"
    client = cos_server.client()
    head = {k.lower(): v for k, v in client.head_object(Bucket=cos_bucket, Key=res.key).items()}
    assert head["content-type"] == "video/mp4"
    body = client.get_object(Bucket=cos_bucket, Key=res.key)["Body"].get_raw_stream().read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()


def test_a_failed_part_is_retried_and_a_failed_upload_is_aborted(cos_server, cos_bucket, cos_credentials):
    data = os.urandom(2 * (1 << 20) + 1000)
    storage, sleeps = storage_for(cos_credentials, multipart_threshold=1 << 20, part_size=1 << 20)
    cos_server.fail_next(1, status=503, method="PUT")
    res = storage.upload("comfyui/mp/p_9_0.bin", data, "application/octet-stream")
    assert res.etag.endswith("-3")
    assert sleeps == [0.3]

    cos_server.fail_next(10, status=500, method="PUT")
    with pytest.raises(StorageError) as info:
        storage.upload("comfyui/mp/p_9_1.bin", data, "application/octet-stream")
    assert info.value.code == "storage_unavailable"
    assert "HTTP 500" in info.value.message
    cos_server.control("reset")
    pending = cos_server.client().list_multipart_uploads(Bucket=cos_bucket)
    assert not pending.get("Upload"), "the failed multipart upload was left behind"


def test_5xx_then_success_is_retried(cos_server, cos_bucket, cos_credentials):
    storage, sleeps = storage_for(cos_credentials)
    cos_server.fail_next(2, status=503)
    [res] = publish(storage, [output("9")], prompt_id="run-1", when=WHEN)
    assert res.ok, res.error
    assert res.key == "comfyui/2025/03/04/p1_9_1.png"
    assert res.etag == hashlib.md5(PNG).hexdigest()
    assert sleeps == [0.3, 0.6]


def test_publish_reports_a_failed_file_and_goes_on(cos_server, cos_bucket, cos_credentials):
    storage, sleeps = storage_for(cos_credentials)
    cos_server.fail_next(3, status=503)                      # every try of the first file
    first, second = publish(storage, [output("9"), output("10")], prompt_id="run-2", when=WHEN)
    assert not first.ok and first.error_code == "storage_unavailable"
    assert "HTTP 503" in first.error and "Try again later" in first.error
    assert first.to_dict()["key"] == "comfyui/2025/03/04/p1_9_1.png" and "url" not in first.to_dict()
    assert second.ok and second.url.endswith("/comfyui/2025/03/04/p1_10_1.png")
    assert_clean(first.to_dict(), second.to_dict())


def test_check_reports_a_wrong_secret_key(cos_credentials):
    storage, _ = storage_for({**cos_credentials, "cos_secret_key": WRONG_SK})
    with pytest.raises(StorageError) as info:
        storage.check()
    assert info.value.code == "storage_auth"
    assert "(SignatureDoesNotMatch): cos_secret_key is wrong for this SecretId" in info.value.message
    assert_clean_error(info.value)


def test_check_reports_a_wrong_secret_id(cos_credentials):
    storage, _ = storage_for({**cos_credentials, "cos_secret_id": WRONG_AK})
    with pytest.raises(StorageError) as info:
        storage.check()
    assert info.value.code == "storage_auth"
    assert "COS does not know this SecretId (InvalidAccessKeyId): check cos_secret_id" in info.value.message
    assert_clean_error(info.value)


def test_check_reports_a_missing_bucket(cos_credentials):
    storage, _ = storage_for({**cos_credentials, "cos_bucket": "nosuch-1250000000"})
    with pytest.raises(StorageError) as info:
        storage.check()
    assert info.value.code == "storage_bucket_missing"
    assert info.value.message == ("COS bucket nosuch-1250000000 not found in region ap-guangzhou: check the "
                                  "bucket name (name-appid) and region in the COS console.")
    assert_clean_error(info.value)


def test_check_tells_a_missing_headbucket_permission_from_bad_keys(cos_server, cos_credentials):
    storage, _ = storage_for(cos_credentials)
    cos_server.fail_next(1, status=403, code="AccessDenied", method="HEAD")   # HEAD 403: empty body
    with pytest.raises(StorageError) as info:
        storage.check()
    assert info.value.code == "storage_forbidden"
    assert "grant it cos:HeadBucket on that bucket" in info.value.message   # the probe GET authenticated

    cos_server.fail_next(2, status=403, code="AccessDenied")                  # HEAD and the probe denied
    with pytest.raises(StorageError) as info:
        storage.check()
    assert "grant it cos:HeadBucket and cos:PutObject" in info.value.message
    assert_clean_error(info.value)


def test_upload_denied_by_bucket_policy_names_the_permission(cos_server, cos_bucket, cos_credentials):
    cos_server.client().put_bucket_policy(Bucket=cos_bucket, Policy={
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
                       "Resource": f"arn:aws:s3:::{cos_bucket}/*"}]})
    storage, _ = storage_for(cos_credentials)
    [res] = publish(storage, [output("9")], prompt_id="run-3", when=WHEN)
    assert res.error_code == "storage_forbidden"
    assert f"not allowed to use bucket {cos_bucket}" in res.error and "cos:PutObject" in res.error
    assert_clean(res.to_dict())


@pytest.mark.timeout(30)
def test_unreachable_server_fails_fast_and_publish_still_returns(cos_credentials):
    port = closed_port()
    storage, sleeps = storage_for({**cos_credentials, "cos_endpoint": f"http://127.0.0.1:{port}"})
    with pytest.raises(StorageError) as info:
        storage.check()
    assert info.value.code == "storage_unreachable"
    assert f"Could not reach COS at http://127.0.0.1:{port}" in info.value.message
    assert "connection refused" in info.value.message
    assert_clean_error(info.value)
    assert sleeps == [0.3, 0.6]                              # bounded: 3 tries

    sleeps.clear()
    results = publish(storage, [output("9"), output("9"), output("10")], prompt_id="run-4", when=WHEN)
    assert [r.error_code for r in results] == ["storage_unreachable"] * 3
    assert all("connection refused" in r.error for r in results)
    assert sleeps == [0.3, 0.6]                              # later files are not retried again
    assert_clean(*(r.to_dict() for r in results))
