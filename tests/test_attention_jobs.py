"""Admins resolve every kind of upstream job that needs attention: generations,
conversions and finishing steps, and concept jobs.

The page lists all three with their facts; each is resolved by giving its upstream task
id (polled again, its hold becoming the charge if it never was one), marking it lost (its
credits back once) or resubmitting it (only when never charged). A conversion's or
concept job's poll that keeps failing, or a task the upstream does not know, lands here
instead of being retried forever.
"""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from generations import tasks
from generations.models import (
    POLLING_STATES,
    ConceptJob,
    Conversion,
    Generation,
    IllegalTransition,
    State,
)
from reviews.models import AuditLog
from tests.conftest import at_once, rapid_generation


@pytest.fixture
def step_doorbells(monkeypatch):
    """A generation's and a conversion's .delay() run their task here and now."""
    for task in (
        tasks.submit_generation,
        tasks.poll_generation,
        tasks.ingest_generation,
        tasks.submit_conversion,
        tasks.poll_conversion,
    ):
        monkeypatch.setattr(task, "delay", task)


@pytest.fixture
def concept_doorbells(monkeypatch):
    """A concept job's .delay() runs its task here and now."""
    from generations import concepts

    for task in (concepts.submit_concept, concepts.poll_concept, concepts.ingest_concept):
        monkeypatch.setattr(task, "delay", task)


pytestmark = pytest.mark.django_db

TASK_ID = "0b7c1a52-aaaa-bbbb-cccc-1234567890ab"


def stuck_step(owner, charged=False):
    """A remesh step in NEEDS_ATTENTION: its submit's outcome unknown (held, never
    charged), or, ``charged``, a task the upstream stopped answering for."""
    source = rapid_generation(owner, prompt="a chair", state=State.FINISHED)
    now = timezone.now()
    job = Conversion.objects.create(
        generation=source,
        requested_by=owner,
        kind=Conversion.Kind.REMESH,
        options={"polygons": "quads", "face_limit": 2000},
        output_format="glb",
        via=Conversion.Via.UPSTREAM,
        credit_estimate=20,
        due_at=now,
    )
    job.hold("held for remesh")
    job.claim_for_submit(now + timedelta(minutes=2))
    if charged:
        job.mark_submitted("task-remesh-0001", now)
        job.mark_needs_attention("The upstream no longer answers for task.", POLLING_STATES)
    else:
        job.mark_needs_attention("The convert request's outcome is unknown: read timeout.")
    return job


def stuck_concept(owner, charged=False):
    """A concept job in NEEDS_ATTENTION, as ``stuck_step``."""
    job = ConceptJob.objects.create_queued(
        owner=owner,
        image_model="gemini_25_flash",
        prompt="a small brass robot",
        options={},
        count=2,
        form_token=uuid.uuid4(),
    )
    now = timezone.now()
    job.claim_for_submit(now + timedelta(minutes=2))
    if charged:
        job.mark_submitted("task-image-0001", now)
        job.mark_needs_attention("The upstream no longer answers for task.", POLLING_STATES)
    else:
        job.mark_needs_attention("The submit's outcome is unknown: read timeout.")
    return job


def stuck_generation(owner):
    generation = Generation.objects.create_queued(
        owner=owner, provider="hunyuan_rapid", mode="text", prompt="a lamp",
        options={}, form_token=uuid.uuid4(),
    )  # fmt: skip
    generation.claim_for_submit()
    generation.mark_needs_attention("The submit's outcome is unknown: read timeout.")
    return generation


MAKERS = {"conversion": stuck_step, "concept": stuck_concept}


def fresh(job):
    return type(job).objects.get(pk=job.pk)


def ledger(job):
    return [(e.kind, e.amount) for e in job.ledger.order_by("id")]


def resolve(client, kind, job, **data):
    url = reverse("generations:attention-resolve-job", args=[kind, job.pk])
    return client.post(url, data)


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


# --- the page ---------------------------------------------------------------------------


