"""Upload a run's output files to a Storage, one result per file.

Publishing never raises for a failed file: the tool must still be able to hand the files
themselves to the user, with a readable reason why the link is missing. Once the storage shows
it is unusable for everyone (bad credentials, missing bucket, unreachable), the remaining files
are not attempted again; they get the same reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .deadline import Deadline
from .errors import BridgeError, StorageError
from .jsonsafe import shown
from .media import is_inline_type, safe_type
from .models import OutputFile
from .scrub import one_line
from .storage import Storage
from .storage.keys import extension_for, is_own_name, key_for_name, object_key

# Seconds publishing may run past the run's own deadline: a call ends by `timeout` + this.
PUBLISH_GRACE = 5.0

# Errors after which another file would fail the same way.
_FATAL = {"storage_auth", "storage_forbidden", "storage_bucket_missing", "storage_unreachable",
          "storage_config", "storage_timeout"}


@dataclass
class PublishResult:
    """The outcome for one file: `url`/`key`/`etag` when stored, else `error` (scrubbed)."""

    name: str                  # the file's own (our) name, e.g. <prompt_id>_<node>_<n>.png
    node_id: str
    size: int
    mime_type: str
    key: str = ""
    url: str = ""
    etag: str = ""              # without quotes
    error: str = ""
    error_code: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "node_id": self.node_id, "size": self.size,
                               "mime_type": self.mime_type}
        if self.ok:
            out.update(key=self.key, url=self.url, etag=self.etag)
        else:
            out.update(key=self.key, error=self.error, error_code=self.error_code)
        return out


def publish_deadline(run_deadline: Deadline | None) -> Deadline:
    """The deadline for uploading a run's outputs: what is left of the run's, plus PUBLISH_GRACE."""
    if run_deadline is None:
        return Deadline.after(PUBLISH_GRACE)
    return Deadline(run_deadline.at + PUBLISH_GRACE, run_deadline.clock)


def plan_keys(files: Sequence[OutputFile], *, prefix: str, prompt_id: str,
              when: datetime | None = None) -> list[str]:
    """One key per file, all different: `<prefix><yyyy>/<mm>/<dd>/<name>` with the file's own name
    (media.output_name: our ids and a counter, so keys match the blob names). A name not of our
    making, or one already taken, becomes `<prompt_id>_<node>_<position in the run>.<ext>`."""
    when = when or datetime.now(UTC)     # one date for the whole run
    keys: list[str] = []
    taken: set[str] = set()
    for position, f in enumerate(files, 1):
        if is_own_name(f.name):
            key = key_for_name(prefix, f.name, when)
        else:
            key = object_key(prefix, prompt_id, f.node_id, position, extension_for(f.mime_type, f.name), when)
        while key in taken:
            stem, _, ext = key.rpartition(".")
            key = f"{stem}_{position}.{ext}"
        taken.add(key)
        keys.append(key)
    return keys


def publish(storage: Storage, files: Sequence[OutputFile], *, prompt_id: str,
            when: datetime | None = None, secrets: Sequence[str] = (),
            deadline: Deadline | None = None) -> list[PublishResult]:
    """Upload every file within `deadline` (Storage.upload does the bounded retries); once it has
    passed the remaining files are not attempted. Returns results in file order.
    Only raster images, video and audio are stored as their own type; anything else is stored as
    `application/octet-stream` with `Content-Disposition: attachment` (never served as a page)."""
    keys = plan_keys(files, prefix=storage.prefix, prompt_id=prompt_id, when=when)
    results: list[PublishResult] = []
    fatal: BridgeError | None = None
    for f, key in zip(files, keys, strict=True):
        mime = safe_type(f.mime_type)
        res = PublishResult(name=f.name, node_id=str(f.node_id), size=f.size, mime_type=mime, key=key)
        if fatal is not None:
            _fail(res, fatal, secrets)
        else:
            try:
                up = storage.upload(key, f.data, mime, attachment=not is_inline_type(mime), deadline=deadline)
                res.url, res.etag, res.size, res.mime_type = up.url, up.etag, up.size, up.mime_type
            except BridgeError as exc:
                _fail(res, exc, secrets)
                if exc.code in _FATAL:
                    fatal = exc
            except Exception as exc:  # a storage bug must not cost the user their files
                _fail(res, StorageError(f"Upload failed: {type(exc).__name__}: {shown(str(exc), 300)}"), secrets)
        results.append(res)
    return results


def _fail(res: PublishResult, exc: BridgeError, secrets: Sequence[str]) -> None:
    res.error = one_line(exc.message, 400, secrets=secrets)
    res.error_code = exc.code
