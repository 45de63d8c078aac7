"""Concept jobs ("Start from an image"): their pipeline steps, and a pick becoming a model.

The same discipline as generations and conversions (tasks.py): the row's due time is
the ledger of work, the dispatcher hands out each due step with a claim, submits and
polls spend the one shared rate budget, every call goes through the one client, and
a submit whose outcome is unknown is never resent. Result images are downloaded at
once (the upstream's URLs expire) through ``ingest.download`` (host allow-list, size
cap) and checked and re-encoded by ``images.clean_upload`` like any upload.
"""

import logging
import uuid
from datetime import timedelta

from celery import shared_task
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from . import images, ingest, planner, tasks, turns
from .models import POLLING_STATES, ConceptImage, ConceptJob, IllegalTransition, State
from .ratelimit import get_limiter
from .upstream import Ambiguous, NotSent, RateLimited, Rejected, Unavailable, backoff

log = logging.getLogger(__name__)

# Typical duration of an image job (the API reference: Gemini 3 Pro 40-90 s an image).
IMAGE_SECONDS = 45
# Concept images are kept up to this side (a 4K result stays 4K).
MAX_SIDE = 4096
INGEST_LEASE = timedelta(seconds=300)
# Far beyond any image job (4 images at 90 s each): a person looks instead of polling on.
TIME_OUT = timedelta(hours=1)


def _wait(seconds):
    """A wait scaled like the planner's durations (the sandbox's time scale in tests)."""
    return timedelta(seconds=max(planner.min_interval(), seconds * tasks._duration_scale()))


def _take(job_id, claim, expected):
    """The job whose dispatched step this delivery may do, or None (as ``take_step``)."""
    filters = {"pk": job_id, "state__in": expected}
    if claim is not None:
        filters["claim"] = claim
    if ConceptJob.objects.filter(**filters).update(claim=uuid.uuid4().hex) != 1:
        return None
    return ConceptJob.objects.select_related("owner", "edit_of").get(pk=job_id)


@shared_task(acks_late=True, soft_time_limit=60, time_limit=75, ignore_result=True)
def submit_concept(job_id, claim=None):
    """Send one concept job upstream, at most once."""
    job = _take(job_id, claim, [State.QUEUED])
    if job is None:
        return
    now = timezone.now()
    if claim is None and turns.others_waiting(job, now):
        # A doorbell while others wait: it joins them in fair turns (the dispatcher's).
        ConceptJob.objects.filter(pk=job.pk, state=State.QUEUED).update(due_at=now)
        return
    try:
        job.claim_for_submit(now + tasks._lease("STEP_LEASE"))
    except IllegalTransition:
        return
    decision = get_limiter().acquire()
    if not decision.allowed:
        job.requeue_submit(now + timedelta(seconds=decision.wait))
        return
    spec = job.model_spec
    inputs = job.input_images()
    body = spec.request_body(job.prompt, job.options, job.count, images=inputs)
    try:
        submitted = tasks._counted(
            decision, tasks.client().images, spec.endpoint(bool(inputs)), body
        )
    except RateLimited as exc:
        get_limiter().block(exc.retry_after)
        job.requeue_submit(now + timedelta(seconds=exc.retry_after))
    except (NotSent, Unavailable) as exc:
        # Nothing was accepted upstream: trying again cannot pay twice.
        if job.deliveries >= tasks.MAX_DELIVERIES:
            job.mark_rejected(f"The upstream could not be reached: {exc.message}")
        else:
            job.requeue_submit(now + timedelta(seconds=backoff(job.deliveries + 1)))
    except Rejected as exc:
        job.mark_rejected(exc.message)
        if exc.status == 401:
            tasks._alert(f"The upstream refused our API key: {exc.message}")
    except Ambiguous as exc:
        job.mark_needs_attention(
            f"The submit's outcome is unknown: {exc.message}. It was not resent.",
            expected=[State.SUBMITTING],
        )
        tasks._alert(f"Concept job {job.pk} needs attention: submit outcome unknown.")
    else:
        job.mark_submitted(submitted.task_id, now + _wait(IMAGE_SECONDS))


@shared_task(acks_late=True, soft_time_limit=60, time_limit=75, ignore_result=True)
def poll_concept(job_id, claim=None):
    """Ask how a concept job is doing; hand its images to ingest once they are there."""
    job = _take(job_id, claim, list(POLLING_STATES))
    if job is None:
        return
    now = timezone.now()
    # From its creation, or from when an admin last handed it back (a person looked then).
    started = max(job.created_at, job.resolved_at or job.created_at)
    if now - started > TIME_OUT:
        job.mark_needs_attention(
            f"Still not finished upstream after {now - started}.",
            expected=list(POLLING_STATES),
        )
        return
    decision = get_limiter().acquire()
    if not decision.allowed:
        job.defer(now + timedelta(seconds=decision.wait))
        return
    retry_at = now + _wait(10)
    try:
        status = tasks._counted(decision, tasks.client().status, job.upstream_task_id)
    except RateLimited as exc:
        get_limiter().block(exc.retry_after)
        job.defer(now + timedelta(seconds=exc.retry_after))
        return
    except Rejected as exc:
        # An unknown task (404): a person looks (as for a generation and a conversion).
        tasks._job_poll_rejected(job, exc, now)
        return
    except (NotSent, Unavailable, Ambiguous) as exc:
        # Bounded: a person is asked after tasks.MAX_POLL_ERRORS failed polls in a row.
        log.warning("concept job %s: poll failed: %s", job_id, exc.message)
        tasks._job_step_failed(job, exc.message, now)
        return
    if status.status == "FAILED":
        job.mark_failed(status.failure_reason or "")
        return
    urls = [r.url for r in status.results if r.url and r.asset_type in {"IMAGE", ""}]
    if status.status == "FINISHED" and urls:
        with transaction.atomic():
            job.start_ingest(urls, now + INGEST_LEASE)
            token = uuid.uuid4().hex
            ConceptJob.objects.filter(pk=job.pk).update(claim=token)
            transaction.on_commit(lambda: ingest_concept.delay(job.pk, token))
        return
    if status.status == "FINISHED":
        if status.failure_reason:  # FINISHED without a file, with a reason: a failure
            job.mark_failed(status.failure_reason)
            return
        # Observed quirk: FINISHED before the URLs appear. Keep polling, briefly.
        since = job.finished_null_since or now
        if now - since > tasks.FINISHED_WITHOUT_ASSET_GRACE:
            job.mark_needs_attention(
                "The upstream reported FINISHED but sent no image for over two minutes.",
                expected=list(POLLING_STATES),
            )
            return
        job.wait_for_result_file(since, tasks._finished_empty_poll_at(since, now))
        return
    job.record_progress(status.status, status.progress, retry_at)