def test_the_page_lists_each_kind_with_its_facts(admin_client, member):
    generation = stuck_generation(member)
    step = stuck_step(member, charged=True)
    concept = stuck_concept(member)
    page = admin_client.get(reverse("generations:attention"))
    assert page.status_code == 200
    html = page.content.decode()
    assert f'id="attention-{generation.pk}"' in html
    assert f'id="attention-conversion-{step.pk}"' in html
    assert f'id="attention-concept-{concept.pk}"' in html
    rows = {row.key: row for row in page.context["rows"]}
    assert rows[f"attention-conversion-{step.pk}"].what == "Remesh"
    assert rows[f"attention-conversion-{step.pk}"].charged
    assert not rows[f"attention-concept-{concept.pk}"].charged
    assert "Remeshed to quads, at most 2,000 faces" in html
    assert "a small brass robot" in html
    assert "The upstream no longer answers for task." in html
    assert "read timeout" in html
    assert f"{step.credit_estimate} credits charged" in html
    assert f"{concept.credit_estimate} credits held" in html
    assert reverse("generations:detail", args=[step.generation_id]) in html
    assert reverse("generations:concept", args=[concept.pk]) in html
    assert reverse("generations:attention-resolve-job", args=["conversion", step.pk]) in html
    assert reverse("generations:attention-resolve-job", args=["concept", concept.pk]) in html
    assert all(row.owner == member for row in page.context["rows"])
    assert html.count(f"· {member.get_username()}") == 3  # whose credits they are
    # A charged job cannot be resubmitted: the choice is there, disabled, with why.
    assert "not possible, it was charged upstream" in html


def test_the_page_reads_the_same_number_of_queries_for_any_number_of_rows(admin_client, member):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(reverse("generations:attention")).status_code == 200
        return len(captured)

    stuck_generation(member), stuck_step(member), stuck_concept(member)
    few = queries()
    for _ in range(3):
        stuck_generation(member), stuck_step(member, charged=True), stuck_concept(member)
    assert queries() == few


@pytest.mark.parametrize("who", ["member", "second_member", "reviewer", "outsider"])
@pytest.mark.parametrize("kind", ["conversion", "concept"])
def test_only_admins_may_resolve_a_job(client, request, member, who, kind):
    job = MAKERS[kind](member)
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("generations:attention")).status_code == 403
    assert resolve(client, kind, job, action="lost", note="x").status_code == 403
    assert fresh(job).state == State.NEEDS_ATTENTION


def test_anonymous_is_sent_to_login(client, member):
    response = resolve(client, "conversion", stuck_step(member), action="lost", note="x")
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_an_unknown_kind_or_row_is_not_found(admin_client, member):
    job = stuck_step(member)
    assert resolve(admin_client, "generation", job, action="resubmit").status_code == 404
    assert resolve(admin_client, "asset", job, action="resubmit").status_code == 404
    url = reverse("generations:attention-resolve-job", args=["concept", 987654])
    assert admin_client.post(url, {"action": "resubmit"}).status_code == 404
    assert fresh(job).state == State.NEEDS_ATTENTION


@pytest.mark.parametrize("kind", ["conversion", "concept"])
def test_a_bad_resolution_is_refused_with_a_reason_and_changes_nothing(admin_client, member, kind):
    job = MAKERS[kind](member)
    response = resolve(admin_client, kind, job, action="task_id", task_id="x'; DROP")
    assert response.status_code == 400
    assert "letters, digits or dashes" in " ".join(response.context["form"].errors["task_id"])
    assert f"attention-{kind}-{job.pk}" in response.content.decode()
    response = resolve(admin_client, kind, job, action="lost", note="")
    assert response.status_code == 400
    assert fresh(job).state == State.NEEDS_ATTENTION
    assert ledger(job) == [("hold", -job.credit_estimate)]


# --- the three resolutions --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["conversion", "concept"])
def test_a_task_id_for_a_job_never_charged_polls_it_and_charges_it_once(admin_client, member, kind):
    job = MAKERS[kind](member)
    price = job.credit_estimate
    response = resolve(admin_client, kind, job, action="task_id", task_id=TASK_ID, note="found")
    assert response.status_code == 302
    job = fresh(job)
    assert (job.state, job.upstream_task_id, job.failure_reason) == (State.PENDING, TASK_ID, "")
    assert job.due_at <= timezone.now()
    assert job.resolved_at is not None
    assert ledger(job) == [("hold", -price), ("release", price), ("charge", -price)]
    # The same post again (a double click) changes nothing.
    resolve(admin_client, kind, job, action="task_id", task_id=TASK_ID)
    assert ledger(job) == [("hold", -price), ("release", price), ("charge", -price)]


