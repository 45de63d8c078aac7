"""A finishing step's model upload is streamed from storage, never read whole into memory.

The client opens the file for each send (``upload`` carries an opener, not bytes), reads
it in the connection's small chunks, sends the body's length up front, and closes it
after; a second send after a failed one starts from the file's first byte again. The
memory it takes is measured by tests/bench/bench_upload.py.
"""

import io
from datetime import timedelta

import pytest
from django.utils import timezone

from generations import finishing
from generations.models import Generation
from generations.upstream import Rejected, Unavailable, UpstreamClient
from tests.test_finishing_pipeline import inline_tasks  # noqa: F401 - a fixture
from tests.test_upstream_redaction import KEY, assert_no_key, echoing

FILE = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and a little: many chunks


class Recording(io.BytesIO):
    """A stored file that remembers how it was read and whether it was closed."""

    def __init__(self, data, reads):
        super().__init__(data)
        self.reads = reads

    def read(self, size=-1):
        self.reads.append(size)
        return super().read(size)


class Opener:
    def __init__(self, data=FILE, size=None):
        self.data = data
        self.size = len(data) if size is None else size
        self.opened = []
        self.reads = []

    def __call__(self):
        handle = Recording(self.data, self.reads)
        self.opened.append(handle)
        return handle, self.size


def file_part(request):
    """The bytes of the multipart body's file part."""
    body = request["body"]
    start = body.index(b"\r\n\r\n", body.index(b'name="model_file"')) + 4
    return body[start : body.index(b"\r\n--", start)]


@pytest.fixture
def upstream(canned):
    return UpstreamClient(canned.url, KEY, connect_timeout=1, read_timeout=2)


def test_the_file_goes_whole_in_small_reads_with_its_length_and_fields(canned, upstream):
    canned.answer(200, {"task_id": "t-1", "created_at": "now"})
    opener = Opener()
    body = {"quality": "low", "hollow": False, "output_format": "glb"}
    submitted = upstream.submit("/v1/tools/repair/", body, upload=("model_file", "m.glb", opener))
    assert submitted.task_id == "t-1"
    (request,) = canned.requests
    assert request["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
    assert int(request["headers"]["Content-Length"]) == len(request["body"])
    assert "chunked" not in request["headers"].get("Transfer-Encoding", "")
    assert file_part(request) == FILE
    assert b'name="hollow"\r\n\r\nfalse' in request["body"]
    assert b'name="quality"\r\n\r\nlow' in request["body"]
    assert b'filename="m.glb"' in request["body"]
    # Never one read of the whole file: it is taken in the connection's chunks.
    assert -1 not in opener.reads and None not in opener.reads
    assert max(opener.reads) <= 64 * 1024
    assert all(handle.closed for handle in opener.opened)


def test_a_second_send_after_a_failed_one_starts_from_the_first_byte(canned, upstream):
    canned.answer(503, {"detail": "busy"}).answer(200, {"task_id": "t-2"})
    opener = Opener()
    upload = ("model_file", "m.glb", opener)
    with pytest.raises(Unavailable):
        upstream.submit("/v1/tools/repair/", {"quality": "low"}, upload=upload)
    assert upstream.submit("/v1/tools/repair/", {"quality": "low"}, upload=upload).task_id == "t-2"
    assert len(opener.opened) == 2
    assert [file_part(r) for r in canned.requests] == [FILE, FILE]
    assert all(handle.closed for handle in opener.opened)


def test_a_file_shorter_than_its_recorded_size_ends_the_send_instead_of_hanging(canned, upstream):
    canned.answer(200, {"task_id": "never"})
    opener = Opener(size=len(FILE) + 100)
    with pytest.raises(Rejected, match="ended 100 bytes before its recorded size"):
        upstream.submit("/v1/tools/repair/", {}, upload=("model_file", "m.glb", opener))
    assert all(handle.closed for handle in opener.opened)


def test_an_upload_answer_that_echoes_the_key_is_redacted(canned, upstream):
    canned.answer(400, echoing(400, lambda auth: {"detail": f"bad file from {auth}"}))
    with pytest.raises(Rejected) as caught:
        upstream.submit("/v1/tools/repair/", {}, upload=("model_file", "m.glb", Opener()))
    assert_no_key(caught.value.message, caught.value.raw, repr(caught.value))


@pytest.mark.django_db(transaction=True)
def test_build_hands_the_client_an_opener_of_our_stored_model_not_its_bytes(
    sandbox_server,
    inline_tasks,  # noqa: F811 - the fixture imported above
    member,
):
    from tests.test_finishing_pipeline import ask
    from tests.test_pipeline import drive, queue

    source = drive(queue(member))
    Generation.objects.filter(pk=source.pk).update(
        upstream_done_at=timezone.now() - timedelta(hours=30)
    )
    source.refresh_from_db()
    job = ask(source, "repair", {"quality": "low", "hollow": False})
    endpoint, body, (field, name, opener) = finishing.build(job)
    assert (endpoint, field, name) == ("/v1/tools/repair/", "model_file", "model.glb")
    assert callable(opener)
    handle, size = opener()
    with handle:
        assert size == source.glb_asset.bytes
        assert handle.read(4) == b"glTF"


def test_a_stored_file_that_cannot_be_opened_is_refused_before_anything_is_sent(canned, upstream):
    canned.answer(200, {"task_id": "never"})

    def missing():
        raise FileNotFoundError("/srv/media/assets/7/secret-path.glb")

    with pytest.raises(Rejected, match="could not be read \\(FileNotFoundError\\)") as refused:
        upstream.submit("/v1/tools/repair/", {}, upload=("model_file", "m.glb", missing))
    assert "secret-path" not in refused.value.message  # no storage path on the page
    assert canned.requests == []
