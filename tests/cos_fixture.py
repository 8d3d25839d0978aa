"""pytest fixtures for the local COS server (tests/servers/cos_server.py).

* `cos_server` (session): one launcher subprocess with signature verification ON for the test
  keys below; yields a CosServer (port, control helpers). Stopped at the end of the session.
* `cos_bucket`: a fresh bucket `t<hex>-1250000000` per test, so tests share no state.
* `cos_credentials`: Dify-shaped credentials (all strings) for that bucket, with `cos_endpoint`
  pointing at the local server.
* `fetch(server, url)`: GET a production-shaped URL (https://<bucket>.cos.<region>.myqcloud.com/...)
  through the loopback with the URL's host in the Host header — what DNS would do for real COS.
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from qcloud_cos import CosConfig, CosS3Client

LAUNCHER = Path(__file__).parent / "servers" / "cos_server.py"

COS_REGION = "ap-guangzhou"
COS_APPID = "1250000000"
# Made-up keys; the launcher accepts exactly these.
COS_AK = "AKIDbridgeTest7Qm4ZpL0vK9xW2cN5rT8yB"
COS_SK = "bridgeTestSecretKey3Hq8Lz6Wp1Xv4Nc7R"
COS_TMP_AK = "AKIDbridgeTemp5Jd2Fg7Hk4Ls9Qw3Er6Ty"
COS_TMP_SK = "bridgeTempSecretKey9Zx3Cv6Bn1Mq4Wo7E"
COS_TOKEN = "bridgeStsToken0aB1cD2eF3gH4iJ5kL6mN7oP8qR9sT"
COS_SECRETS = (COS_AK, COS_SK, COS_TMP_AK, COS_TMP_SK, COS_TOKEN)


@dataclass
class CosServer:
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def control(self, route: str, **params) -> None:
        """Hit a /_test control route (bare-address Host, unreachable through a bucket vhost)."""
        resp = requests.get(f"{self.endpoint}/_test/{route}", params=params, timeout=5)
        resp.raise_for_status()

    def fail_next(self, n: int, status: int = 503, method: str = "", code: str = "") -> None:
        self.control("fail_next", n=n, status=status, method=method, code=code)

    def client(self, ak: str = COS_AK, sk: str = COS_SK, token: str | None = None) -> CosS3Client:
        """An SDK client for test setup (bucket creation, policies, reading objects back)."""
        conf = CosConfig(Region=COS_REGION, SecretId=ak, SecretKey=sk, Token=token,
                         Scheme="http", IP="127.0.0.1", Port=self.port, Timeout=10)
        return CosS3Client(conf, retry=0)

    def make_public(self, bucket: str) -> None:
        """Emulate a public-read bucket (moto ignores COS ACL headers but applies bucket policies)."""
        self.client().put_bucket_policy(Bucket=bucket, Policy={
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                           "Resource": f"arn:aws:s3:::{bucket}/*"}]})


def fetch(server: CosServer, url: str, **kwargs) -> requests.Response:
    """GET a production-shaped URL through the local server, keeping its host in Host."""
    parts = urlsplit(url)
    local = urlunsplit(("http", f"127.0.0.1:{server.port}", parts.path, parts.query, ""))
    headers = {"Host": parts.hostname, **kwargs.pop("headers", {})}
    return requests.get(local, headers=headers, timeout=10, **kwargs)


def _read_port(proc: subprocess.Popen, deadline: float) -> int:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline().strip()
            if line.startswith("listening "):
                return int(line.rsplit(":", 1)[1])
    raise RuntimeError("the COS test server did not start (see cos_server.log in the pytest tmp dir)")


@pytest.fixture(scope="session")
def cos_server(tmp_path_factory):
    # The SDK logs every failed request at ERROR with a traceback; the tests provoke many.
    logging.getLogger("qcloud_cos").setLevel(logging.CRITICAL)
    log = tmp_path_factory.mktemp("cos") / "cos_server.log"
    env = dict(os.environ, S3_UPLOAD_PART_MIN_SIZE="1048576",
               COS_VERIFY_KEYS=f"{COS_AK}:{COS_SK},{COS_TMP_AK}:{COS_TMP_SK}:{COS_TOKEN}")
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, str(LAUNCHER), "0"], stdout=subprocess.PIPE,
                                stderr=err, env=env, text=True)
    try:
        yield CosServer(port=_read_port(proc, time.monotonic() + 30))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        proc.stdout.close()


@pytest.fixture
def cos_bucket(cos_server):
    bucket = f"t{uuid.uuid4().hex[:10]}-{COS_APPID}"
    cos_server.client().create_bucket(Bucket=bucket)
    yield bucket
    cos_server.control("reset")   # never leak an armed fault into the next test


@pytest.fixture
def cos_credentials(cos_server, cos_bucket) -> dict[str, str]:
    """Credentials as Dify sends them (strings, optional ones empty), aimed at the local server."""
    return {"cos_region": COS_REGION, "cos_secret_id": COS_AK, "cos_secret_key": COS_SK,
            "cos_bucket": cos_bucket, "cos_token": "", "cos_prefix": "", "cos_url_mode": "public",
            "cos_url_expires": "", "cos_domain": "", "cos_endpoint": cos_server.endpoint}
