"""`studio concept`, `studio concept-model` and `studio finish` against the dashboard
served by the test process (no workers): what each sends, what it prints, and that every
refusal is one line with a non-zero exit."""

from datetime import timedelta

import pytest
from click.testing import CliRunner
from django.core.files.base import ContentFile
from django.utils import timezone

from api.models import ApiToken
from credits.models import Budget, LedgerEntry
from generations import concepts, tasks
from generations.models import ConceptImage, ConceptJob, Conversion, Generation, State
from studio_cli.cli import main
from tests.api_support import *  # noqa: F403 (its fixtures)
from tests.api_support import png
from tests.test_cli import png_file, short_connections  # noqa: F401 (a fixture)
from tests.test_concepts_views import finished_job
from tests.test_reviews_support import make_finished

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def run(live_server, member):
    _token, secret = ApiToken.objects.issue(member, "cli")

    def run(*args):
        env = {"STUDIO_URL": live_server.url, "STUDIO_TOKEN": secret}
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return run


@pytest.fixture
def rung(monkeypatch):
    rung = []
    monkeypatch.setattr(concepts.submit_concept, "delay", lambda *a: rung.append(("concept", a)))
    monkeypatch.setattr(tasks.submit_generation, "delay", lambda *a: rung.append(("model", a)))
    monkeypatch.setattr(tasks.submit_conversion, "delay", lambda *a: rung.append(("step", a)))
    return rung


def one_line(result):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- studio concept ----------------------------------------------------------------------------


