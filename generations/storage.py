"""Reading stored files the same way on local disk and on an S3-compatible bucket.

Settings pick the backend (``STORAGES["default"]``): ``FileSystemStorage`` under
the media root, or django-storages' ``S3Storage`` when ``S3_BUCKET`` is set.
Product code never asks a stored file for ``.path``: a bucket has none. Where a
library needs a real file (trimesh on a ZIP), ``local_copy`` gives one, and
downloads read through ``open_stream``, which never holds a whole file in memory.

Writes go through ``ingest.store``: on local disk a rename of a finished temp
file, on S3 an upload that becomes visible only when it completes, so in both
cases a half-written file is never seen.
"""

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from django.core.files.storage import FileSystemStorage

CHUNK = 64 * 1024


def is_local(storage) -> bool:
    return isinstance(storage, FileSystemStorage)


def local_path(fieldfile) -> str | None:
    """The file's path on this machine, or None when it lives in a bucket."""
    if is_local(fieldfile.storage):
        return fieldfile.storage.path(fieldfile.name)
    return None


def describe(fieldfile) -> str:
    """The storage name, and the path too when the file is on local disk."""
    path = local_path(fieldfile)
    return f"{fieldfile.name} ({path})" if path else fieldfile.name


def open_stream(fieldfile):
    """A read-only file-like object over the stored bytes, and its size.

    On S3 this is the body of one GET, read as it arrives. ``storage.open()``
    would instead copy the whole object into a spooled temporary file before
    the first byte, which delays the response and, with django-storages'
    default ``max_memory_size`` of 0, holds it all in memory.

    A file missing from the storage (deleted by hand, a bucket restored from an older
    backup) raises FileNotFoundError on disk and on S3 alike.
    """
    storage = fieldfile.storage
    bucket = getattr(storage, "bucket", None)
    if bucket is None or is_local(storage):
        handle = storage.open(fieldfile.name, "rb")
        return handle, handle.size
    from botocore.exceptions import ClientError

    # We set no ``location`` prefix, so the storage name is the object key.
    try:
        answer = bucket.Object(fieldfile.name).get()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise FileNotFoundError(f"no object {fieldfile.name!r} in the bucket") from exc
        raise
    return answer["Body"], answer["ContentLength"]


@contextmanager
def local_copy(fieldfile, directory, suffix=""):
    """A real file with the stored bytes, removed afterwards. Local files are used in place."""
    path = local_path(fieldfile)
    if path is not None:
        yield Path(path)
        return
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            source, _size = open_stream(fieldfile)
            with source:
                shutil.copyfileobj(source, out, CHUNK)
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)