@pytest.mark.parametrize("kind", ["conversion", "concept"])
def test_a_task_id_for_a_charged_job_charges_nothing_more(admin_client, member, kind):
    job = MAKERS[kind](member, charged=True)
    before = ledger(job)
    resolve(admin_client, kind, job, action="task_id", task_id=TASK_ID)
    job = fresh(job)
    assert (job.state, job.upstream_task_id) == (State.PENDING, TASK_ID)
    assert ledger(job) == before


@pytest.mark.parametrize("charged", [False, True])
@pytest.mark.parametrize("kind", ["conversion", "concept"])
def test_a_job_marked_lost_fails_and_gives_its_credits_back_once(
    admin_client, member, kind, charged
):
    job = MAKERS[kind](member, charged=charged)
    price = job.credit_estimate
    resolve(admin_client, kind, job, action="lost", note="not in the upstream's dashboard")
    url = reverse("generations:attention-resolve-job", args=[kind, job.pk])
    again = admin_client.post(url, {"action": "lost", "note": "twice"}, follow=True)
    assert "Not changed" in again.content.decode()
    job = fresh(job)
    assert job.state == State.FAILED
    assert job.failure_reason == "Marked lost by an admin: not in the upstream's dashboard"
    assert job.finished_at is not None
    given_back = ("refund", price) if charged else ("release", price)
    assert ledger(job)[-1] == given_back
    assert ledger(job).count(given_back) == 1
    assert job.ledger.balance() == 0


@pytest.mark.parametrize("kind", ["conversion", "concept"])
def test_resubmitting_queues_a_job_never_charged_with_its_hold_kept(admin_client, member, kind):
    job = MAKERS[kind](member)
    resolve(admin_client, kind, job, action="resubmit")
    job = fresh(job)
    assert (job.state, job.upstream_task_id, job.deliveries) == (State.QUEUED, "", 0)
    assert job.due_at <= timezone.now()
    assert ledger(job) == [("hold", -job.credit_estimate)]


@pytest.mark.parametrize("kind", ["conversion", "concept"])
def test_a_charged_job_is_never_resubmitted(admin_client, member, kind):
    job = MAKERS[kind](member, charged=True)
    before = ledger(job)
    url = reverse("generations:attention-resolve-job", args=[kind, job.pk])
    response = admin_client.post(url, {"action": "resubmit"}, follow=True)
    assert "was charged upstream" in response.content.decode()
    assert fresh(job).state == State.NEEDS_ATTENTION
    assert ledger(job) == before


@pytest.mark.parametrize(
    ("kind", "target"),
    [("conversion", "generations.conversion"), ("concept", "generations.conceptjob")],
)
def test_who_resolved_what_and_why_is_in_the_audit_log(
    admin_client, admin_user, member, kind, target
):
    job = MAKERS[kind](member)
    resolve(admin_client, kind, job, action="lost", note="the upstream has no such task")
    entry = AuditLog.objects.get(action="resolve:lost")
    assert (entry.actor, entry.target_type, entry.target_id) == (admin_user, target, str(job.pk))
    assert entry.details["note"] == "the upstream has no such task"
    assert entry.details["kind"] == kind
    assert f"#{job.pk}" in entry.summary


def test_a_generation_resolved_on_the_same_page_is_audited_as_before(
    admin_client, admin_user, member
):
    generation = stuck_generation(member)
    url = reverse("generations:attention-resolve", args=[generation.pk])
    admin_client.post(url, {"action": "lost", "note": "gone"})
    generation.refresh_from_db()
    assert generation.state == State.FAILED
    entry = AuditLog.objects.get(action="resolve:lost")
    assert (entry.actor, entry.target_type) == (admin_user, "generations.generation")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["conversion", "concept"])
def test_two_admins_at_once_resolve_a_job_once(member, kind):
    job = MAKERS[kind](member)
    price = job.credit_estimate
    twins = [fresh(job) for _ in range(4)]
    errors = at_once(
        lambda: twins[0].resolve_with_task_id(TASK_ID),
        lambda: twins[1].resolve_as_lost("gone"),
        lambda: twins[2].resolve_with_task_id(TASK_ID),
        lambda: twins[3].resolve_as_lost("gone"),
    )
    assert len(errors) == 3 and all("IllegalTransition" in e for e in errors)
    job = fresh(job)
    if job.state == State.PENDING:
        assert ledger(job) == [("hold", -price), ("release", price), ("charge", -price)]
    else:
        assert job.state == State.FAILED
        assert ledger(job) == [("hold", -price), ("release", price)]


