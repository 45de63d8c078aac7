"""Background work: submit, poll, ingest, and the dispatcher and sweep that drive them.

The database is the ledger of work; the broker is only a doorbell. Each task
loads a row by id, checks it still holds the claim it was sent with, calls the
upstream at most once, and records the outcome with one model method. Retries
are never Celery retries with countdowns: a task that must try again later
writes a due time, and the dispatcher (beat, every DISPATCH_INTERVAL seconds)
picks the row up when it is due. A lost message, a Redis restart or a killed
worker therefore cannot lose a generation: its due time passes and it is
dispatched again.
"""

import contextlib
import hashlib
import logging
import uuid
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from credits import reconcile
from credits.models import WalletSnapshot
from ops import heartbeat
from ops.logs import with_generation_id

from . import finishing, ingest, planner, storage, turns
from .catalogue import InvalidRequest
from .models import POLLING_STATES, Alert, Asset, Generation, IllegalTransition, State
from .ratelimit import Decision, effective_limit, get_limiter, window
from .upstream import (
    Ambiguous,
    NotSent,
    RateLimited,
    Rejected,
    Unavailable,
    UpstreamClient,
    backoff,
)

log = logging.getLogger(__name__)


def _counted(decision, call, *args):
    """Make one upstream call on the slot ``decision`` took, then settle that slot.

    Settling logs the call at the moment its answer came back (see
    ``ratelimit.RedisLimiter.settle``), so a call that left late is never
    counted earlier than the upstream counted it.
    """
    try:
        return call(*args)
    finally:
        try:
            get_limiter().settle(decision)
        except Exception as exc:  # the slot keeps the time it was taken: still counted
            log.warning("could not settle a rate-limit slot: %r", exc)


