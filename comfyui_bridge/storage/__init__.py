"""Where output files go after a run: the storage interface and its result type.

A Storage is built per invocation from that invocation's credentials (never cached across
tenants). `publish.py` drives it; `cos.py` is the Tencent COS implementation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from ..deadline import Deadline
from ..errors import StorageError

__all__ = ["Storage", "StorageError", "UploadResult"]


@dataclass(frozen=True)
class UploadResult:
    """One stored object.

    `etag` is the storage's ETag without the surrounding double quotes: a hex MD5 for a simple
    upload, `<hex>-<parts>` for a multipart one. It is never the URL.
    """

    key: str
    url: str
    etag: str
    size: int
    mime_type: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Storage(Protocol):
    """What publishing needs from an object store."""

    @property
    def prefix(self) -> str:
        """Sanitized key prefix ("" or ending with "/"), used by publish to build keys."""

    def check(self) -> None:
        """Prove the settings work (bucket reachable, key accepted). Raises StorageError with a
        message that says what to fix; never contains a secret."""

    def upload(self, key: str, data: bytes, mime_type: str, *, attachment: bool = False,
               deadline: Deadline | None = None) -> UploadResult:
        """Store `data` under `key` with `mime_type` as Content-Type (and `Content-Disposition:
        attachment` when `attachment`: browsers download it instead of showing it), within
        `deadline` (retries included). Raises StorageError ("storage_timeout" once the deadline passed)."""

    def url_for(self, key: str) -> str:
        """The URL a user can open for `key` (public or presigned, per the settings)."""