def test_a_resolution_from_any_other_state_is_refused(member):
    job = stuck_step(member)
    job.resolve_by_resubmitting()
    for attempt in (
        lambda: job.resolve_with_task_id(TASK_ID),
        lambda: job.resolve_as_lost("x"),
        job.resolve_by_resubmitting,
    ):
        with pytest.raises(IllegalTransition):
            attempt()
    assert fresh(job).state == State.QUEUED


# --- the navigation's count ---------------------------------------------------------------


def test_the_navigation_counts_every_kind_for_admins_only(client, admin_user, member):
    stuck_generation(member), stuck_step(member), stuck_concept(member)
    client.force_login(admin_user)
    nav = client.get(reverse("home")).content.decode()
    assert 'data-testid="nav-attention"' in nav
    assert '3<span class="visually-hidden"> waiting)' in nav
    client.force_login(member)
    assert 'data-testid="nav-attention"' not in client.get(reverse("home")).content.decode()


def test_the_navigation_count_follows_a_conversion_and_a_resolution(admin_client, member):
    def count():
        html = admin_client.get(reverse("home")).content.decode()
        marker = '<span class="visually-hidden"> waiting)'
        if marker not in html:
            return 0
        return int(html.split(marker)[0].rsplit(">", 1)[1])

    job = stuck_step(member, charged=True)
    job.resolve_with_task_id(TASK_ID)  # polling again
    assert count() == 0
    # An UPDATE sends no signal: a conversion's transitions bump the data version themselves.
    fresh(job).mark_needs_attention("lost again", POLLING_STATES)
    assert count() == 1
    concept = stuck_concept(member)
    assert count() == 2
    resolve(admin_client, "concept", concept, action="lost", note="gone")
    assert count() == 1
    resolve(admin_client, "conversion", job, action="task_id", task_id=TASK_ID)
    assert count() == 0


# --- bounded polling, without the upstream ------------------------------------------------


class _Refusing:
    """An upstream client whose status calls raise ``error``."""

    def __init__(self, error):
        self.error = error
        self.calls = 0

    def status(self, task_id):
        self.calls += 1
        raise self.error


def polling_step(owner):
    job = stuck_step(owner)
    job.resolve_with_task_id(TASK_ID)
    return fresh(job)


def polling_concept(owner):
    job = stuck_concept(owner)
    job.resolve_with_task_id(TASK_ID)
    return fresh(job)


def poll(job):
    from generations import concepts

    if isinstance(job, ConceptJob):
        concepts.poll_concept(job.pk)
    else:
        tasks.poll_conversion(job.pk)
    return fresh(job)


@pytest.fixture
def refusing(monkeypatch):
    """Polls answered by ``refusing.error``, with no wait for the rate budget."""
    from generations.upstream import Unavailable

    upstream = _Refusing(Unavailable("503 Service Unavailable", status=503))
    monkeypatch.setattr(tasks, "client", lambda: upstream)

    class _Open:
        def acquire(self):
            from generations.ratelimit import Decision

            return Decision(True, 0, 1)

        def settle(self, decision):
            pass

        def block(self, seconds):
            pass

    monkeypatch.setattr(tasks, "get_limiter", lambda: _Open())
    monkeypatch.setattr("generations.concepts.get_limiter", lambda: _Open())
    return upstream


@pytest.mark.parametrize("make", [polling_step, polling_concept])
def test_a_poll_that_keeps_failing_asks_a_person_after_a_bounded_number(member, refusing, make):
    job = make(member)
    for attempt in range(1, tasks.MAX_POLL_ERRORS):
        job = poll(job)
        assert (job.state, job.poll_errors, job.deliveries) == (State.PENDING, attempt, 0)
        assert job.due_at > timezone.now()  # backed off
    job = poll(job)
    assert job.state == State.NEEDS_ATTENTION
    assert job.failure_reason.startswith(f"Polling failed {tasks.MAX_POLL_ERRORS} times in a row")
    assert "503" in job.failure_reason
    assert job.attention_since is not None
    assert refusing.calls == tasks.MAX_POLL_ERRORS
    # Still charged, never refunded without knowing: a person decides.
    assert [kind for kind, _ in ledger(job)] == ["hold", "release", "charge"]