def test_concept_queues_a_job_with_its_options_and_images(run, rung, tmp_path):
    image = png_file(tmp_path / "ref.png")
    result = run(
        "concept", "a ceramic fox", "--model", "gemini_3_pro", "--count", "3",
        "-o", "resolution=4K", "--image", str(image),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    job = ConceptJob.objects.get()
    assert result.stdout.strip() == str(job.pk)
    assert "240 credits held" in result.stderr
    assert (job.image_model, job.count, job.options["resolution"]) == ("gemini_3_pro", 3, "4K")
    assert job.references.count() == 1 and rung == [("concept", (job.pk,))]


def test_concept_with_the_same_key_makes_one_job(run, rung):
    assert run("concept", "a fox", "--key", "k1").exit_code == 0
    assert run("concept", "a fox", "--key", "k1").exit_code == 0
    assert ConceptJob.objects.count() == 1
    reused = run("concept", "a wolf", "--key", "k1")
    assert reused.exit_code == 1
    assert "already used for a different request" in one_line(reused)
    assert ConceptJob.objects.count() == 1


def test_concept_wait_out_downloads_every_image(run, monkeypatch, tmp_path):
    def finish_at_once(job_id):  # the pipeline's end, where the doorbell would start it
        job = ConceptJob.objects.get(pk=job_id)
        for position in range(job.count):
            ConceptImage.objects.create(
                job=job,
                position=position,
                file=ContentFile(png(color=(60 * position, 0, 0)), name="c.png"),
                format="png",
                width=256,
                height=256,
                bytes=100,
            )
        ConceptJob.objects.filter(pk=job_id).update(state=State.FINISHED, progress=100)

    monkeypatch.setattr(concepts.submit_concept, "delay", finish_at_once)
    monkeypatch.setattr("studio_cli.cli.POLL_SECONDS", 0.05)
    result = run("concept", "a fox", "-n", "2", "--wait", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    job = ConceptJob.objects.get()
    paths = result.stdout.split()
    assert paths == [
        str(tmp_path / "out" / f"concept-{job.pk}-{i.pk}.png") for i in job.images.all()
    ]
    for path, image in zip(paths, job.images.all(), strict=True):
        assert open(path, "rb").read() == image.file.open("rb").read()
    assert f"studio concept-model {job.pk} --pick" in result.stderr


def test_concept_wait_says_why_a_job_failed(run, monkeypatch):
    def fail(job_id):
        ConceptJob.objects.filter(pk=job_id).update(
            state=State.FAILED, failure_reason="Refused by the safety filter."
        )

    monkeypatch.setattr(concepts.submit_concept, "delay", fail)
    result = run("concept", "a fox", "--wait")
    assert result.exit_code == 1
    assert "failed: Refused by the safety filter." in result.stderr.splitlines()[-1]


@pytest.mark.parametrize(
    "args, words, code",
    [
        (["-m", "dalle"], "image_model: Unknown image model", 2),
        (["-o", "resolution=8K"], "options.resolution: Select a valid choice", 2),
        (["-o", "colour=red"], "options.colour: Not an option of Gemini 3.1 Flash", 2),
        (["--edit-of", "999999"], "edit_of: No concept image with this id", 2),
    ],
)
def test_concept_refusals_are_one_line(run, rung, args, words, code):
    result = run("concept", "a fox", *args)
    assert result.exit_code == code
    assert words in one_line(result)
    assert not ConceptJob.objects.exists()


def test_concept_over_the_budget_is_one_line(run, member, rung):
    Budget.objects.create(user=member, monthly_limit=20)
    result = run("concept", "a fox", "-m", "gemini_3_pro")
    assert result.exit_code == 1
    assert "budget" in one_line(result).lower()
    assert not LedgerEntry.objects.exists()


# --- studio concept-model ----------------------------------------------------------------------


def test_concept_model_makes_a_generation_of_the_pick(run, member, rung):
    job = finished_job(member)
    chosen = job.images.last()
    result = run("concept-model", str(job.pk), "--pick", str(chosen.pk), "-p", "trellis2")
    assert result.exit_code == 0, result.output
    generation = Generation.objects.get()
    assert result.stdout.strip() == str(generation.pk)
    assert f"queued from concept job {job.pk}" in result.stderr
    assert (generation.provider, generation.mode) == ("trellis2", "image")
    assert generation.concept_picks.get().image == chosen


def test_concept_model_fills_views_from_slot_picks(run, member, rung):
    job = finished_job(member)
    front, back = job.images.all()
    result = run(
        "concept-model", str(job.pk), "--pick", f"front={front.pk}", "--pick", f"back={back.pk}",
        "-p", "hunyuan_pro", "-e", "3.1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    generation = Generation.objects.get()
    assert generation.mode == "multiview"
    assert sorted(generation.images.values_list("slot", flat=True)) == ["back", "front"]


def test_concept_model_refusals_are_one_line(run, member, second_member, rung):
    job = finished_job(member)
    pick = str(job.images.first().pk)
    cases = [
        (["999999", "--pick", pick, "-p", "trellis2"], "No concept job 999999 that you may see", 1),
        ([str(job.pk), "--pick", pick, "-p", "nobody"], "provider: Unknown provider", 2),
        ([str(job.pk), "--pick", "999999", "-p", "trellis2"], "image: Select a valid choice", 2),
    ]
    for args, words, code in cases:
        result = run("concept-model", *args)
        assert result.exit_code == code, (args, result.output)
        assert words in one_line(result)
    # A usage error is click's: the usage, then the reason on the last line.
    bare = run(
        "concept-model", str(job.pk), "--pick", pick, "-p", "hunyuan_pro", "--mode", "multiview"
    )
    assert bare.exit_code == 2
    assert "write SLOT=IMAGE_ID" in bare.stderr.strip().splitlines()[-1]
    theirs = finished_job(second_member)
    refused = run(
        "concept-model", str(theirs.pk), "--pick", str(theirs.images.first().pk), "-p", "trellis2"
    )
    assert refused.exit_code == 1 and "Only the owner" in one_line(refused)
    assert not Generation.objects.exists()


def test_concept_model_of_a_job_not_finished_says_so(run, member, rung):
    job = ConceptJob.objects.create(
        owner=member, image_model="gemini_3_pro", prompt="x", credit_estimate=50
    )
    result = run("concept-model", str(job.pk), "--pick", "1", "-p", "trellis2")
    assert result.exit_code == 1
    assert "is queued" in one_line(result)


# --- studio finish -----------------------------------------------------------------------------


def test_finish_asks_for_a_step_with_its_options(run, member, rung):
    generation = make_finished(member)
    result = run("finish", str(generation.pk), "remesh", "-o", "polygons=quads")
    assert result.exit_code == 0, result.output
    job = Conversion.objects.get()
    assert result.stdout.strip() == str(job.pk)
    assert "(remesh)" in result.stderr and "20 credits held" in result.stderr
    assert job.options["polygons"] == "quads" and job.kind == "remesh"


def test_finish_wait_out_downloads_the_new_version(run, member, monkeypatch, tmp_path):
    from tests.test_reviews_support import GLB_STUB

    generation = make_finished(member)

    def finish_at_once(job_id):  # the step's end: a new version holding a model
        job = Conversion.objects.get(pk=job_id)
        version = make_finished(member)
        Generation.objects.filter(pk=version.pk).update(previous_version=generation)
        Conversion.objects.filter(pk=job.pk).update(state=State.FINISHED, result=version)

    monkeypatch.setattr(tasks.submit_conversion, "delay", finish_at_once)
    monkeypatch.setattr("studio_cli.cli.POLL_SECONDS", 0.05)
    result = run("finish", str(generation.pk), "optimize", "--wait", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    version = Conversion.objects.get().result
    path = tmp_path / f"generation-{version.pk}.glb"
    assert result.stdout.strip() == str(path)
    assert path.read_bytes() == GLB_STUB


def test_finish_refusals_are_one_line(run, member, rung):
    generation = make_finished(member)
    stale = make_finished(member, upstream_done_at=timezone.now() - timedelta(hours=30))
    queued = Generation.objects.create(owner=member, provider="hunyuan_rapid", credit_estimate=35)
    cases = [
        ([str(generation.pk), "polish"], "No such finishing step", 1),
        ([str(generation.pk), "render", "-o", "angle=sideways"], "angle: Select a valid choice", 2),
        ([str(stale.pk), "render"], "takes only a URL", 1),
        ([str(queued.pk), "optimize"], "Only a finished model can be finished further", 1),
        (["999999", "optimize"], "No generation 999999 that you may see", 1),
    ]
    for args, words, code in cases:
        result = run("finish", *args)
        assert result.exit_code == code, (args, result.output)
        assert words in one_line(result), args
    assert not Conversion.objects.exists()


def test_finish_over_the_budget_is_one_line(run, member, rung):
    Budget.objects.create(user=member, monthly_limit=50)
    result = run("finish", str(make_finished(member).pk), "repair", "-o", "hollow=true")
    assert result.exit_code == 1
    assert "budget" in one_line(result).lower()
    assert not Conversion.objects.exists()
