"""Turntable videos: recognised by their bytes, refused when they only pretend, stored as the
version's turntable and played (with the still as their poster) where models are shown.

The render tool answers a video render with MP4, WebM or GIF (the API reference); ingest
takes an MP4 by its ``ftyp`` box and whole top-level boxes, a WebM by its EBML header
naming DocType webm and one Segment, and refuses anything else claiming to be one.
"""

import pytest
from django.urls import reverse

from generations import ingest, posters
from generations.models import Asset, State
from reviews.models import Decision, Review
from sandbox.video import TURNTABLE_MP4
from tests.test_finishing_pipeline import ask, inline_tasks, run, source  # noqa: F401
from tests.test_ingest import leftovers, sandboxed  # noqa: F401
from tests.test_posters_pages import add_turntable, logged_in, poster_url
from tests.test_reviews_support import fast_passwords, make_finished, media  # noqa: F401


def ebml(element_id, payload):
    """One EBML element with a one-byte size (payloads here are under 127 bytes)."""
    assert len(payload) < 127
    return element_id + bytes([0x80 | len(payload)]) + payload


def webm(doctype=b"webm", segment=None):
    """A WebM as a muxer writes its start: the EBML header, then a Segment (here its Info)."""
    header = ebml(
        b"\x1a\x45\xdf\xa3",
        ebml(b"\x42\x86", b"\x01")  # EBMLVersion
        + ebml(b"\x42\xf7", b"\x01")  # EBMLReadVersion
        + ebml(b"\x42\xf2", b"\x04")  # EBMLMaxIDLength
        + ebml(b"\x42\xf3", b"\x08")  # EBMLMaxSizeLength
        + ebml(b"\x42\x82", doctype)  # DocType
        + ebml(b"\x42\x87", b"\x04")  # DocTypeVersion
        + ebml(b"\x42\x85", b"\x02"),  # DocTypeReadVersion
    )
    info = ebml(b"\x15\x49\xa9\x66", ebml(b"\x2a\xd7\xb1", b"\x0f\x42\x40"))
    return header + (segment if segment is not None else ebml(b"\x18\x53\x80\x67", info))


def box(kind, payload):
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


FTYP = box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2avc1mp41")


# --- recognised by their bytes -----------------------------------------------------------------


def test_sniff_tells_mp4_and_webm_by_their_first_bytes():
    assert ingest.sniff(TURNTABLE_MP4[:64]) == "mp4"
    assert ingest.sniff(webm()[:64]) == "webm"
    assert ingest.sniff(box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic")) == "unknown"
    assert ingest.sniff(webm(b"matroska")[:64]) == "unknown"


@pytest.mark.parametrize(
    ("name", "data", "fmt"),
    [
        ("render_turntable_1.mp4", TURNTABLE_MP4, "mp4"),
        ("turntable.webm", webm(), "webm"),
        # A movie whose last box runs to the end of the file (size 0) is whole.
        ("t.mp4", FTYP + box(b"moov", b"\0" * 8) + b"\0\0\0\0mdat" + b"\1" * 40, "mp4"),
        # A live WebM's Segment has an unknown size (all ones): it runs to the end.
        ("t.webm", webm(segment=b"\x18\x53\x80\x67\xff" + b"\0" * 30), "webm"),
    ],
)
def test_a_real_video_is_downloaded_as_what_it_is(sandboxed, name, data, fmt):  # noqa: F811
    sandboxed.answer(200, data)
    downloaded = ingest.download(f"{sandboxed.url}/storage/{name}?sig=1")
    assert (downloaded.format, downloaded.bytes) == (fmt, len(data))
    assert downloaded.path.read_bytes() == data
    downloaded.path.unlink()


MP4_NO_MOOV = FTYP + box(b"mdat", b"\1" * 64)
MP4_NO_MEDIA = FTYP + box(b"moov", b"\0" * 64)
MP4_TINY_BOX = FTYP + b"\x00\x00\x00\x04moov" + b"\0" * 32
MP4_DAMAGED_KIND = FTYP + b"\x00\x00\x00\x10\xff\xfe\x00\x01" + b"\0" * 8
MP4_BAD_LARGE_SIZE = FTYP + b"\x00\x00\x00\x01mdat" + (8).to_bytes(8, "big") + b"\0" * 8
MP4_MANY_BOXES = FTYP + box(b"free", b"") * 70_000


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        # Not a video at all, named as one.
        ("t.mp4", b"GIF89a" + b"\0" * 40, "named .mp4, bytes look like gif"),
        ("t.webm", b"glTF\x02\x00\x00\x00" + b"\0" * 40, "named .webm, bytes look like glb"),
        ("t.mp4", b"<html>a login page</html>", "not what it claims"),
        # Containers of the right family that are not what browsers play as a video.
        ("t.mp4", box(b"ftyp", b"heic\x00\x00\x00\x00mif1heic") + b"\0" * 32, "brand 'heic'"),
        ("t.webm", webm(b"matroska"), "DocType 'matroska', not WebM"),
        # A video of one kind named as the other.
        ("t.webm", TURNTABLE_MP4, "named .webm, bytes look like mp4"),
        # Broken inside.
        ("t.mp4", TURNTABLE_MP4[:-100], "truncated: its 'mdat' box runs past"),
        ("t.mp4", MP4_NO_MOOV, "no 'moov' box"),
        ("t.mp4", MP4_NO_MEDIA, "no media data"),
        ("t.mp4", MP4_TINY_BOX, "'moov' box at byte 32 has a damaged size"),
        ("t.mp4", MP4_DAMAGED_KIND, "damaged box at byte 32"),
        ("t.mp4", MP4_BAD_LARGE_SIZE, "damaged size"),
        ("t.mp4", FTYP + b"\x00\x00", "a box header is cut off"),
        ("t.mp4", MP4_MANY_BOXES, "over 65,536 top-level boxes"),
        ("t.webm", webm() + b"\0" * 10, "padded"),
        ("t.webm", webm()[:-3], "truncated"),
        ("t.webm", webm(segment=ebml(b"\x1f\x43\xb6\x75", b"\0" * 8)), "no Segment"),
        (
            "t.webm",
            b"\x1a\x45\xdf\xa3\x01\xff\xff\xff\xff\xff\xff\xfe" + webm()[4:],
            "DocType 'none we can read'",
        ),
    ],
)
def test_a_file_pretending_to_be_a_video_is_refused_in_words(
    sandboxed,  # noqa: F811
    tmp_path,
    name,
    data,
    words,
):
    sandboxed.answer(200, data)
    with pytest.raises(ingest.AssetRefused, match=words):
        ingest.download(f"{sandboxed.url}/storage/{name}")
    assert leftovers(tmp_path) == []


