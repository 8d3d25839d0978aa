"""Shared pytest fixtures."""

from cos_fixture import cos_bucket, cos_credentials, cos_server  # noqa: F401  (local COS server fixtures)