# A step dispatched this many times without completing is poison: quarantine it.
MAX_DELIVERIES = 3
# Connect failures and 502/503 on submit are retried this many times.
MAX_SUBMIT_ATTEMPTS = 5
# Consecutive failed polls before a person is asked.
MAX_POLL_ERRORS = 8
# Downloads that ran out of ASSET_DOWNLOAD_DEADLINE before a person is asked: each
# held a worker for the whole deadline, so it weighs that share of MAX_POLL_ERRORS.
MAX_DOWNLOAD_TIMEOUTS = 2
DOWNLOAD_TIMEOUT_WEIGHT = -(-MAX_POLL_ERRORS // MAX_DOWNLOAD_TIMEOUTS)
# How long FINISHED may come without a result URL before we ask a person.
FINISHED_WITHOUT_ASSET_GRACE = timedelta(minutes=2)


def _lease(name):
    """A dispatched step must finish within its lease, or it is dispatched again
    (settings.STEP_LEASE, INGEST_LEASE: longer than each task's hard time limit)."""
    return timedelta(seconds=getattr(settings, name))


def client():
    return UpstreamClient()


def _swap_claim(generation_id, claim):
    """Take the step the dispatcher handed out; False when another delivery has it."""
    if claim is None:
        return True
    mine = uuid.uuid4().hex
    return Generation.objects.filter(pk=generation_id, claim=claim).update(claim=mine) == 1


def _load(generation_id):
    return Generation.objects.filter(pk=generation_id).select_related("owner").first()


def _alert(message):
    log.error("ALERT: %s", message)
    Alert.objects.create(message=message)


# --- submit ------------------------------------------------------------------------


@shared_task(acks_late=True, soft_time_limit=60, time_limit=75, ignore_result=True)
@with_generation_id  # every line it logs carries the generation id
def submit_generation(generation_id, claim=None):
    """Send one generation to the upstream, exactly once."""
    generation = _load(generation_id)
    if generation is None or not _swap_claim(generation_id, claim):
        return
    if claim is None and turns.others_waiting(generation):
        # A doorbell while others wait for the budget: the dispatcher takes submits in
        # fair turns, so this one joins them (due now) instead of jumping them.
        Generation.objects.filter(pk=generation.pk, state=State.QUEUED, claim="").update(
            due_at=timezone.now()
        )
        return
    try:
        generation.claim_for_submit()
    except IllegalTransition:
        return  # another delivery has it, or it was canceled
    now = timezone.now()
    # While wallet drift is being narrowed, two wallet reads bracket the submit: three
    # calls of the shared budget, taken together (_Bracket).
    bracket, decision = _Bracket.take()
    if not decision.allowed:
        generation.requeue_submit(now + timedelta(seconds=decision.wait))
        return
    spec = generation.provider_spec
    edition = generation.edition or None
    try:
        images = [(image.slot, image.data_uri()) for image in generation.images.all()]
        body = spec.request_body(
            generation.mode, generation.prompt, generation.options, edition=edition, images=images
        )
        endpoint = spec.endpoint_for(generation.mode, spec.edition_or_default(edition))
    except InvalidRequest as exc:
        # Nothing was sent; the form should have caught this, so say what is wrong.
        reasons = "; ".join(f"{field}: {message}" for field, message in exc.errors.items())
        generation.mark_rejected(f"The request is not valid for {spec.label}: {reasons}")
        return
    except Exception as exc:
        # Nothing was sent either (a missing reference file, a bug): move the due
        # time on before re-raising, so the row is tried again later instead of
        # sitting in SUBMITTING until the sweep asks a person.
        if generation.submit_attempts >= MAX_SUBMIT_ATTEMPTS:
            generation.mark_needs_attention(f"The request could not be prepared: {exc!r}")
        else:
            delay = backoff(generation.submit_attempts)
            generation.requeue_submit(
                now + timedelta(seconds=delay), reason=f"could not prepare: {exc!r}"
            )
        raise
    if bracket:
        bracket.read_before(generation)
    try:
        submitted = _counted(decision, client().submit, endpoint, body)
    except RateLimited as exc:
        get_limiter().block(exc.retry_after)
        generation.requeue_submit(now + timedelta(seconds=exc.retry_after))
    except (NotSent, Unavailable) as exc:
        # Nothing was accepted upstream, so trying again cannot pay twice.
        if generation.submit_attempts >= MAX_SUBMIT_ATTEMPTS:
            generation.mark_needs_attention(
                f"The upstream could not be reached after {generation.submit_attempts} "
                f"attempts: {exc.message}",
                raw=exc.raw,
            )
        else:
            delay = backoff(generation.submit_attempts)
            generation.requeue_submit(now + timedelta(seconds=delay), reason=exc.message)
    except Rejected as exc:
        generation.mark_rejected(exc.message)
        if exc.status == 401:
            _alert(f"The upstream refused our API key: {exc.message}")
    except Ambiguous as exc:
        # The upstream may have accepted it and charged us. Resending could pay
        # twice, so a person decides (with the facts we have).
        log.warning("generation %s: submit outcome unknown: %s", generation_id, exc.message)
        generation.mark_needs_attention(
            f"The submit's outcome is unknown: {exc.message}. It was not resent.", raw=exc.raw
        )
    else:
        generation.mark_submitted(submitted.task_id, planner.first_poll_at(generation))
        log.info("generation %s submitted as upstream task %s", generation_id, submitted.task_id)
    if bracket:
        bracket.read_after(generation)  # after the charge is in our ledger, whatever happened


# --- poll --------------------------------------------------------------------------


def _usable_results(status):
    return [
        {"url": r.url, "asset_type": r.asset_type}
        for r in status.results
        if r.url and r.asset_type in {"3D_MODEL", "ARCHIVE", "IMAGE", ""}
    ] + ([{"url": status.thumbnail, "asset_type": "IMAGE"}] if status.thumbnail else [])


def _has_model(results):
    return any(
        r["asset_type"] in {"3D_MODEL", "ARCHIVE"}
        or ingest.url_extension(r["url"]) in {".glb", ".zip"}
        for r in results
    )


@shared_task(acks_late=True, soft_time_limit=60, time_limit=75, ignore_result=True)
@with_generation_id  # every line it logs carries the generation id
def poll_generation(generation_id, claim=None):
    if not _swap_claim(generation_id, claim):
        return
    generation = _load(generation_id)
    if generation is None or generation.state not in POLLING_STATES:
        return
    now = timezone.now()
    decision = get_limiter().acquire()
    if not decision.allowed:
        generation.defer(now + timedelta(seconds=decision.wait), list(POLLING_STATES))
        return
    try:
        status = _counted(decision, client().status, generation.upstream_task_id)
    except RateLimited as exc:
        get_limiter().block(exc.retry_after)
        generation.defer(now + timedelta(seconds=exc.retry_after), list(POLLING_STATES))
        return
    except Rejected as exc:
        if exc.status == 401:
            _alert(f"The upstream refused our API key while polling: {exc.message}")
            _poll_error(generation, exc, now)
            return
        generation.mark_needs_attention(
            f"The upstream no longer answers for task {generation.upstream_task_id}: {exc.message}",
            raw=exc.raw,
        )
        return
    except (NotSent, Unavailable, Ambiguous) as exc:
        _poll_error(generation, exc, now)
        return

    if status.status == "FAILED":
        generation.mark_failed(status.failure_reason or "")
        return
    if status.status == "FINISHED":
        results = _usable_results(status)
        if _has_model(results):
            with transaction.atomic():
                generation.start_ingest(results, now + _lease("INGEST_LEASE"))
                token = uuid.uuid4().hex
                Generation.objects.filter(pk=generation.pk).update(claim=token)
                transaction.on_commit(lambda: ingest_generation.delay(generation.pk, token))
            return
        if status.failure_reason:
            generation.mark_failed(status.failure_reason)
            return
        # Observed quirk: FINISHED before the result URL appears. Keep polling briefly.
        since = generation.finished_null_since or now
        if now - since > FINISHED_WITHOUT_ASSET_GRACE:
            generation.mark_needs_attention(
                "The upstream reported FINISHED but sent no result file for over two minutes.",
                raw=status.raw,
            )
            return
        generation.record_progress("FINISHED", 100, _finished_empty_poll_at(since, now))
        Generation.objects.filter(pk=generation.pk).update(finished_null_since=since)
        return
    generation.record_progress(
        status.status,
        status.progress or generation.progress,
        planner.next_poll_at(generation, status.progress),
    )


def _finished_empty_poll_at(since, now):
    """When to look again at a task that said FINISHED without a result file.

    Backing off like any poll that finds nothing new: each wait as long as the
    time already waited (2, 2, 4, 8, 16, 32 s...), so the grace period costs
    about eight calls, not one every two seconds (60 calls: the whole shared
    budget at 3 a minute). The last look lands just past the grace period,
    where an answer still without a file asks a person.
    """
    waited = (now - since).total_seconds()
    left = (FINISHED_WITHOUT_ASSET_GRACE - (now - since)).total_seconds()
    wait = min(max(planner.min_interval(), waited), left + planner.min_interval())
    return now + timedelta(seconds=wait)


def _poll_error(generation, exc, now):
    errors = generation.poll_errors + 1
    if errors >= MAX_POLL_ERRORS:
        generation.mark_needs_attention(
            f"Polling failed {errors} times in a row; last error: {exc.message}", raw=exc.raw
        )
        return
    generation.defer(
        now + timedelta(seconds=backoff(errors)),
        list(POLLING_STATES),
        poll_errors=errors,
        last_raw_response=(exc.raw or exc.message)[:4000],
    )


# --- ingest ------------------------------------------------------------------------


def _role_for(fmt, asset_type, have_model):
    if fmt == "glb" and not have_model:
        return Asset.Role.MODEL
    if fmt in {"png", "jpeg", "webp"}:
        return Asset.Role.THUMBNAIL
    return Asset.Role.ORIGINAL


@shared_task(acks_late=True, soft_time_limit=900, time_limit=960, ignore_result=True)
@with_generation_id  # every line it logs carries the generation id
def ingest_generation(generation_id, claim=None):
    if not _swap_claim(generation_id, claim):
        return
    generation = _load(generation_id)
    if generation is None or generation.state != State.INGESTING:
        return
    now = timezone.now()
    try:
        for index, result in enumerate(generation.results):
            key = f"{index}:{ingest.url_extension(result['url']) or result['asset_type']}"
            if generation.assets.filter(original_name__startswith=f"{index}:").exists():
                continue  # stored by an earlier, interrupted run
            downloaded = ingest.download(result["url"])
            have_model = generation.assets.filter(role=Asset.Role.MODEL).exists()
            role = _role_for(downloaded.format, result["asset_type"], have_model)
            _store_asset(generation, downloaded, role, f"{key}:{downloaded.name}")
        if not generation.assets.filter(role__in=[Asset.Role.MODEL, Asset.Role.PREVIEW]).exists():
            archive = generation.assets.filter(format="zip").first()
            if archive is None:
                raise ingest.AssetRefused("The upstream's results hold no 3D model we can show.")
            # A bucket has no paths: the converter reads a local copy of the ZIP.
            with storage.local_copy(archive.file, ingest.incoming_dir(), ".zip") as zip_path:
                glb = ingest.zip_to_glb(zip_path)
            _store_asset(
                generation,
                ingest.Downloaded(glb, "glb", glb.stat().st_size, _sha256(glb), "preview.glb"),
                Asset.Role.PREVIEW,
                "preview:glb",
            )
    except ingest.AssetExpired as exc:
        if generation.url_refreshes == 0:
            generation.refresh_result_urls(now)
        else:
            generation.mark_needs_attention(f"The result files could not be fetched: {exc}")
        return
    except ingest.AssetRefused as exc:
        log.warning("generation %s: result refused: %s", generation_id, exc)
        generation.mark_needs_attention(f"The result was refused: {exc}")
        return
    except ingest.AssetUnavailable as exc:
        timed_out = isinstance(exc, ingest.DownloadTimedOut)
        errors = generation.poll_errors + (DOWNLOAD_TIMEOUT_WEIGHT if timed_out else 1)
        if errors >= MAX_POLL_ERRORS:
            generation.mark_needs_attention(f"The result files could not be fetched: {exc}")
        else:
            generation.defer(now + timedelta(seconds=backoff(errors)), poll_errors=errors)
        return
    generation.mark_finished()
    log.info("generation %s finished", generation_id)
    # Its own task: ingest stays fast, and a poster that fails cannot touch the state.
    transaction.on_commit(lambda: render_poster.delay(generation_id), robust=True)


@shared_task(acks_late=False, soft_time_limit=60, time_limit=75, ignore_result=True)
@with_generation_id
def render_poster(generation_id):
    """Draw a poster of a finished model that came without a thumbnail (posters.py).

    Acknowledged on receipt, unlike the pipeline's tasks: a model that kills the worker
    is not delivered again, and a lost poster is only a missing picture, which
    ``sweep_posters`` queues again a few minutes later."""
    from . import posters

    generation = Generation.objects.filter(pk=generation_id).prefetch_related("assets").first()
    if generation is not None:
        posters.make_poster(generation)


@shared_task(ignore_result=True, soft_time_limit=20, time_limit=30)
def sweep_posters():
    """Queue again the posters the broker lost (posters.lost: bounded, and never a model
    that could not be drawn). A poster queued twice is drawn once (posters._keep)."""
    from . import posters

    for generation_id in posters.lost(timezone.now()):
        render_poster.delay(generation_id)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _store_asset(generation, downloaded, role, original_name):
    facts = {}
    if downloaded.format == "glb":
        try:
            facts = ingest.glb_facts(downloaded.path)
        except Exception as exc:  # noqa: BLE001 - an unreadable GLB is refused, not stored
            downloaded.path.unlink(missing_ok=True)
            raise ingest.AssetRefused(f"The GLB could not be read: {exc}") from None
    name = ingest.store(downloaded.path, generation.pk, downloaded.format)
    Asset.objects.create(
        generation=generation,
        role=role,
        file=name,
        format=downloaded.format,
        original_name=original_name[:200],
        bytes=downloaded.bytes,
        sha256=downloaded.sha256,
        facts=facts,
    )


# --- dispatcher and sweep -----------------------------------------------------------


def _claim_step(generation, now, lease):
    """Hand one due step out: conditional on the due time we read, so one dispatcher wins,
    and on its being due still (the submits are read again by id after they are ordered:
    a row another dispatcher claimed meanwhile comes back with that claim's due time)."""
    if generation.deliveries >= MAX_DELIVERIES:
        _quarantine(generation)
        return None
    token = uuid.uuid4().hex
    won = Generation.objects.filter(
        pk=generation.pk, state=generation.state, due_at=generation.due_at, due_at__lte=now
    ).update(claim=token, due_at=now + lease, deliveries=F("deliveries") + 1)
    return token if won == 1 else None


def _quarantine(generation):
    try:
        generation.mark_needs_attention(
            f"Quarantined: its work was started {generation.deliveries} times without finishing "
            "(a worker may have crashed on it)."
        )
    except IllegalTransition:
        return
    _alert(f"Generation {generation.pk} was quarantined after {generation.deliveries} deliveries.")


@shared_task(ignore_result=True, soft_time_limit=20, time_limit=30)
def dispatch(limit=200):
    """Enqueue every step that is due, spending the rate budget by priority.

    Priority when calls are short: polls (most overdue first: those are the
    likeliest to be finished), then submits in fair turns (turns.py: the member
    with the fewest recent submits first, arrival order within a member). Ingest
    spends no budget (downloads are not counted upstream).
    """
    heartbeat.beat("dispatcher")  # for the status page: one UPDATE per run
    now = timezone.now()
    budget = get_limiter().peek().remaining
    sent = {"poll": 0, "submit": 0, "ingest": 0, "wallet": 0}
    # An overdue wallet read goes first: with a full queue the spare-budget read never
    # finds room, and a raised rate limit would go unnoticed exactly when it matters.
    if budget > 0 and _wallet_due(now):
        refresh_wallet.delay(due=True)
        sent["wallet"] = 1
        budget -= 1
    if budget > 0:
        polls = Generation.objects.filter(state__in=POLLING_STATES, due_at__lte=now).order_by(
            "due_at"
        )[:budget]
        for generation in polls:
            token = _claim_step(generation, now, _lease("STEP_LEASE"))
            if token:
                poll_generation.delay(generation.pk, token)
                sent["poll"] += 1
        budget -= sent["poll"]
    # The other kinds' polls (and concept jobs' downloads, which cost no call) go before
    # any submit too.
    sent["conversions"] = dispatch_conversions(now, budget)
    budget -= sent["conversions"]
    sent["concepts"] = concepts.dispatch_concepts(now, budget)
    budget -= sent["concepts"]
    # Then the submits of every kind in one queue of fair turns (turns.next_jobs): a
    # member's concept jobs and finishing steps take their turns, not a turn of their own.
    # A generation's submit bracketed by two wallet reads (drift being narrowed) takes three
    # calls.
    per_submit = reconcile.calls_per_submit(effective_limit())
    lease = _lease("STEP_LEASE")
    for kind, job in turns.next_jobs(now, budget, per_submit):
        if kind == "generation":
            token = _claim_step(job, now, lease)
            if token:
                submit_generation.delay(job.pk, token)
                sent["submit"] += 1
        elif kind == "conversion":
            sent["conversions"] += hand_out(job, submit_conversion, lease, [State.QUEUED], now)
        else:
            sent["concepts"] += hand_out(job, concepts.submit_concept, lease, [State.QUEUED], now)
    for generation in Generation.objects.filter(state=State.INGESTING, due_at__lte=now)[:limit]:
        token = _claim_step(generation, now, _lease("INGEST_LEASE"))
        if token:
            ingest_generation.delay(generation.pk, token)
            sent["ingest"] += 1
    return sent


# A sweep flags at most this many rows of each kind and leaves the rest to the
# next run, so a mass outage cannot push one sweep past its time limit.
SWEEP_BATCH = 500


@shared_task(ignore_result=True, soft_time_limit=60, time_limit=90)
def sweep():
    """Recover what no doorbell will ring for. Safe to run twice at once.

    The database picks the rows to act on, so a sweep over 10k healthy rows in
    flight reads none of them. Each picked row still moves
    through its model transition, a conditional UPDATE: of two sweeps running
    at once exactly one moves it, and the other skips it.
    """
    heartbeat.beat("sweep")  # for the status page: one UPDATE per run
    now = timezone.now()
    # A worker that died while submitting leaves the row in SUBMITTING. The
    # upstream may have accepted it: never resend, ask a person.
    stuck = Generation.objects.filter(state=State.SUBMITTING, due_at__lt=now).order_by("due_at")
    for generation in stuck[:SWEEP_BATCH]:
        try:
            generation.mark_needs_attention(
                "The worker stopped while submitting; the upstream may have accepted and charged "
                "it. It was not resent: check the upstream, then resolve it."
            )
        except IllegalTransition:
            continue
        _alert(f"Generation {generation.pk} needs attention: submit outcome unknown.")
    # Far beyond any plausible duration: ask a person rather than fail silently.
    for generation in _far_overdue(now)[:SWEEP_BATCH]:
        try:
            generation.mark_needs_attention(
                f"Still not finished upstream after {(now - generation.submitted_at)}."
            )
        except IllegalTransition:
            continue
    ingest.cleanup_incoming()


def _far_overdue(now):
    """Polled generations submitted longer ago than their provider's time-out.

    The limit depends only on the provider, and few providers are in flight at
    once: one query finds them, the planner's (cached) profile gives each its
    limit, and one query selects the rows past it.
    """
    polled = Generation.objects.filter(state__in=POLLING_STATES, submitted_at__isnull=False)
    # order_by(): the model's default ordering would add its columns to DISTINCT.
    providers = polled.order_by().values_list("provider", flat=True).distinct()
    overdue = Q()
    for provider in providers:
        overdue |= Q(provider=provider, submitted_at__lt=now - _time_out(provider))
    if not overdue:
        return Generation.objects.none()
    return polled.filter(overdue).order_by("submitted_at")


def _time_out(provider):
    """How long after its submit a generation of ``provider`` is beyond any plausible duration."""
    return max(timedelta(hours=1), timedelta(seconds=20 * planner.expected_duration(provider)))


# The wallet is read at least this often, whatever the queue: its rate_limit is how we
# learn that the key's limit was raised, its balance what reconciliation compares.
WALLET_MAX_AGE = timedelta(minutes=10)
# Due this long before WALLET_MAX_AGE, so a read that waits for a slot still lands in time.
WALLET_DUE_MARGIN = timedelta(minutes=1)


def _wallet_due(now):
    """True when the newest wallet snapshot is nearly WALLET_MAX_AGE old (or there is
    none); the read is then claimed for a minute, so one dispatcher run enqueues it."""
    newest = WalletSnapshot.objects.order_by("-fetched_at").values_list("fetched_at", flat=True)
    last = newest.first()
    if last is not None and now - last < WALLET_MAX_AGE - WALLET_DUE_MARGIN:
        return False
    return cache.add("studio:wallet-read-claimed", 1, 60)


@shared_task(ignore_result=True, soft_time_limit=60, time_limit=75)
def refresh_wallet(due=False):
    """Fetch the upstream wallet: every ten minutes on the beat with spare rate budget
    only, and ``due`` (the dispatcher kept a slot for it) when the last read is nearly
    WALLET_MAX_AGE old."""
    limiter = get_limiter()
    if not due and limiter.peek().remaining < 2:
        return None
    if cache.get(BRACKET_LOCK):
        # A bracketed submit reads the wallet twice now (and learns the limit); a read
        # between its two would split the bracket.
        return None
    decision = limiter.acquire()
    if not decision.allowed:
        return None
    snapshot = _read_wallet(decision)
    return snapshot.pk if snapshot else None


def _read_wallet(decision, **bracket):
    """Read the wallet on the slot ``decision`` took and record it (reconcile.record,
    which examines the interval it closes); None when the read failed."""
    limiter = get_limiter()
    try:
        wallet = _counted(decision, client().wallet)
    except RateLimited as exc:
        limiter.block(exc.retry_after)
        return None
    except Rejected as exc:
        if exc.status == 401:
            _alert(f"The upstream refused our API key: {exc.message}")
        return None
    except (NotSent, Unavailable, Ambiguous):
        return None
    if wallet.rate_limit:
        limiter.learn_limit(wallet.rate_limit)
    return reconcile.record(wallet.balance, wallet.rate_limit, **bracket)


# One bracket at a time: two reads confine a drift to one submit only if no other
# bracketed submit runs between them. The lock outlives the submit task's hard time
# limit, so a killed worker (or a submit that stopped before it was sent) frees it.
BRACKET_LOCK = "studio:wallet-bracket"
BRACKET_LOCK_SECONDS = 80
BRACKET_BUSY_RETRY = 5


class _Bracket:
    """Two wallet reads around one submit while wallet drift is being narrowed
    (credits/reconcile.py). Each read is a call of the shared budget like any other
    (whether the upstream counts it is not documented), so the three calls are taken
    together or not at all: a bracket never waits for a slot between its reads."""

    def __init__(self, decisions):
        self.before_slot, self.submit_slot, self.after_slot = decisions
        self.before = None

    @classmethod
    def take(cls):
        """(bracket, the submit's decision); no bracket unless drift is being narrowed.
        A refused decision carries the wait before the submit is tried again."""
        limiter = get_limiter()
        limit = effective_limit()
        calls = reconcile.calls_per_submit(limit)
        if calls == 1:
            return None, limiter.acquire()
        # Until three slots are free together: about a window's share of them.
        retry = Decision(False, calls * window() / limit, 0)
        if not cache.add(BRACKET_LOCK, 1, BRACKET_LOCK_SECONDS):
            return None, Decision(False, BRACKET_BUSY_RETRY, 0)  # a bracket takes a second or two
        if limiter.peek().remaining < calls:
            cache.delete(BRACKET_LOCK)
            return None, retry
        decisions = [limiter.acquire() for _ in range(calls)]
        if not all(d.allowed for d in decisions):
            # Another process took a slot in between; the ones taken stay counted.
            cache.delete(BRACKET_LOCK)
            return None, retry
        bracket = cls(decisions)
        return bracket, bracket.submit_slot

    def read_before(self, generation):
        try:
            self.before = _read_wallet(
                self.before_slot, bracket=WalletSnapshot.Bracket.BEFORE, generation=generation
            )
        except Exception:  # informational: never in the way of the submit
            log.exception("generation %s: the wallet read before its submit failed", generation.pk)

    def read_after(self, generation):
        try:
            if self.before is None:  # no read before: a plain read, the bracket is lost
                _read_wallet(self.after_slot)
            else:
                _read_wallet(
                    self.after_slot,
                    bracket=WalletSnapshot.Bracket.AFTER,
                    generation=generation,
                    before=self.before,
                )
        except Exception:
            log.exception("generation %s: the wallet read after its submit failed", generation.pk)
        finally:
            cache.delete(BRACKET_LOCK)


# --- conversions through the upstream's convert tool (FBX, USDZ) -------------------------
# The same discipline as generations: the row's due time is the ledger of work, each
# step is claimed and every state change is one method of ``Conversion`` (a conditional
# UPDATE), and a submit whose outcome is unknown is never resent.

# Longer than poll_conversion's hard time limit, which is longer than one download's
# deadline (settings.ASSET_DOWNLOAD_DEADLINE, at most 600 s): a slow file ends by the
# deadline's clear error, not by the task being killed, and the step is not handed out
# twice meanwhile.
CONVERSION_POLL_LEASE = timedelta(seconds=760)


@shared_task(acks_late=True, soft_time_limit=60, time_limit=75, ignore_result=True)
def submit_conversion(conversion_id, claim=None):
    """Send one conversion to the convert tool, at most once."""
    from . import conversions as conv
    from .models import Conversion

    conversion = Conversion.objects.take_step(conversion_id, claim, [State.QUEUED])
    if conversion is None:
        return
    now = timezone.now()
    if claim is None and turns.others_waiting(conversion, now):
        # A doorbell while others wait: it joins them in fair turns (the dispatcher's).
        Conversion.objects.filter(pk=conversion.pk, state=State.QUEUED).update(due_at=now)
        return
    try:
        conversion.claim_for_submit(now + _lease("STEP_LEASE"))
    except IllegalTransition:
        return
    # The request is made before a rate slot is taken: one that cannot be sent spends none.
    if conversion.kind == Conversion.Kind.CONVERT:
        url = conv.source_url(conversion.generation, now)
        if url is None:
            conversion.mark_failed(
                "The upstream's copy of the model has expired (24 hours after it was made), and "
                "the convert tool cannot read our private storage. Download OBJ, STL or PLY instead."
            )
            return
        endpoint, body, upload = conv.CONVERT_ENDPOINT, conv.request_body(url, conversion), None
    else:
        try:
            endpoint, body, upload = finishing.build(conversion, now)
        except finishing.FinishingRefused as exc:
            conversion.mark_failed(exc.message)  # nothing sent: the hold is released
            return
    decision = get_limiter().acquire()
    if not decision.allowed:
        conversion.requeue_submit(now + timedelta(seconds=decision.wait))
        return
    try:
        submitted = _counted(decision, _submit_job, endpoint, body, upload)
    except RateLimited as exc:
        get_limiter().block(exc.retry_after)
        conversion.requeue_submit(now + timedelta(seconds=exc.retry_after))
    except (NotSent, Unavailable) as exc:
        if conversion.deliveries >= MAX_DELIVERIES:
            conversion.mark_failed(f"The upstream could not be reached: {exc.message}")
        else:
            conversion.requeue_submit(now + timedelta(seconds=backoff(conversion.deliveries + 1)))
    except Rejected as exc:
        conversion.mark_failed(exc.message)
        if exc.status == 401:
            _alert(f"The upstream refused our API key: {exc.message}")
    except Ambiguous as exc:
        conversion.mark_needs_attention(
            f"The convert request's outcome is unknown: {exc.message}. It was not resent."
        )
        _alert(f"Conversion {conversion.pk} needs attention: submit outcome unknown.")
    else:
        conversion.mark_submitted(
            submitted.task_id,
            now + timedelta(seconds=max(planner.min_interval(), 15 * _duration_scale())),
        )


def _submit_job(endpoint, body, upload):
    return client().submit(endpoint, body, upload=upload)


def _duration_scale():
    from django.conf import settings as django_settings

    return django_settings.PLANNER_DURATION_SCALE


def _job_poll_rejected(job, exc, now):
    """A conversion's, finishing step's or concept job's poll refused (as a generation's):
    a task the upstream does not know (404) or any other refusal cannot get better by
    asking again, so a person looks (it was charged: nothing is refunded without knowing
    what happened); a refused key (401) is an alert and a failed poll, since a fixed key
    lets polling go on."""
    if exc.status == 401:
        _alert(f"The upstream refused our API key while polling: {exc.message}")
        _job_step_failed(job, exc.message, now)
        return
    job.mark_needs_attention(
        f"The upstream no longer answers for task {job.upstream_task_id}: {exc.message}",
        expected=list(POLLING_STATES),
    )


def _job_step_failed(job, message, now, weight=1, doing="Polling"):
    """A poll (or a download) of a conversion, finishing step or concept job that failed:
    tried again with backoff, and after MAX_POLL_ERRORS in a row a person is asked, as
    for a generation (``_poll_error``). A successful poll starts the count again."""
    errors = job.poll_errors + weight
    if errors >= MAX_POLL_ERRORS:
        job.mark_needs_attention(
            f"{doing} failed {errors} times in a row; last error: {message}",
            expected=[job.state],
        )
        return
    job.defer(now + timedelta(seconds=backoff(errors)), poll_errors=errors)


def _job_download_failed(job, exc, now):
    """A result file that could not be fetched this time (ingest.AssetUnavailable): a
    download that ran out of its deadline weighs as a generation's does."""
    weight = DOWNLOAD_TIMEOUT_WEIGHT if isinstance(exc, ingest.DownloadTimedOut) else 1
    _job_step_failed(job, str(exc), now, weight, doing="Fetching the result files")


@shared_task(acks_late=True, soft_time_limit=660, time_limit=700, ignore_result=True)
def poll_conversion(conversion_id, claim=None):
    """Ask how a conversion is doing; store its file once it is done."""
    from .models import Asset, Conversion

    conversion = Conversion.objects.take_step(conversion_id, claim, list(POLLING_STATES))
    if conversion is None:
        return
    now = timezone.now()
    decision = get_limiter().acquire()
    if not decision.allowed:
        conversion.defer(now + timedelta(seconds=decision.wait))
        return
    retry_at = now + timedelta(seconds=max(planner.min_interval(), 5 * _duration_scale()))
    try:
        status = _counted(decision, client().status, conversion.upstream_task_id)
    except RateLimited as exc:
        get_limiter().block(exc.retry_after)
        conversion.defer(now + timedelta(seconds=exc.retry_after))
        return
    except Rejected as exc:
        _job_poll_rejected(conversion, exc, now)
        return
    except (NotSent, Unavailable, Ambiguous) as exc:
        log.warning("conversion %s: poll failed: %s", conversion_id, exc.message)
        _job_step_failed(conversion, exc.message, now)
        return
    if status.status == "FAILED":
        conversion.mark_failed(status.failure_reason or "The upstream failed without a reason.")
        return
    if conversion.kind != Conversion.Kind.CONVERT:
        _finish_step(conversion, status, now, retry_at)
        return
    url = next((r.url for r in status.results if r.url), None)
    if status.status != "FINISHED" or url is None:
        conversion.record_progress(status.status, status.progress, retry_at)
        return
    try:
        downloaded = ingest.download(url)
    except (ingest.AssetRefused, ingest.AssetExpired) as exc:
        conversion.mark_failed(f"The converted file: {exc}")
        return
    except ingest.AssetUnavailable as exc:
        _job_download_failed(conversion, exc, now)
        return
    fmt = conversion.output_format
    name = ingest.store(downloaded.path, conversion.generation_id, fmt)
    with transaction.atomic():
        asset, _ = Asset.objects.get_or_create(
            generation_id=conversion.generation_id,
            original_name=f"conversion:{fmt}:{conversion.pk}",
            defaults={
                "role": Asset.Role.CONVERTED,
                "file": name,
                "format": fmt,
                "bytes": downloaded.bytes,
                "sha256": downloaded.sha256,
            },
        )
        conversion.mark_finished(asset)


def _finish_step(job, status, now, retry_at):
    """A finishing step's poll answer: progress, a failure (refunded), or its files stored
    as a new version (finishing.make_version). A step the upstream finished and charged is
    never refunded here: a file we cannot fetch asks a person instead."""
    if status.status != "FINISHED":
        job.record_progress(status.status, status.progress, retry_at)
        return
    found = [r for r in status.results if r.url]
    if not found:
        if status.failure_reason:  # FINISHED without a file, with a reason: a failure
            job.mark_failed(status.failure_reason)
            return
        since = job.finished_null_since or now
        if now - since > FINISHED_WITHOUT_ASSET_GRACE:
            job.mark_needs_attention(
                "The upstream reported FINISHED but sent no result file for over two minutes.",
                expected=POLLING_STATES,
            )
            return
        job.wait_for_result_file(since, _finished_empty_poll_at(since, now))
        return
    downloads = []
    try:
        for result in found:
            downloads.append(ingest.download(result.url))
    except ingest.AssetExpired as exc:
        _discard(downloads)
        if job.url_refreshes == 0:
            job.refresh_result_urls(now)  # the next poll brings fresh URLs
        else:
            job.mark_needs_attention(
                f"The result files could not be fetched: {exc}", POLLING_STATES
            )
        return
    except ingest.AssetRefused as exc:
        _discard(downloads)
        job.mark_needs_attention(f"The result was refused: {exc}", POLLING_STATES)
        return
    except ingest.AssetUnavailable as exc:
        _discard(downloads)
        _job_download_failed(job, exc, now)
        return
    try:
        # A bare OBJ (Tencent's topology) is kept, and a GLB made of it for the viewer.
        downloads += [finishing.obj_as_glb(d) for d in downloads if d.format == "obj"]
    except ingest.AssetRefused as exc:
        _discard(downloads)
        job.mark_needs_attention(f"The result was refused: {exc}", POLLING_STATES)
        return
    stored, have_model = [], False
    for index, downloaded in enumerate(downloads):
        if downloaded.format == "glb" and not have_model:
            role, have_model = Asset.Role.MODEL, True
        elif downloaded.format in {"png", "jpeg", "webp", "gif", "mp4", "webm"}:
            role = Asset.Role.RENDER
        else:
            role = Asset.Role.ORIGINAL
        stored.append((downloaded, role, f"{index}:{job.kind}:{downloaded.name}"))
    if finishing.STEPS[job.kind].makes_model and not have_model:
        _discard(downloads)
        job.mark_needs_attention("The step's results hold no GLB model.", POLLING_STATES)
        return
    results = [{"url": r.url, "asset_type": r.asset_type} for r in found]
    try:
        version = finishing.make_version(job, stored, results, now)
    except ingest.AssetRefused as exc:
        _discard(downloads)
        job.mark_needs_attention(f"The result was refused: {exc}", POLLING_STATES)
        return
    log.info("%s job %s made generation %s", job.kind, job.pk, version.pk)
    # The new version is finished without ingest: its picture (a render's still, or a
    # poster of its new model) is drawn as ingest's are.
    transaction.on_commit(lambda: render_poster.delay(version.pk), robust=True)


def _discard(downloads):
    for downloaded in downloads:
        downloaded.path.unlink(missing_ok=True)


def hand_out(job, task, lease, states, now):
    """Claim a due conversion or concept job (in one of ``states``) and queue ``task`` for
    it; 1 if handed out, else 0. One whose work was started too often without finishing
    goes to a person instead."""
    if job.deliveries >= MAX_DELIVERIES + 2:
        with contextlib.suppress(IllegalTransition):
            job.mark_needs_attention(
                "Its work was started too often without finishing.", expected=states
            )
        return 0
    token = job.claim_for_dispatch(now, lease)
    if not token:
        return 0
    task.delay(job.pk, token)
    return 1


def dispatch_conversions(now, budget_left, limit=50):
    """Hand out due conversion polls within the rate budget (the dispatcher hands out
    their submits itself, in fair turns across kinds: ``turns.next_jobs``)."""
    from .models import Conversion

    # A worker that died while submitting: the upstream may have accepted and
    # charged it, so it is never resent; a person decides.
    for conversion in Conversion.objects.filter(state=State.SUBMITTING, due_at__lt=now)[:limit]:
        try:
            conversion.mark_needs_attention(
                "The worker stopped while sending it to the convert tool; it was not resent."
            )
        except IllegalTransition:
            continue  # it moved on meanwhile
        _alert(f"Conversion {conversion.pk} needs attention: submit outcome unknown.")
    sent = 0
    if budget_left <= 0:
        return sent
    polling = list(POLLING_STATES)
    due = Conversion.objects.filter(state__in=polling, due_at__lte=now).order_by("due_at")
    for conversion in due[: min(limit, budget_left)]:
        sent += hand_out(conversion, poll_conversion, CONVERSION_POLL_LEASE, polling, now)
    return sent


# Concept jobs ("Start from an image") have their steps in concepts.py; importing it here
# registers its tasks wherever Celery loads this module.
from . import concepts  # noqa: E402
