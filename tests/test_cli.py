"""The `studio` commands against the dashboard served by the test process (no workers):
what each sends, what it prints, and how it fails."""

import csv

import pytest
from click.testing import CliRunner
from PIL import Image

from api.models import ApiToken
from credits.models import LedgerEntry
from generations.models import Batch, Generation, State
from studio_cli.cli import main
from tests.api_support import *  # noqa: F403 (its fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def short_connections():
    """The live server answers each request in a thread of its own: close each thread's
    connection when its request ends, or the test database cannot be dropped."""
    from django.db import connections

    saved = connections.settings["default"]["CONN_MAX_AGE"]
    connections.settings["default"]["CONN_MAX_AGE"] = 0
    yield
    connections.settings["default"]["CONN_MAX_AGE"] = saved


@pytest.fixture
def run(live_server, member):
    _token, secret = ApiToken.objects.issue(member, "cli")

    def run(*args):
        env = {"STUDIO_URL": live_server.url, "STUDIO_TOKEN": secret}
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return run


def png_file(path):
    Image.new("RGB", (256, 256), (10, 120, 200)).save(path, "PNG")
    return path


def test_generate_queues_one_and_prints_its_id(run, doorbell):
    result = run("generate", "a red chair", "-o", "enable_pbr=true")
    assert result.exit_code == 0, result.output
    generation = Generation.objects.get()
    assert result.stdout.strip() == str(generation.pk)
    assert "queued" in result.stderr and "credits held" in result.stderr
    assert generation.prompt == "a red chair" and generation.options["enable_pbr"] is True


def test_generate_sends_images_and_picks_the_mode(run, doorbell, tmp_path):
    image = png_file(tmp_path / "ref.png")
    result = run("generate", "-p", "hunyuan_rapid", "-i", str(image))
    assert result.exit_code == 0, result.output
    generation = Generation.objects.get()
    assert generation.mode == "image" and generation.images.count() == 1


def test_generate_with_the_same_key_makes_one_generation(run, doorbell):
    assert run("generate", "a chair", "--key", "k1").exit_code == 0
    assert run("generate", "a chair", "--key", "k1").exit_code == 0
    assert Generation.objects.count() == 1


def test_a_refused_option_is_shown_on_its_field_with_exit_2(run):
    result = run("generate", "a chair", "-o", "colour=red")
    assert result.exit_code == 2
    assert "options.colour" in result.stderr and "Not an option" in result.stderr
    assert not Generation.objects.exists()


def test_generate_wants_the_url_and_token(live_server):
    result = CliRunner().invoke(main, ["status"], env={"STUDIO_URL": "", "STUDIO_TOKEN": ""})
    assert result.exit_code == 1
    assert "STUDIO_URL" in result.stderr


def write_sheet(path, *rows):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["prompt", "image", "provider", "enable_pbr"])
        writer.writerows(rows)
    return str(path)


def test_batch_with_a_bad_row_queues_nothing_and_says_which(run, tmp_path):
    sheet = write_sheet(
        tmp_path / "props.csv",
        ["a barrel", "", "hunyuan_rapid", "true"],
        ["a lamp", "", "nope", ""],
    )
    result = run("batch", sheet)
    assert result.exit_code == 2
    assert "Row 2:" in result.stderr and "provider" in result.stderr
    assert "nothing was queued" in result.stderr
    assert not Generation.objects.exists()


def test_batch_queues_every_row_with_its_images_in_several_requests(run, doorbell, tmp_path):
    rows = []
    for n in range(9):  # with the CSV, more files than one request carries
        png_file(tmp_path / f"crate-{n}.png")
        rows.append(["", f"crate-{n}.png", "hunyuan_rapid", ""])
    rows.append(["a barrel", "", "", "true"])
    result = run("batch", write_sheet(tmp_path / "props.csv", *rows), "-o", "enable_pbr=false")
    assert result.exit_code == 0, result.output
    assert "10 generations queued for 370 credits" in result.stderr
    batch = Batch.objects.get()
    assert result.stdout.strip() == str(batch.pk)
    assert Generation.objects.count() == 10 and batch.images.count() == 9
    assert Generation.objects.get(prompt="a barrel").options["enable_pbr"] is True
    assert Generation.objects.filter(mode="image", options__enable_pbr=False).count() == 9


def test_batch_refuses_an_image_that_is_not_beside_the_csv(run, tmp_path):
    result = run("batch", write_sheet(tmp_path / "props.csv", ["", "missing.png", "", ""]))
    assert result.exit_code == 1 and "missing.png" in result.stderr


def test_status_lists_my_generations(run, member, second_member, doorbell):
    run("generate", "a chair")
    Generation.objects.create(
        owner=second_member, provider="hunyuan_rapid", credit_estimate=35, prompt="not mine"
    )
    result = run("status")
    assert result.exit_code == 0
    assert "a chair" in result.stdout and "not mine" not in result.stdout


def test_cancel_releases_the_hold_and_a_sent_one_says_why(run, doorbell):
    run("generate", "a chair")
    run("generate", "a lamp")
    first, second = Generation.objects.order_by("pk")
    result = run("cancel", str(first.pk))
    assert result.exit_code == 0 and "canceled" in result.stderr
    assert LedgerEntry.objects.filter(generation=first, kind="release").exists()
    Generation.objects.filter(pk=second.pk).update(state=State.IN_PROGRESS)
    late = run("cancel", str(second.pk))
    assert late.exit_code == 1 and "no cancel" in late.stderr


def test_download_refuses_one_not_finished(run, doorbell, tmp_path):
    run("generate", "a chair")
    generation = Generation.objects.get()
    result = run("download", str(generation.pk), "--out", str(tmp_path))
    assert result.exit_code == 1 and "nothing to download" in result.stderr


def test_download_batch_unpacks_every_finished_model(run, member, tmp_path):
    from tests.test_reviews_support import GLB_STUB, make_finished

    batch = Batch.objects.create(owner=member, name="x", status=Batch.Status.SUBMITTED)
    done = make_finished(member)
    failed = Generation.objects.create(
        owner=member, provider="hunyuan_rapid", credit_estimate=35, state=State.FAILED
    )
    batch.items.create(row=1, generation=done)
    batch.items.create(row=2, generation=failed)
    result = run("download-batch", str(batch.pk), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    path = tmp_path / "out" / f"row-001-generation-{done.pk}.glb"
    assert result.stdout.strip() == str(path)
    assert path.read_bytes() == GLB_STUB
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [path.name]
