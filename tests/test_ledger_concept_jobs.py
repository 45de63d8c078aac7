"""A concept job's credits are tied to it in the ledger by a column (``concept_job``),
one hold, charge, release and refund each at most, as a conversion's are."""

import uuid

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from credits.models import LedgerEntry
from generations.models import POLLING_STATES, ConceptJob, State

pytestmark = pytest.mark.django_db


def queue_job(owner):
    return ConceptJob.objects.create_queued(
        owner=owner,
        image_model="gemini_25_flash",
        prompt="a small brass robot",
        options={},
        count=2,
        form_token=uuid.uuid4(),
    )


def kinds(job):
    return [(e.kind, e.amount) for e in LedgerEntry.objects.filter(concept_job=job)]


def test_every_entry_of_a_job_is_tied_to_it_and_named_in_its_note(member):
    job = queue_job(member)
    price = job.credit_estimate
    job.claim_for_submit(timezone.now())
    job.mark_submitted("task-image-0001", timezone.now())
    job.start_ingest(["https://example.invalid/a.png"], timezone.now())
    job.refresh_from_db()
    job.mark_failed("the images never came")
    assert kinds(job) == [
        ("hold", -price),
        ("release", price),
        ("charge", -price),
        ("refund", price),
    ]
    assert list(job.ledger.values_list("kind", flat=True)) == [
        "hold",
        "release",
        "charge",
        "refund",
    ]
    entries = LedgerEntry.objects.filter(concept_job=job)
    assert all(e.note.startswith(f"concept job {job.pk}: ") for e in entries)
    assert all(e.generation_id is None and e.conversion_id is None for e in entries)
    assert all(e.provider == "gemini_25_flash" and e.user == member for e in entries)
    assert job.ledger.balance() == 0


def test_a_second_entry_of_a_kind_for_one_job_is_a_no_op(member):
    job = queue_job(member)
    job._ledger(LedgerEntry.Kind.HOLD, -job.credit_estimate, "held again")
    assert kinds(job) == [("hold", -job.credit_estimate)]
    # The database itself refuses it, whoever writes.
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            kind=LedgerEntry.Kind.HOLD, concept_job=job, user=member, amount=-1
        )
    # Adjustments are not limited: an admin may correct a job's account more than once.
    for _ in range(2):
        LedgerEntry.objects.create(
            kind=LedgerEntry.Kind.ADJUSTMENT, concept_job=job, user=member, amount=1
        )
    assert job.ledger.filter(kind="adjustment").count() == 2


def test_two_jobs_each_have_their_own_hold(member):
    first, second = queue_job(member), queue_job(member)
    assert kinds(first) == [("hold", -first.credit_estimate)]
    assert kinds(second) == [("hold", -second.credit_estimate)]


def test_a_job_refused_at_submit_releases_its_hold_once(member):
    job = queue_job(member)
    job.claim_for_submit(timezone.now())
    job.mark_rejected("402: not enough credits")
    job._ledger(LedgerEntry.Kind.RELEASE, job.credit_estimate, "released again")
    assert kinds(job) == [("hold", -job.credit_estimate), ("release", job.credit_estimate)]


def test_a_concept_job_with_entries_cannot_be_deleted(member):
    from django.db.models import ProtectedError

    job = queue_job(member)
    with pytest.raises(ProtectedError):
        job.delete()


def test_the_ledger_admin_lists_and_opens_a_concept_jobs_entries(client, member, django_user_model):
    job = queue_job(member)
    job.claim_for_submit(timezone.now())
    job.mark_submitted("task-image-0002", timezone.now())
    job.mark_needs_attention("lost", POLLING_STATES)
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root")
    client.force_login(root)
    changelist = client.get(reverse("admin:credits_ledgerentry_changelist"))
    assert changelist.status_code == 200
    assert "Concept job" in changelist.content.decode()
    assert str(job) in changelist.content.decode()
    entry = job.ledger.get(kind="charge")
    change = client.get(reverse("admin:credits_ledgerentry_change", args=[entry.pk]))
    assert change.status_code == 200
    assert client.get(reverse("admin:credits_ledgerentry_add")).status_code == 200
    assert job.state == State.NEEDS_ATTENTION