@shared_task(acks_late=True, soft_time_limit=660, time_limit=700, ignore_result=True)
def ingest_concept(job_id, claim=None):
    """Store every result image (downloaded, checked, re-encoded), then finish the job."""
    job = _take(job_id, claim, [State.INGESTING])
    if job is None:
        return
    try:
        for position, url in enumerate(job.results):
            if job.images.filter(position=position).exists():
                continue  # stored by an earlier, interrupted run
            _store(job, position, ingest.download(url))
    except ingest.AssetExpired as exc:
        if job.url_refreshes == 0:
            job.refresh_result_urls(timezone.now())  # the next poll brings fresh URLs
        else:
            job.mark_needs_attention(
                f"The images could not be fetched: {exc}", expected=[State.INGESTING]
            )
        return
    except (ingest.AssetRefused, images.ImageRejected) as exc:
        job.mark_needs_attention(
            f"An image was refused: {getattr(exc, 'message', exc)}", expected=[State.INGESTING]
        )
        return
    except ingest.AssetUnavailable as exc:
        tasks._job_download_failed(job, exc, timezone.now())
        return
    try:
        job.mark_finished()
    except IllegalTransition:
        return  # another delivery (a doorbell without a claim) finished it first


def _store(job, position, downloaded):
    try:
        with open(downloaded.path, "rb") as fh:
            clean = images.clean_upload(fh, max_side=MAX_SIDE)
    finally:
        downloaded.path.unlink(missing_ok=True)
    ConceptImage.objects.get_or_create(
        job=job,
        position=position,
        defaults={
            "file": ContentFile(clean.data, name=f"{uuid.uuid4().hex}.{clean.format}"),
            "format": clean.format,
            "width": clean.width,
            "height": clean.height,
            "bytes": len(clean.data),
        },
    )


def dispatch_concepts(now, budget_left, limit=50):
    """Hand out due concept polls within the rate budget, and ingest (downloads are not
    counted upstream) always. Returns the calls handed out. The dispatcher hands out
    their submits itself, in fair turns across kinds (``turns.next_jobs``)."""
    # A worker that died while submitting: the upstream may have charged it; a person decides.
    for job in ConceptJob.objects.filter(state=State.SUBMITTING, due_at__lt=now)[:limit]:
        try:
            job.mark_needs_attention(
                "The worker stopped while sending it upstream; it was not resent.",
                expected=[State.SUBMITTING],
            )
        except IllegalTransition:
            continue
        tasks._alert(f"Concept job {job.pk} needs attention: submit outcome unknown.")
    sent = 0
    steps = [
        (list(POLLING_STATES), poll_concept, tasks._lease("STEP_LEASE"), True),
        ([State.INGESTING], ingest_concept, INGEST_LEASE, False),
    ]
    for states, task, lease, counted in steps:
        room = min(limit, budget_left - sent) if counted else limit
        if room <= 0:
            continue
        due = ConceptJob.objects.filter(state__in=states, due_at__lte=now).order_by("due_at")
        for job in due[:room]:
            handed = tasks.hand_out(job, task, lease, states, now)
            sent += handed if counted else 0
    return sent


def make_model(*, owner, spec, edition, mode, picks, form_token):
    """Queue an image-to-3D (or multi-view) generation of the picked concept images
    (``[(slot, ConceptImage)]``) through ``create_queued``, and keep its lineage
    (``ConceptPick``). Each image is checked again by the provider's rules (Tripo
    flattens transparency). None when the form token is someone else's;
    ``BudgetExceeded`` when it does not fit the budget."""
    from .models import ConceptPick, Generation

    rules = spec.image_rules
    cleaned = []
    for slot, image in picks:
        with image.file.open("rb") as fh:
            cleaned.append(
                (
                    slot,
                    images.clean_upload(
                        fh,
                        flatten_transparency=rules.flatten_transparency,
                        max_side=rules.send_max_side,
                    ),
                )
            )
    with transaction.atomic():
        generation = Generation.objects.create_queued(
            owner=owner,
            provider=spec.key,
            mode=mode,
            prompt="",
            options={},
            form_token=form_token,
            edition=edition,
            images=cleaned,
        )
        if generation is not None:
            for slot, image in picks:  # a double post finds its picks there already
                ConceptPick.objects.get_or_create(
                    generation=generation, slot=slot, defaults={"image": image}
                )
    return generation