# --- stored as the version's turntable ---------------------------------------------------------

pipeline = pytest.mark.django_db(transaction=True)


@pipeline
def test_a_video_render_becomes_the_versions_turntable_with_the_poster_beside_it(
    sandbox_server,
    source,  # noqa: F811
):
    from generations import tasks

    job = run(ask(source, "render", {"output": "video", "angle": "turntable_8"}))
    assert job.state == State.FINISHED, job.failure_reason
    version = job.result
    (video,) = version.assets.filter(role=Asset.Role.RENDER)
    assert video.format == "mp4"
    with video.file.open("rb") as fh:
        assert fh.read() == TURNTABLE_MP4
    assert posters.turntable(version.assets.all()) == video
    assert "turntable video" in job.description
    tasks.render_poster(version.pk)  # the poster task the pipeline queued
    assert version.assets.filter(role=Asset.Role.THUMBNAIL).exists()

    page = logged_in(source.owner).get(reverse("generations:detail", args=[version.pk]))
    body = page.content.decode()
    video_url = reverse("generations:asset-view", args=[version.pk, video.pk])
    assert f'<video src="{video_url}" autoplay loop muted playsinline' in body
    assert f'poster="{poster_url(version)}"' in body
    served = logged_in(source.owner).get(video_url)
    assert served["Content-Type"] == "video/mp4"  # nosniff: the type must be the true one
    assert b"".join(served.streaming_content) == TURNTABLE_MP4


# --- played where models are shown -----------------------------------------------------------


def mp4_turntable(generation):
    from django.core.files.base import ContentFile

    return Asset.objects.create(
        generation=generation,
        role="render",
        file=ContentFile(TURNTABLE_MP4, name="t.mp4"),
        format="mp4",
        original_name="0:render:turntable.mp4",
        bytes=len(TURNTABLE_MP4),
        sha256="0" * 64,
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("media")
def test_the_queue_plays_a_video_over_its_poster_and_a_gif_as_before(member, reviewer):
    from tests.test_posters import green_box_glb

    filmed = make_finished(member, "a filmed box", glb_bytes=green_box_glb())
    turning = make_finished(member, "a turning box", glb_bytes=green_box_glb())
    for generation in (filmed, turning):
        posters.make_poster(generation)
    video = mp4_turntable(filmed)
    gif = add_turntable(turning, "gif")
    page = logged_in(reviewer).get(reverse("reviews:queue")).content.decode()
    video_url = reverse("generations:asset-view", args=[filmed.pk, video.pk])
    assert (
        f'<video src="{video_url}" autoplay loop muted playsinline poster="{poster_url(filmed)}"'
    ) in page
    gif_url = reverse("generations:asset-view", args=[turning.pk, gif.pk])
    assert f'<img src="{gif_url}" alt="Turntable of generation {turning.pk}"' in page
    assert "controls" not in page.split(video_url)[1].split(">")[0]


@pytest.mark.django_db
@pytest.mark.usefixtures("media")
def test_the_library_plays_a_video_over_its_poster(member, second_member, admin_user):
    from tests.test_posters import green_box_glb

    filmed = make_finished(member, "a filmed box", glb_bytes=green_box_glb())
    posters.make_poster(filmed)
    video = mp4_turntable(filmed)
    Review.objects.record_decision(filmed, admin_user, Decision.APPROVED, "fine")
    page = logged_in(second_member).get(reverse("library:index")).content.decode()
    video_url = reverse("generations:asset-view", args=[filmed.pk, video.pk])
    poster = poster_url(filmed)
    assert f'<video src="{video_url}" autoplay loop muted playsinline poster="{poster}"' in page
    served = logged_in(second_member).get(video_url)
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == TURNTABLE_MP4


@pytest.mark.django_db
def test_the_policy_lets_videos_play_from_our_own_origin_only(member):
    response = logged_in(member).get(reverse("generations:list"))
    directives = [d.strip() for d in response.headers["Content-Security-Policy"].split(";")]
    assert "media-src 'self'" in directives
