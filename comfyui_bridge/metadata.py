"""Secrets inside output files (interim: detection only; a full metadata cleaner replaces this)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Cleaned:
    data: bytes
    clean: bool


def find_secret(data: bytes, secrets: Sequence[str]) -> bool:
    return any(s and s.encode() in data for s in secrets)


def remove_secrets(data: bytes, mime_type: str, secrets: Sequence[str]) -> Cleaned:
    return Cleaned(data, not find_secret(data, secrets))
