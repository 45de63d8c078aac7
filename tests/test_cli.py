"""The `studio` commands against the dashboard served by the test process (no workers):
what each sends, what it prints, and how it fails."""

import csv
import io

import pytest
from click.testing import CliRunner
from PIL import Image

from api.models import ApiToken
from credits.models import LedgerEntry
from generations.models import Generation, State
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


def test_batch_queues_each_row_and_a_rerun_queues_nothing_twice(run, doorbell, tmp_path):
    png_file(tmp_path / "crate.png")
    sheet = tmp_path / "props.csv"
    with open(sheet, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["prompt", "image", "provider", "enable_pbr"])
        writer.writerow(["a barrel", "", "hunyuan_rapid", "true"])
        writer.writerow(["", "crate.png", "hunyuan_rapid", ""])
        writer.writerow(["a lamp", "", "nope", ""])
    first = run("batch", str(sheet))
    assert first.exit_code == 1  # one row refused
    assert "2 queued, 1 refused" in first.stderr
    assert "Row 3" in first.stderr and "provider" in first.stderr
    assert Generation.objects.count() == 2
    assert Generation.objects.get(prompt="a barrel").options["enable_pbr"] is True
    assert Generation.objects.get(mode="image").images.count() == 1
    run("batch", str(sheet))
    assert Generation.objects.count() == 2


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


def test_the_csv_reader_keeps_options_as_written():
    from studio_cli.cli import _row_body

    row = next(csv.DictReader(io.StringIO("prompt,provider,face_count\nx,hunyuan_pro,40000\n")))
    assert _row_body(row, None) == {
        "provider": "hunyuan_pro",
        "options": {"face_count": "40000"},
        "prompt": "x",
    }
