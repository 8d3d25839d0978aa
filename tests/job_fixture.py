"""Helpers for the submit-now-collect-later tests.

* `SdkStorage`: the SDK's `self.session.storage` (StorageInvocation: set/get/delete/exist, hex on
  the wire) answered in-process by the daemon emulation of tests/e2e/stdio_harness.DaemonStorage,
  for tool tests that do not start a plugin process. Errors arrive as the SDK raises them: a bare
  Exception carrying the daemon's text.
* `JobTool`: the SDK Tool as the job tools use it (credentials, session.storage, create_* messages).
* `versioned_bucket` / `object_versions`: a COS test bucket that keeps every version of every
  object, and how many versions each key has (moto keeps them; the COS SDK's XML parser folds a
  list of versions of one key into one, so the listing is read raw): one version = one upload.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET  # noqa: S405 - XML from our own local test server
from binascii import hexlify, unhexlify
from collections import Counter
from pathlib import Path
from typing import Any

import requests
from dify_view import Recorder

sys.path.insert(0, str(Path(__file__).resolve().parent / "e2e"))
from stdio_harness import DaemonStorage  # noqa: E402

MANIFEST_STORAGE_SIZE = 64 * 1024 * 1024     # manifest.yaml resource.permission.storage.size

__all__ = ["DaemonStorage", "JobTool", "SdkStorage", "object_versions", "versioned_bucket"]


class SdkStorage:
    """dify_plugin.invocations.storage.StorageInvocation, over DaemonStorage.serve."""

    def __init__(self, daemon: DaemonStorage, size: int = MANIFEST_STORAGE_SIZE, enabled: bool = True):
        declaration = {"resource": {"permission": {"storage": {"enabled": enabled, "size": size}}}}
        self._invoke = daemon.handler(declaration)

    def _call(self, request: dict[str, Any]) -> Any:
        try:
            return self._invoke({"type": "storage", "request": request})
        except RuntimeError as exc:
            raise Exception(str(exc)) from None   # noqa: TRY002 - what the SDK raises

    def set(self, key: str, val: bytes) -> None:
        data = self._call({"opt": "set", "key": key, "value": hexlify(val).decode()})
        if data["data"] != "ok":
            raise Exception(f"unexpected data: {data['data']}")   # noqa: TRY002

    def get(self, key: str) -> bytes:
        return unhexlify(self._call({"opt": "get", "key": key})["data"])

    def delete(self, key: str) -> None:
        data = self._call({"opt": "del", "key": key})
        if data["data"] != "ok":
            raise Exception(f"unexpected data: {data['data']}")   # noqa: TRY002

    def exist(self, key: str) -> bool:
        return self._call({"opt": "exist", "key": key})["data"]


class JobTool(Recorder):
    """Stands in for the SDK's Tool: credentials, session.storage, and the messages it would send."""

    def __init__(self, credentials: dict[str, Any], storage: SdkStorage):
        self.runtime = type("Runtime", (), {"credentials": credentials})()
        self.session = type("Session", (), {"storage": storage})()


def versioned_bucket(cos_server, bucket: str) -> None:
    """Keep every version of every object; objects public-read; versions listable by anyone."""
    client = cos_server.client()
    client.put_bucket_versioning(Bucket=bucket, Status="Enabled")
    client.put_bucket_policy(Bucket=bucket, Policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucketVersions",
         "Resource": f"arn:aws:s3:::{bucket}"}]})


def object_versions(cos_server, bucket: str) -> Counter:
    """{key: number of versions} of every object in the bucket."""
    resp = requests.get(f"http://127.0.0.1:{cos_server.port}/?versions",
                        headers={"Host": f"{bucket}.cos.ap-guangzhou.myqcloud.com"}, timeout=10)
    resp.raise_for_status()
    root = ET.fromstring(resp.content)  # noqa: S314 - our own local test server
    ns = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
    return Counter(v.findtext("s3:Key", namespaces=ns) for v in root.findall("s3:Version", ns))