@pytest.mark.parametrize("make", [polling_step, polling_concept])
def test_a_task_the_upstream_does_not_know_asks_a_person_at_once(member, refusing, make):
    from generations.upstream import Rejected

    refusing.error = Rejected("Task not found", status=404)
    job = poll(make(member))
    assert job.state == State.NEEDS_ATTENTION
    assert f"The upstream no longer answers for task {TASK_ID}" in job.failure_reason
    assert refusing.calls == 1


@pytest.mark.parametrize("make", [polling_step, polling_concept])
def test_a_refused_key_while_polling_is_an_alert_and_a_failed_poll(member, refusing, make):
    from generations.models import Alert
    from generations.upstream import Rejected

    refusing.error = Rejected("Invalid API key", status=401)
    job = poll(make(member))
    assert (job.state, job.poll_errors) == (State.PENDING, 1)
    assert Alert.objects.filter(message__contains="refused our API key").exists()


def test_a_poll_that_answers_starts_the_count_again(member, refusing, monkeypatch):
    from generations.upstream import Status

    job = poll(polling_step(member))
    assert job.poll_errors == 1
    answer = Status(status="IN_PROGRESS", progress=40, failure_reason=None)
    monkeypatch.setattr(refusing, "status", lambda task_id: answer)
    job = poll(job)
    assert (job.state, job.poll_errors, job.progress) == (State.IN_PROGRESS, 0, 40)


def test_a_concept_job_handed_back_long_after_it_was_made_is_polled_not_timed_out(
    member, refusing, monkeypatch
):
    from generations.upstream import Status

    job = stuck_concept(member)
    ConceptJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(days=2))
    job = fresh(job)
    job.resolve_with_task_id(TASK_ID)
    answer = Status(status="IN_PROGRESS", progress=50, failure_reason=None)
    monkeypatch.setattr(refusing, "status", lambda task_id: answer)
    job = poll(fresh(job))
    assert (job.state, job.progress) == (State.IN_PROGRESS, 50)


# --- through the real pipeline, against the sandbox ---------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_step_the_upstream_forgot_is_handed_back_by_its_task_id_and_finishes_charged_once(
    sandbox_server, step_doorbells, member, admin_user, client
):
    from tests.test_finishing_pipeline import ask, run
    from tests.test_pipeline import drive, queue

    source = drive(queue(member))
    assert source.state == State.FINISHED, source.attention_reason
    job = ask(source, "optimize", {"preset": "low", "max_texture_size": 1024})
    tasks.submit_conversion(job.pk)
    real = fresh(job).upstream_task_id
    # Polled under a task id the upstream does not know: a person is asked at once.
    Conversion.objects.filter(pk=job.pk).update(upstream_task_id=str(uuid.uuid4()))
    job = run(job)
    assert job.state == State.NEEDS_ATTENTION
    assert "no longer answers" in job.failure_reason
    client.force_login(admin_user)
    resolve(client, "conversion", job, action="task_id", task_id=real, note="found it")
    job = run(job)
    assert job.state == State.FINISHED, job.failure_reason
    assert job.result.previous_version == source
    price = job.credit_estimate
    assert ledger(job) == [("hold", -price), ("release", price), ("charge", -price)]


@pytest.mark.django_db(transaction=True)
def test_a_concept_job_whose_polls_keep_failing_asks_a_person_then_finishes_when_handed_back(
    sandbox_server, concept_doorbells, member, monkeypatch
):
    from tests.sandbox_control import set_faults, upstream_calls
    from tests.test_concepts_pipeline import drive, queue_job

    monkeypatch.setattr(tasks, "backoff", lambda attempt, **kw: 0.01)
    job = queue_job(member)
    from generations import concepts

    concepts.submit_concept(job.pk)
    set_faults(sandbox_server, {"status_5xx_rate": 1.0})
    job = drive(job)
    assert job.state == State.NEEDS_ATTENTION
    assert "Polling failed" in job.failure_reason
    assert len(upstream_calls(sandbox_server, "poll")) == tasks.MAX_POLL_ERRORS
    set_faults(sandbox_server, {})
    job.resolve_with_task_id(job.upstream_task_id, "the upstream is back")
    job = drive(fresh(job))
    assert job.state == State.FINISHED, job.failure_reason
    price = job.credit_estimate
    assert ledger(job) == [("hold", -price), ("release", price), ("charge", -price)]
