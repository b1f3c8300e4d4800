"""Storage backends for the attachment tests: the local file system and an S3-compatible store.

The S3 store is moto's server, started in this process on a free port of 127.0.0.1 (never the
internet). Each test gets its own directory or bucket, and a `StoredObjects` view that reads the
backend directly (not through Django), so a test can see what really sits in storage.

Overriding `STORAGES` through the `settings` fixture resets Django's cached `default_storage`
(Django's `storages_changed` receiver); each fixture asserts that the reset happened.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

S3_CREDENTIALS = {"access_key": "test", "secret_key": "test", "region_name": "us-east-1"}


@dataclass
class StoredObjects:
    """What one backend holds, read without Django: `names()` and `read(name)`."""

    backend: str
    names: Callable[[], set[str]]
    read: Callable[[str], bytes]


def _use_default_storage(settings, backend: dict) -> None:
    settings.STORAGES = {**settings.STORAGES, "default": backend}


@pytest.fixture(scope="session")
def moto_s3_endpoint() -> Iterator[str]:
    """`http://127.0.0.1:<port>` of an S3-compatible server living as long as the test session."""
    from moto.server import ThreadedMotoServer  # here, so only sessions that use S3 load moto

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def filesystem_storage(settings, tmp_path) -> StoredObjects:
    """Default storage = a FileSystemStorage rooted in this test's tmp_path."""
    root = tmp_path / "storage"
    root.mkdir()
    _use_default_storage(
        settings,
        {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
    )
    assert Path(default_storage.location) == root, "default_storage was not reset"

    def names() -> set[str]:
        return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}

    return StoredObjects("filesystem", names, lambda name: (root / name).read_bytes())


@pytest.fixture
def s3_storage(settings, moto_s3_endpoint) -> StoredObjects:
    """Default storage = S3Storage on a fresh bucket of the moto server."""
    import boto3

    bucket = f"paperclip-test-{uuid.uuid4().hex[:16]}"
    client = boto3.client(
        "s3",
        endpoint_url=moto_s3_endpoint,
        aws_access_key_id=S3_CREDENTIALS["access_key"],
        aws_secret_access_key=S3_CREDENTIALS["secret_key"],
        region_name=S3_CREDENTIALS["region_name"],
    )
    client.create_bucket(Bucket=bucket)
    _use_default_storage(
        settings,
        {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": moto_s3_endpoint,
                **S3_CREDENTIALS,
                "default_acl": None,
                "file_overwrite": False,
            },
        },
    )
    assert default_storage.bucket_name == bucket, "default_storage was not reset"

    def names() -> set[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def read(name: str) -> bytes:
        return client.get_object(Bucket=bucket, Key=name)["Body"].read()

    return StoredObjects("s3", names, read)


@pytest.fixture(params=["filesystem", "s3"])
def storage_backend(request) -> StoredObjects:
    """Each backend in turn: a test using this runs once on the file system and once on S3."""
    return request.getfixturevalue(f"{request.param}_storage")
