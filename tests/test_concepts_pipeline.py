"""Concept jobs through the real pipeline against the sandbox over HTTP, with their faults.

Tasks run in this process (their doorbells call them directly); the dispatcher is
driven by hand, as in test_pipeline.py.
"""

import time
import uuid
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
import requests
from django.utils import timezone
from PIL import Image

from credits.models import LedgerEntry
from generations import concepts, tasks
from generations.models import ConceptJob, IllegalTransition, State
from tests.conftest import at_once
from tests.sandbox_control import set_faults, upstream_calls
from tests.test_pipeline import BAD_RESULT_FILES

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def inline_doorbells(monkeypatch):
    for task in (concepts.submit_concept, concepts.poll_concept, concepts.ingest_concept):
        monkeypatch.setattr(task, "delay", task)


def queue_job(owner, model="gemini_25_flash", count=2, options=None, **extra):
    return ConceptJob.objects.create_queued(
        owner=owner,
        image_model=model,
        prompt="a small brass robot, studio light",
        options=options or {},
        count=count,
        form_token=uuid.uuid4(),
        **extra,
    )


def drive(job, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_final or job.state == State.NEEDS_ATTENTION:
            return job
        ConceptJob.objects.filter(pk=job.pk, state=State.QUEUED).update(due_at=timezone.now())
        tasks.dispatch()
        time.sleep(0.05)
    job.refresh_from_db()
    raise AssertionError(f"concept job still {job.state} after {timeout} s")


def ledger(job):
    return [
        (e.kind, e.amount)
        for e in LedgerEntry.objects.filter(note__startswith=f"concept job {job.pk}:")
    ]


def test_a_prompt_becomes_stored_concept_images(sandbox_server, inline_doorbells, member):
    job = drive(queue_job(member, count=3))
    assert job.state == State.FINISHED, job.failure_reason
    stored = list(job.images.all())
    assert [image.position for image in stored] == [0, 1, 2]
    for image in stored:
        with image.file.open("rb") as fh:
            picture = Image.open(fh)
            picture.load()
        assert picture.size == (image.width, image.height)
        assert "storage" not in image.file.name  # ours, not the upstream's URL
    assert ledger(job) == [("hold", -15), ("release", 15), ("charge", -15)]
    submits = upstream_calls(sandbox_server, "submit")
    assert len(submits) == 1
    assert submits[0]["path"] == "/v1/images/gemini/2.5/flash/generate/"


def test_the_price_follows_the_resolution_and_the_count(sandbox_server, inline_doorbells, member):
    job = drive(queue_job(member, model="gemini_3_pro", count=2, options={"resolution": "4K"}))
    assert job.state == State.FINISHED
    assert job.credit_estimate == 160
    assert ledger(job)[-1] == ("charge", -160)


def test_an_edit_sends_the_chosen_image_and_is_an_edit_upstream(
    sandbox_server, inline_doorbells, member
):
    first = drive(queue_job(member, model="seedream_v5_lite", count=1))
    chosen = first.images.get()
    edit = drive(queue_job(member, model="seedream_v5_lite", count=1, edit_of=chosen))
    assert edit.state == State.FINISHED, edit.failure_reason
    assert (
        upstream_calls(sandbox_server, "submit")[-1]["path"] == "/v1/images/seedream/v5/lite/edit/"
    )
    assert [job.pk for job in edit.lineage()] == [first.pk, edit.pk]


def test_a_failed_job_is_refunded_once(sandbox_server, inline_doorbells, member):
    set_faults(sandbox_server, {"fail_rate": 1.0})
    job = drive(queue_job(member))
    assert job.state == State.FAILED
    assert job.failure_reason
    # Seen again (a redelivered poll, the sweep): still one refund.
    with pytest.raises(IllegalTransition):
        job.mark_failed("again")
    assert ledger(job) == [("hold", -10), ("release", 10), ("charge", -10), ("refund", 10)]
    assert not job.images.exists()


def test_finished_without_an_image_and_with_a_reason_is_a_refunded_failure(
    sandbox_server, inline_doorbells, member
):
    set_faults(sandbox_server, {"quirks": {"finished_no_asset_rate": 1.0}})
    job = drive(queue_job(member))
    assert job.state == State.FAILED
    assert ledger(job)[-1] == ("refund", 10)


def test_finished_without_an_image_for_a_while_keeps_polling(
    sandbox_server, inline_doorbells, member
):
    set_faults(sandbox_server, {"null_asset_polls": 2})
    job = drive(queue_job(member))
    assert job.state == State.FINISHED
    assert job.images.count() == 2
    assert len(upstream_calls(sandbox_server, "poll")) >= 3


def test_an_expired_url_is_refreshed_once_then_needs_attention(
    sandbox_server, inline_doorbells, member
):
    set_faults(sandbox_server, {"asset_ttl_seconds": 0})
    job = drive(queue_job(member))
    assert job.state == State.NEEDS_ATTENTION
    assert job.url_refreshes == 1
    assert "could not be fetched" in job.failure_reason
    assert not job.images.exists()
    # Charged upstream and not refunded: a person decides, the hold is not given back twice.
    assert ledger(job) == [("hold", -10), ("release", 10), ("charge", -10)]


def test_a_refused_submit_releases_the_hold(sandbox_server, inline_doorbells, member):
    requests.put(f"{sandbox_server.url}/_sandbox/wallet", json={"balance": "1.00"}, timeout=5)
    job = drive(queue_job(member))
    assert job.state == State.FAILED
    assert "credits" in job.failure_reason.lower()
    assert ledger(job) == [("hold", -10), ("release", 10)]
    assert len(upstream_calls(sandbox_server, "submit")) == 1


def test_a_lost_doorbell_is_submitted_once_by_the_dispatcher(
    sandbox_server, inline_doorbells, member, monkeypatch
):
    monkeypatch.setattr(concepts.submit_concept, "delay", lambda *args: None)  # lost
    job = queue_job(member)
    monkeypatch.setattr(concepts.submit_concept, "delay", concepts.submit_concept)
    job = drive(job)
    assert job.state == State.FINISHED
    assert len(upstream_calls(sandbox_server, "submit")) == 1


def test_the_ledger_and_the_wallet_agree_after_a_mixed_run(
    sandbox_server, inline_doorbells, member, monkeypatch
):
    from tests.test_pipeline import drive as drive_generation
    from tests.test_pipeline import queue as queue_generation

    for task in (tasks.submit_generation, tasks.poll_generation, tasks.ingest_generation):
        monkeypatch.setattr(task, "delay", task)
    before = tasks.client().wallet().balance
    ok = drive(queue_job(member, model="gemini_3_pro", count=2))
    generation = drive_generation(queue_generation(member))
    set_faults(sandbox_server, {"fail_rate": 1.0})
    failed = drive(queue_job(member, model="gemini_31_flash", count=1))
    after = tasks.client().wallet().balance
    assert (ok.state, generation.state, failed.state) == (
        State.FINISHED,
        State.FINISHED,
        State.FAILED,
    )
    spent = -sum(
        amount
        for kind, amount in ledger(ok)
        + ledger(failed)
        + [(e.kind, e.amount) for e in LedgerEntry.objects.filter(generation=generation)]
        if kind in ("charge", "refund")
    )
    assert spent == 100 + 35
    assert before - after == Decimal(spent)


def test_a_failure_reason_echoing_the_key_is_stored_without_it(
    sandbox_server, inline_doorbells, member
):
    from tests.conftest import SANDBOX_KEY

    set_faults(sandbox_server, {"echo_authorization": ["failure_reason"], "fail_rate": 1.0})
    job = drive(queue_job(member))
    assert job.state == State.FAILED
    assert job.failure_reason
    assert SANDBOX_KEY not in job.failure_reason


def test_an_unknown_task_asks_a_person_instead_of_polling_forever(
    sandbox_server, inline_doorbells, member
):
    job = queue_job(member)
    concepts.submit_concept(job.pk)
    ConceptJob.objects.filter(pk=job.pk).update(upstream_task_id=str(uuid.uuid4()))
    job = drive(job)
    assert job.state == State.NEEDS_ATTENTION
    assert "no longer answers" in job.failure_reason


@pytest.mark.parametrize("fault, words", BAD_RESULT_FILES)
def test_bad_image_files_are_refused_and_never_shown_as_done(
    sandbox_server, inline_doorbells, member, settings, fault, words
):
    settings.ASSET_MAX_BYTES = 2 * 1024 * 1024
    set_faults(sandbox_server, fault)
    job = drive(queue_job(member))
    assert job.state == State.NEEDS_ATTENTION
    assert words in job.failure_reason
    assert not job.images.exists()
    incoming = settings.MEDIA_ROOT / ".incoming"
    assert not incoming.exists() or not [p for p in incoming.iterdir() if p.is_file()]


def test_the_submit_delivered_five_times_at_once_submits_once(sandbox_server, member):
    job = queue_job(member)
    assert at_once(*[partial(concepts.submit_concept, job.pk)] * 5) == []
    job.refresh_from_db()
    assert job.state == State.PENDING
    assert len(upstream_calls(sandbox_server, "submit")) == 1
    assert [kind for kind, _ in ledger(job)] == ["hold", "release", "charge"]


def test_a_double_click_at_once_makes_one_job_and_one_hold(sandbox_server, member, monkeypatch):
    monkeypatch.setattr(concepts.submit_concept, "delay", lambda *args: None)
    token = uuid.uuid4()

    def post():
        ConceptJob.objects.create_queued(
            owner=member,
            image_model="gemini_25_flash",
            prompt="p",
            options={},
            count=1,
            form_token=token,
        )

    assert at_once(post, post) == []
    job = ConceptJob.objects.get()
    assert ledger(job) == [("hold", -5)]


def test_ingest_delivered_five_times_at_once_stores_each_image_once(
    sandbox_server, member, monkeypatch
):
    rung = []
    monkeypatch.setattr(concepts.ingest_concept, "delay", lambda *args: rung.append(args))
    job = queue_job(member, count=3)
    concepts.submit_concept(job.pk)
    deadline = time.monotonic() + 10
    while not rung and time.monotonic() < deadline:
        ConceptJob.objects.filter(pk=job.pk).update(due_at=timezone.now())
        concepts.poll_concept(job.pk)
        time.sleep(0.1)
    # The doorbell's message, delivered five times at once (acks_late redelivers).
    assert at_once(*[partial(concepts.ingest_concept, *rung[0])] * 5) == []
    job.refresh_from_db()
    assert job.state == State.FINISHED
    assert sorted(job.images.values_list("position", flat=True)) == [0, 1, 2]
    folder = Path(job.images.first().file.path).parent
    assert len(list(folder.iterdir())) == 3  # no second copy of any image


@pytest.mark.parametrize(
    "fault, words",
    [
        ({"drop_after_receive": "submit"}, "broke after the request was sent"),
        ({"malformed": {"submit": "missing_task_id"}}, "no task id"),
    ],
)
def test_a_submit_whose_outcome_is_unknown_is_never_resent(
    sandbox_server, inline_doorbells, member, fault, words
):
    set_faults(sandbox_server, fault)
    job = drive(queue_job(member))
    assert job.state == State.NEEDS_ATTENTION
    assert words in job.failure_reason
    assert len(upstream_calls(sandbox_server, "submit")) == 1
    assert ledger(job) == [("hold", -10)]  # held until a person decides


def test_a_job_still_running_after_an_hour_asks_a_person(sandbox_server, member):
    job = queue_job(member)
    concepts.submit_concept(job.pk)
    ConceptJob.objects.filter(pk=job.pk).update(
        created_at=timezone.now() - timezone.timedelta(hours=2)
    )
    calls = len(upstream_calls(sandbox_server))
    concepts.poll_concept(job.pk)
    job.refresh_from_db()
    assert job.state == State.NEEDS_ATTENTION
    assert "Still not finished" in job.failure_reason
    assert len(upstream_calls(sandbox_server)) == calls  # no poll spent on it
