"""The domain: a generation is a database row, and the row is the unit of work.

Every state change is one method that runs a conditional UPDATE on the state it
expects (``WHERE state IN (...)``) and checks the row count, so two workers, two
deliveries of one message or two dispatchers can never both win.
"""

import uuid
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

from credits.models import LedgerEntry
from studio_dashboard import dataversion

from .catalogue import PROVIDERS


class BudgetExceeded(Exception):
    """A submit would overrun a budget; ``message`` says how much is left and who to ask."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class IllegalTransition(Exception):
    """A state change was asked of a generation that is not in a state allowing it."""


class CancelRefused(IllegalTransition):
    """A cancel came too late; ``message`` says why in words a member understands."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class State(models.TextChoices):
    QUEUED = "queued", "Queued"
    SUBMITTING = "submitting", "Submitting"
    PENDING = "pending", "Waiting upstream"
    IN_PROGRESS = "in_progress", "Generating"
    INGESTING = "ingesting", "Storing result"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"
    NEEDS_ATTENTION = "needs_attention", "Needs attention"
    CANCELED = "canceled", "Canceled"


FINAL_STATES = (State.FINISHED, State.FAILED, State.CANCELED)
# States in which the upstream holds a task of ours that we must poll.
POLLING_STATES = (State.PENDING, State.IN_PROGRESS)
IN_FLIGHT_STATES = (
    State.QUEUED,
    State.SUBMITTING,
    State.PENDING,
    State.IN_PROGRESS,
    State.INGESTING,
)


# Columns only the dispatcher's bookkeeping changes: an UPDATE of nothing else changes no page.
BOOKKEEPING_FIELDS = {"claim", "due_at", "deliveries"}


def _move_row(row, expected, fields):
    """UPDATE ``row`` to ``fields`` where its state is one of ``expected``, or raise.

    The conditional UPDATE is the lock: of two concurrent callers exactly one sees a
    row count of 1. The instance then holds what was written (computed values read back).
    """
    model = type(row)
    if model.objects.filter(pk=row.pk, state__in=expected).update(**fields) != 1:
        current = model.objects.filter(pk=row.pk).values_list("state", flat=True).first()
        raise IllegalTransition(
            f"{model._meta.model_name} {row.pk}: cannot go to {fields['state']} from {current} "
            f"(expected one of {', '.join(expected)})"
        )
    computed = [name for name, value in fields.items() if hasattr(value, "resolve_expression")]
    for name, value in fields.items():
        if name not in computed:
            setattr(row, name, value)
    if computed:
        row.refresh_from_db(fields=computed)


class Mode(models.TextChoices):
    TEXT = "text", "Text"
    IMAGE = "image", "Single image"
    MULTIVIEW = "multiview", "Multi-view"


def visibility_scope(user):
    """Which generations ``user`` sees: "team" (all of them) or their own id."""
    if user.has_perm("generations.view_all_generations") or user.has_perm(
        "generations.view_generation"
    ):
        return "team"
    return user.pk


def queue_once(queryset, *, budget_key, images, doorbell, **fields):
    """Save a QUEUED row of ``queryset`` (a generation or a concept job) with its estimate
    held, its reference images (``[(slot, images.CleanImage)]``) stored, and ring its submit
    ``doorbell`` after commit.

    One row per form token: a second post of the same form (a double click) returns the
    first row, or None if it belongs to someone else. The due time lets the dispatcher
    submit it if the doorbell is lost.
    """
    from credits.budgets import reserve

    owner, total = fields["owner"], fields["credit_estimate"]
    try:
        with transaction.atomic():
            row = queryset.create(due_at=timezone.now() + timedelta(seconds=10), **fields)
            # The budget check and the hold in one transaction: reserve() locks the
            # budget rows until commit, so concurrent submits cannot both fit the last
            # credits. The estimate is held from the moment the form is accepted; it
            # becomes a charge when the upstream accepts.
            reserve(owner, budget_key, total)
            row._ledger(LedgerEntry.Kind.HOLD, -total, "held at submit")
            for position, (slot, image) in enumerate(images):
                row.references.create(
                    slot=slot,
                    position=position,
                    file=ContentFile(image.data, name=f"{uuid.uuid4().hex}.{image.format}"),
                    format=image.format,
                    width=image.width,
                    height=image.height,
                    bytes=len(image.data),
                )
            # robust: with the broker down the row is still saved and the member
            # sees it; the dispatcher submits it when its due time passes.
            transaction.on_commit(lambda: doorbell.delay(row.pk), robust=True)
    except IntegrityError:
        return queryset.filter(form_token=fields["form_token"], owner=owner).first()
    return row


class OwnedJobQuerySet(models.QuerySet):
    """Rows of upstream work a member owns: generations and concept jobs."""

    def visible_to(self, user):
        """Members see the team's generations (acting on one is for its owner or an admin);
        a user without the view permission sees only their own."""
        if visibility_scope(user) == "team":
            return self
        return self.filter(owner=user)

    def update(self, **fields):
        """A generation's changes are UPDATEs, which send no signal: each one that changes
        what a page shows makes the pages' cached fragments old (studio_dashboard/dataversion.py).
        A claim or a due time alone is the dispatcher's bookkeeping, shown nowhere."""
        updated = super().update(**fields)
        if updated and not fields.keys() <= BOOKKEEPING_FIELDS:
            dataversion.bump()
        return updated


class GenerationQuerySet(OwnedJobQuerySet):
    def create_queued(
        self, *, owner, provider, mode, prompt, options, form_token, edition="", images=()
    ):
        """Save a QUEUED generation and ring the submit doorbell after commit.

        One generation per form token: a second post of the same form (a double
        click) returns the first generation, or None if it belongs to someone else.
        The due time lets the dispatcher submit it if the doorbell is lost.
        """
        from .pricing import estimate
        from .tasks import submit_generation

        spec = PROVIDERS[provider]
        edition = edition or (spec.default_edition or "")
        price = estimate(provider, mode, options, edition)
        total, breakdown = price.total, price.breakdown
        return queue_once(
            self,
            budget_key=provider,
            images=images,
            doorbell=submit_generation,
            owner=owner,
            provider=provider,
            mode=mode,
            edition=edition,
            prompt=prompt,
            options=options,
            form_token=form_token,
            credit_estimate=total,
            price_breakdown=breakdown,
            price_version=price.version,
        )

    def due(self, now):
        """Rows whose next step (submit, poll or ingest) is due.

        Served by the partial index ``generation_due_idx``.
        """
        return self.filter(due_at__lte=now, state__in=IN_FLIGHT_STATES).order_by("due_at")


class Generation(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    # A key of catalogue.PROVIDERS. No `choices`: the catalogue is data that grows,
    # and every change would otherwise be a migration.
    provider = models.CharField(max_length=40)
    edition = models.CharField(max_length=20, blank=True)
    mode = models.CharField(max_length=12, choices=Mode.choices, default=Mode.TEXT)
    prompt = models.TextField(blank=True)
    options = models.JSONField(default=dict, blank=True)
    # "Regenerate with changes" links the new generation to the one it revises.
    previous_version = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="next_versions"
    )
    # One form submission makes at most one generation (double-click safety).
    form_token = models.UUIDField(default=uuid.uuid4, unique=True)

    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    upstream_task_id = models.CharField(max_length=64, blank=True)
    upstream_status = models.CharField(max_length=40, blank=True)
    credit_estimate = models.PositiveIntegerField()
    price_breakdown = models.JSONField(default=list, blank=True)
    # The version of the price table the estimate was made with (credits app).
    price_version = models.PositiveIntegerField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)
    attention_reason = models.TextField(blank=True)
    # The last upstream answer that we could not understand, redacted, for diagnosis.
    last_raw_response = models.TextField(blank=True)

    # The next time the dispatcher should act on this row. The broker is only
    # a doorbell: a lost message is recovered when this due time passes again.
    due_at = models.DateTimeField(null=True, blank=True)
    # Who holds the row's current step: the dispatcher writes a token and sends
    # it with the task; the task swaps it for its own, so of two deliveries of
    # one message only one does the work.
    claim = models.CharField(max_length=32, blank=True)
    # The upstream's result list as last seen on FINISHED, for ingest.
    results = models.JSONField(default=list, blank=True)
    url_refreshes = models.PositiveSmallIntegerField(default=0)
    # Deliveries of work on this row; a row that keeps killing workers is
    # quarantined (see tasks.MAX_DELIVERIES).
    deliveries = models.PositiveSmallIntegerField(default=0)
    submit_attempts = models.PositiveSmallIntegerField(default=0)
    polls = models.PositiveIntegerField(default=0)
    poll_errors = models.PositiveSmallIntegerField(default=0)
    finished_null_since = models.DateTimeField(null=True, blank=True)
    # What the planner learns from (see planner.py). A poll that finds the result
    # only says it finished *before* that poll, so the submit-to-seen time
    # overstates the duration by however late we looked; these keep the
    # precise observations apart from the late ones.
    seen_running_at = models.DateTimeField(null=True, blank=True)
    duration_estimate = models.FloatField(null=True, blank=True)  # from progress, seconds
    observed_duration = models.FloatField(null=True, blank=True)  # seconds, when precise

    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    upstream_done_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    state_changed_at = models.DateTimeField(default=timezone.now)

    objects = GenerationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("view_all_generations", "Can see every member's generations"),
            ("review_generation", "Can review finished generations"),
            ("resolve_generation", "Can resolve generations that need attention"),
        ]
        indexes = [
            # The dispatcher's query: in-flight rows by due time.
            models.Index(
                fields=["due_at"],
                name="generation_due_idx",
                condition=Q(
                    state__in=["queued", "submitting", "pending", "in_progress", "ingesting"]
                ),
            ),
            # A member's own list, newest first.
            models.Index(fields=["owner", "-created_at"], name="generation_owner_recent_idx"),
            # The history list's default order (views.generation_list: newest first, 24 a
            # page): read in index order and stop, instead of sorting every row.
            models.Index(fields=["-created_at", "-id"], name="generation_recent_idx"),
            # reviews.models.awaiting_review's count in the navigation: the finished ids,
            # merge-anti-joined with the reviews' generation_id index, both index-only.
            models.Index(
                fields=["id"], name="generation_finished_idx", condition=Q(state="finished")
            ),
            # The newest state change: one index probe that tells the navigation's cached
            # awaiting-review count that a generation finished (reviews.context_processors).
            models.Index(fields=["state_changed_at"], name="generation_state_changed_idx"),
            # The spend review's finished and failed generations in a date range
            # (credits.spend); made by credits 0002 and taken over by migration 0010.
            models.Index(fields=["state", "finished_at"], name="generation_final_idx"),
        ]

    def __str__(self):
        return f"#{self.pk} {self.provider_label} ({self.get_state_display()})"

    @property
    def provider_spec(self):
        return PROVIDERS[self.provider]

    @property
    def references(self):
        """Its reference images (``images``), by the name a concept job gives its own."""
        return self.images

    @property
    def provider_label(self):
        spec = PROVIDERS.get(self.provider)
        return spec.label if spec else self.provider

    @property
    def is_final(self):
        return self.state in FINAL_STATES

    @property
    def glb_asset(self):
        """The GLB shown in the viewer: a converted preview if there is one, else the original."""
        assets = {a.role: a for a in self.assets.all()}
        return assets.get(Asset.Role.PREVIEW) or assets.get(Asset.Role.MODEL)

    # --- transitions ---------------------------------------------------------
    def _transition(self, expected, new_state, **fields):
        """Move from one of the ``expected`` states to ``new_state``, or raise (``_move_row``)."""
        fields = {"state": new_state, "state_changed_at": timezone.now(), **fields}
        _move_row(self, expected, fields)

    def claim_for_submit(self):
        """QUEUED -> SUBMITTING. Only one delivery of the submit task gets here."""
        self._transition(
            [State.QUEUED],
            State.SUBMITTING,
            submit_attempts=models.F("submit_attempts") + 1,
            due_at=timezone.now() + timedelta(seconds=settings.SUBMIT_DEADLINE),
        )

    def requeue_submit(self, due_at, reason=""):
        """SUBMITTING -> QUEUED when nothing reached the upstream (connect failure, 429)."""
        self._transition(
            [State.SUBMITTING],
            State.QUEUED,
            due_at=due_at,
            attention_reason=reason[:2000],
            claim="",
            deliveries=0,
        )

    def mark_submitted(self, task_id, first_poll_at):
        """SUBMITTING -> PENDING, and the hold becomes a charge, in one transaction."""
        with transaction.atomic():
            self._transition(
                [State.SUBMITTING],
                State.PENDING,
                upstream_task_id=task_id,
                submitted_at=timezone.now(),
                due_at=first_poll_at,
                attention_reason="",
                claim="",
                deliveries=0,
            )
            self._release_hold("hold became a charge")
            self._ledger(LedgerEntry.Kind.CHARGE, -self.credit_estimate, f"upstream task {task_id}")

    def mark_rejected(self, reason):
        """SUBMITTING -> FAILED: the upstream refused the submit; nothing was charged."""
        with transaction.atomic():
            self._transition(
                [State.SUBMITTING],
                State.FAILED,
                failure_reason=reason[:2000],
                finished_at=timezone.now(),
                due_at=None,
            )
            self._release_hold("upstream refused the request")

    def mark_needs_attention(self, reason, raw=""):
        """Any in-flight state -> NEEDS_ATTENTION: a person must decide; never resent automatically."""
        self._transition(
            list(IN_FLIGHT_STATES),
            State.NEEDS_ATTENTION,
            attention_reason=reason[:2000],
            # Without a new answer, keep the row's (never this instance's possibly older copy).
            **({"last_raw_response": raw[:4000]} if raw else {}),
            due_at=None,
            claim="",
        )

    def record_progress(self, upstream_status, progress, next_poll_at):
        state = State.IN_PROGRESS if upstream_status == "IN_PROGRESS" else self.state
        if state not in POLLING_STATES:
            state = State.PENDING
        now = timezone.now()
        learned = {}
        if upstream_status != "FINISHED":
            learned["seen_running_at"] = now
            if progress and 5 <= progress < 100 and self.submitted_at:
                # Progress rises with time upstream: elapsed / share done = duration.
                elapsed = (now - self.submitted_at).total_seconds()
                learned["duration_estimate"] = elapsed * 100 / progress
        self._transition(
            list(POLLING_STATES),
            state,
            **learned,
            upstream_status=upstream_status[:40],
            progress=max(self.progress, min(100, max(0, int(progress or 0)))),
            due_at=next_poll_at,
            polls=models.F("polls") + 1,
            poll_errors=0,
            claim="",
            deliveries=0,
        )

    def start_ingest(self, results, due_at):
        """PENDING/IN_PROGRESS -> INGESTING once the upstream reports the result."""
        done_at = self.upstream_done_at or timezone.now()
        self._transition(
            list(POLLING_STATES),
            State.INGESTING,
            results=results,
            claim="",
            deliveries=0,
            polls=models.F("polls") + 1,
            upstream_status="FINISHED",
            progress=100,
            upstream_done_at=done_at,
            observed_duration=self._observed_duration(done_at),
            due_at=due_at,
        )

    def _observed_duration(self, done_at):
        """Submit-to-done seconds if we know them well, else None (not learned from).

        Precise when the last poll that saw it running was close before the one
        that saw it done (the midpoint is then within a few percent); otherwise
        the upstream's own progress figure gives the estimate.
        """
        if not self.submitted_at:
            return None
        seen_done = (done_at - self.submitted_at).total_seconds()
        if self.seen_running_at:
            seen_running = (self.seen_running_at - self.submitted_at).total_seconds()
            if seen_done - seen_running <= 0.15 * seen_done:
                return (seen_running + seen_done) / 2
        return self.duration_estimate

    def defer(self, due_at, expected=None, **fields):
        """Stay in the current state and act again at ``due_at`` (rate budget, backoff)."""
        self._transition(
            expected or [self.state], self.state, due_at=due_at, claim="", deliveries=0, **fields
        )

    def refresh_result_urls(self, due_at):
        """INGESTING -> IN_PROGRESS once, when the storage refused an expired URL."""
        self._transition(
            [State.INGESTING],
            State.IN_PROGRESS,
            due_at=due_at,
            url_refreshes=models.F("url_refreshes") + 1,
            claim="",
        )

    def mark_finished(self):
        """INGESTING -> FINISHED. Only with a stored, verified model asset."""
        if not self.assets.filter(role__in=[Asset.Role.MODEL, Asset.Role.PREVIEW]).exists():
            raise IllegalTransition(f"generation {self.pk}: no verified model stored")
        self._transition(
            [State.INGESTING],
            State.FINISHED,
            finished_at=timezone.now(),
            due_at=None,
            progress=100,
            claim="",
            deliveries=0,
        )

    def mark_failed(self, reason):
        """Upstream FAILED: record why and the refund (the upstream refunds itself)."""
        with transaction.atomic():
            self._transition(
                [State.PENDING, State.IN_PROGRESS, State.INGESTING],
                State.FAILED,
                failure_reason=reason[:2000] or "The upstream reported a failure without a reason.",
                finished_at=timezone.now(),
                upstream_done_at=self.upstream_done_at or timezone.now(),
                due_at=None,
            )
            self.refund("upstream reported FAILED")

    def refund(self, note):
        """Record the refund of this generation's charge, once. Safe to call repeatedly."""
        # Only a failed generation is refunded: a refund of one that can still
        # finish would leave it both finished and refunded (FAILED is final).
        if self.state != State.FAILED:
            return
        if not LedgerEntry.objects.filter(generation=self, kind=LedgerEntry.Kind.CHARGE).exists():
            return
        self._ledger(LedgerEntry.Kind.REFUND, self.credit_estimate, note)

    def _release_hold(self, note):
        """Give back the hold taken when the form was accepted, once."""
        if LedgerEntry.objects.filter(generation=self, kind=LedgerEntry.Kind.HOLD).exists():
            self._ledger(LedgerEntry.Kind.RELEASE, self.credit_estimate, note)

    def _ledger(self, kind, amount, note):
        """Append one entry for this generation; a second of the same kind is a no-op."""
        LedgerEntry.objects.append_once(
            kind=kind,
            user_id=self.owner_id,
            generation=self,
            amount=amount,
            provider=self.provider,
            note=note[:300],
        )

    # --- a person resolves NEEDS_ATTENTION --------------------------------------
    @property
    def is_charged(self):
        return LedgerEntry.objects.filter(generation=self, kind=LedgerEntry.Kind.CHARGE).exists()

    def resolve_with_task_id(self, task_id, note=""):
        """The admin found the upstream task: poll it (charging it if it was not yet)."""
        with transaction.atomic():
            self._transition(
                [State.NEEDS_ATTENTION],
                State.PENDING,
                upstream_task_id=task_id,
                submitted_at=self.submitted_at or timezone.now(),
                due_at=timezone.now(),
                attention_reason="",
                claim="",
                deliveries=0,
                poll_errors=0,
                url_refreshes=0,
                finished_null_since=None,
            )
            if not self.is_charged:
                self._release_hold("hold became a charge (task id given by an admin)")
                self._ledger(
                    LedgerEntry.Kind.CHARGE, -self.credit_estimate, f"upstream task {task_id}"
                )

    def resolve_as_lost(self, note):
        """The admin says nothing usable exists upstream: fail it and give the credits back."""
        with transaction.atomic():
            self._transition(
                [State.NEEDS_ATTENTION],
                State.FAILED,
                failure_reason=f"Marked lost by an admin: {note}"[:2000],
                finished_at=timezone.now(),
                due_at=None,
            )
            if self.is_charged:
                self.refund(f"marked lost: {note}")
            else:
                self._release_hold(f"marked lost: {note}")

    def resolve_by_resubmitting(self):
        """Send it again, deliberately. Only when we never recorded a charge: a charged
        generation exists upstream, and a second submit would pay twice."""
        if self.is_charged:
            raise IllegalTransition(
                f"generation {self.pk} was charged upstream; give its task id or mark it lost"
            )
        self._transition(
            [State.NEEDS_ATTENTION],
            State.QUEUED,
            upstream_task_id="",
            due_at=timezone.now(),
            attention_reason="",
            claim="",
            deliveries=0,
            submit_attempts=0,
        )

    @property
    def cancel_refusal(self):
        """Why this generation can no longer be canceled, in words; "" while it can."""
        if self.state == State.QUEUED:
            return ""
        if self.state == State.SUBMITTING:
            return "It is being sent upstream right now, and the upstream has no cancel."
        if self.state in (*POLLING_STATES, State.INGESTING, State.NEEDS_ATTENTION):
            return (
                "It was already sent upstream, which has no cancel: "
                "it will finish and its credits are charged."
            )
        return f"It is {self.get_state_display().lower()} already."

    def cancel(self, by=None):
        """QUEUED -> CANCELED before anything was sent: it leaves the queue (the submit's
        claim is a conditional UPDATE on QUEUED, so of a cancel and a submit only one
        wins) and its hold is released in the ledger. ``CancelRefused`` says why not."""
        with transaction.atomic():
            try:
                self._transition(
                    [State.QUEUED],
                    State.CANCELED,
                    finished_at=timezone.now(),
                    due_at=None,
                    claim="",
                )
            except IllegalTransition:
                self.refresh_from_db(fields=["state"])
                raise CancelRefused(self.cancel_refusal) from None
            who = f" by {by.get_username()}" if by is not None else ""
            self._release_hold(f"canceled before submit{who}")


class StoredImage(models.Model):
    """A cleaned image in our storage (re-encoded, metadata stripped) and its facts."""

    format = models.CharField(max_length=10)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    bytes = models.PositiveIntegerField()

    class Meta:
        abstract = True

    def data_uri(self):
        import base64

        mime = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}[self.format]
        with self.file.open("rb") as fh:
            return f"data:{mime};base64,{base64.b64encode(fh.read()).decode()}"


class ReferenceImage(StoredImage):
    """An uploaded reference image, already cleaned (re-encoded, metadata stripped)."""

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="images")
    # "image" for single-image input, else the view slot: "front", "left", ...
    slot = models.CharField(max_length=20, default="image")
    position = models.PositiveSmallIntegerField(default=0)
    file = models.FileField(upload_to="references/", max_length=300)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["generation", "slot"], name="reference_one_per_slot")
        ]

    def __str__(self):
        return f"{self.slot} image of generation {self.generation_id}"


class Asset(models.Model):
    class Role(models.TextChoices):
        MODEL = "model", "Model (GLB)"
        PREVIEW = "preview", "Preview GLB (converted)"
        ORIGINAL = "original", "Original file"
        THUMBNAIL = "thumbnail", "Thumbnail"
        CONVERTED = "converted", "Converted file"
        # A still or a turntable frame (or its GIF) rendered by a finishing step.
        RENDER = "render", "Rendered image"

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="assets")
    role = models.CharField(max_length=16, choices=Role.choices)
    file = models.FileField(upload_to="assets/", max_length=300)
    # What the bytes are, by their magic: "glb", "zip", "fbx", "png", "jpeg", "webp".
    format = models.CharField(max_length=10)
    original_name = models.CharField(max_length=200, blank=True)
    bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    facts = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            # One stored file per upstream result, however often ingest runs.
            models.UniqueConstraint(
                fields=["generation", "original_name"], name="asset_one_per_result"
            ),
        ]

    def __str__(self):
        return f"{self.get_role_display()} of generation {self.generation_id}"


class ConversionQuerySet(models.QuerySet):
    def update(self, **fields):
        """As ``OwnedJobQuerySet.update``: a conversion's transitions change what pages show
        (the navigation's needs-attention count among them); its claims do not."""
        updated = super().update(**fields)
        if updated and not fields.keys() <= BOOKKEEPING_FIELDS:
            dataversion.bump()
        return updated

    def take_step(self, pk, claim, expected):
        """The conversion whose dispatched step this delivery may do, or None.

        The dispatcher sent ``claim`` with the task; swapping it for our own token
        means that of two deliveries of one message only one does the work (without a
        claim, a doorbell rung at once, the state alone decides). None as well when the
        row moved on or is gone.
        """
        filters = {"pk": pk, "state__in": expected}
        if claim is not None:
            filters["claim"] = claim
        if self.filter(**filters).update(claim=uuid.uuid4().hex) != 1:
            return None
        return self.select_related("generation", "generation__owner").get(pk=pk)


class Conversion(models.Model):
    """An upstream job on a finished generation's model: a conversion or a finishing step.

    Local conversions (OBJ, STL, PLY) are done by trimesh at once; FBX and USDZ
    go through the upstream's convert tool, an asynchronous, charged operation
    tracked here like a small generation (due time, claim, ledger). The finishing
    steps (remesh, texture, repair, optimize, render: ``kind``, with ``options``,
    see generations/finishing.py) are the same kind of job on the same row and
    transitions; a finished step's files become a new version of the asset
    (``result``, a FINISHED ``Generation`` whose previous version is the source).
    Every state change is one method below, a conditional UPDATE as for ``Generation``.
    """

    class Via(models.TextChoices):
        LOCAL = "local", "Local (trimesh)"
        UPSTREAM = "upstream", "Upstream convert tool"

    class Kind(models.TextChoices):
        CONVERT = "convert", "Convert"
        REMESH = "remesh", "Remesh"
        TEXTURE = "texture", "Texture edit"
        REPAIR = "repair", "Repair"
        OPTIMIZE = "optimize", "Optimize for the web"
        RENDER = "render", "Render"

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="conversions")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.CONVERT)
    # A finishing step's validated options, as sent (finishing.py builds the request).
    options = models.JSONField(default=dict, blank=True)
    # One finishing step per form submission (a double click asks once).
    form_token = models.UUIDField(null=True, blank=True, unique=True)
    # The new version a finished step made.
    result = models.OneToOneField(
        Generation, null=True, blank=True, on_delete=models.SET_NULL, related_name="made_by_step"
    )
    finished_null_since = models.DateTimeField(null=True, blank=True)
    url_refreshes = models.PositiveSmallIntegerField(default=0)
    output_format = models.CharField(max_length=12)
    via = models.CharField(max_length=10, choices=Via.choices)
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    upstream_task_id = models.CharField(max_length=64, blank=True)
    credit_estimate = models.PositiveIntegerField(default=0)
    # The price table version its price came from (None: the catalogue's defaults).
    price_version = models.PositiveIntegerField(null=True, blank=True)
    failure_reason = models.TextField(blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    claim = models.CharField(max_length=32, blank=True)
    deliveries = models.PositiveSmallIntegerField(default=0)
    # Consecutive polls (or downloads) that failed; a person is asked at tasks.MAX_POLL_ERRORS.
    poll_errors = models.PositiveSmallIntegerField(default=0)
    asset = models.ForeignKey("Asset", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    # When it last stopped for a person (NEEDS_ATTENTION; failure_reason says why), and
    # when a person last resolved that (a time-out counts again from then).
    attention_since = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ConversionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One conversion per format and generation; asking again shows the first.
            models.UniqueConstraint(
                fields=["generation", "output_format"],
                condition=Q(kind="convert"),
                name="conversion_one_per_format",
            )
        ]
        indexes = [
            models.Index(
                fields=["due_at"],
                name="conversion_due_idx",
                condition=Q(
                    state__in=["queued", "submitting", "pending", "in_progress", "ingesting"]
                ),
            )
        ]

    def __str__(self):
        what = self.output_format if self.kind == self.Kind.CONVERT else self.kind
        return f"{what} of generation {self.generation_id} ({self.state})"

    @property
    def description(self):
        """What a finishing step does, with its options, in words (the version's lineage)."""
        from .finishing import describe

        return describe(self)

    # --- transitions ---------------------------------------------------------
    def _transition(self, expected, new_state, **fields):
        """Move from one of the ``expected`` states to ``new_state``, giving up the claim
        (the step is done), or raise IllegalTransition (``_move_row``)."""
        _move_row(self, expected, {"state": new_state, "claim": "", **fields})

    def claim_for_dispatch(self, now, lease):
        """Hand this due step to one task: a claim token for it, or None when another
        dispatcher took it first. The step must end within ``lease`` or is handed out again."""
        token = uuid.uuid4().hex
        # Still due: a row read again after another dispatcher claimed it carries that
        # claim's later due time, which must not be taken for the one we chose it by.
        won = (
            type(self)
            .objects.filter(pk=self.pk, state=self.state, due_at=self.due_at, due_at__lte=now)
            .update(claim=token, due_at=now + lease, deliveries=models.F("deliveries") + 1)
        )
        return token if won == 1 else None

    def hold(self, note):
        """Hold the price against the budget from the moment it is asked for, like a
        generation's estimate; it becomes a charge when the upstream accepts."""
        self._ledger(LedgerEntry.Kind.HOLD, -self.credit_estimate, note)

    def claim_for_submit(self, deadline):
        """QUEUED -> SUBMITTING; if the worker dies, the sweep finds it after ``deadline``."""
        self._transition([State.QUEUED], State.SUBMITTING, due_at=deadline)

    def requeue_submit(self, due_at):
        """SUBMITTING -> QUEUED when nothing reached the upstream (rate budget, connect failure)."""
        self._transition([State.SUBMITTING], State.QUEUED, due_at=due_at)

    def mark_submitted(self, task_id, first_poll_at):
        """SUBMITTING -> PENDING, and the hold becomes a charge, in one transaction."""
        with transaction.atomic():
            self._transition(
                [State.SUBMITTING],
                State.PENDING,
                upstream_task_id=task_id,
                due_at=first_poll_at,
                deliveries=0,
                poll_errors=0,
            )
            self._hold_becomes_charge(task_id, "hold became a charge")

    def _hold_becomes_charge(self, task_id, note):
        self._ledger(LedgerEntry.Kind.RELEASE, self.credit_estimate, note)
        self._ledger(LedgerEntry.Kind.CHARGE, -self.credit_estimate, f"{self.kind} task {task_id}")

    def mark_needs_attention(self, reason, expected=(State.SUBMITTING,)):
        """-> NEEDS_ATTENTION: a person decides; never resent automatically (it may have
        been accepted and charged). The hold stays."""
        self._transition(
            list(expected),
            State.NEEDS_ATTENTION,
            failure_reason=reason[:2000],
            attention_since=timezone.now(),
            due_at=None,
        )

    def record_progress(self, upstream_status, progress, next_poll_at):
        """Still converting upstream: keep polling at ``next_poll_at``."""
        state = State.IN_PROGRESS if upstream_status == "IN_PROGRESS" else self.state
        self._transition(
            list(POLLING_STATES),
            state,
            progress=max(self.progress, min(99, int(progress or 0))),
            due_at=next_poll_at,
            deliveries=0,
            poll_errors=0,
        )

    def defer(self, due_at, **fields):
        """Stay in the current state and try again at ``due_at`` (rate budget, a failed poll:
        ``poll_errors``). The step ended on its own, so its delivery does not count as one
        that killed a worker."""
        self._transition([self.state], self.state, due_at=due_at, deliveries=0, **fields)

    def mark_failed(self, reason):
        """Any working state -> FAILED, giving the credits back in the same transaction: a
        refund of the charge if the upstream took one, else the hold released."""
        with transaction.atomic():
            self._transition(
                [State.SUBMITTING, *POLLING_STATES, State.INGESTING],
                State.FAILED,
                failure_reason=reason[:2000],
                finished_at=timezone.now(),
                due_at=None,
            )
            self._give_back(reason)

    def _give_back(self, reason):
        """The credits back, once: a refund of the charge if the upstream took one, else
        the hold released (the ledger's unique constraints make a second one a no-op)."""
        kinds = set(self.ledger.values_list("kind", flat=True))
        if LedgerEntry.Kind.CHARGE in kinds:
            self._ledger(LedgerEntry.Kind.REFUND, self.credit_estimate, reason)
        elif LedgerEntry.Kind.HOLD in kinds:
            self._ledger(LedgerEntry.Kind.RELEASE, self.credit_estimate, reason)

    # --- a person resolves NEEDS_ATTENTION (generations/attention.py) -----------------
    # Each is a conditional UPDATE from NEEDS_ATTENTION in the transaction of its ledger
    # entries: of a double post, or an admin and anything else at once, one does it.
    @property
    def is_charged(self):
        return self.ledger.filter(kind=LedgerEntry.Kind.CHARGE).exists()

    def resolve_with_task_id(self, task_id, note=""):
        """The admin found the upstream task: poll it now. Never charged, its hold becomes
        the charge as at ``mark_submitted``; charged already, nothing more is charged."""
        now = timezone.now()
        with transaction.atomic():
            self._transition(
                [State.NEEDS_ATTENTION],
                State.PENDING,
                upstream_task_id=task_id,
                due_at=now,
                failure_reason="",
                resolved_at=now,
                deliveries=0,
                poll_errors=0,
                url_refreshes=0,
                finished_null_since=None,
            )
            if not self.is_charged:
                self._hold_becomes_charge(
                    task_id, "hold became a charge (task id given by an admin)"
                )

    def resolve_as_lost(self, note):
        """The admin says nothing usable exists upstream: it fails, and its credits come
        back once (refunded if charged, else the hold released)."""
        with transaction.atomic():
            self._transition(
                [State.NEEDS_ATTENTION],
                State.FAILED,
                failure_reason=f"Marked lost by an admin: {note}"[:2000],
                finished_at=timezone.now(),
                resolved_at=timezone.now(),
                due_at=None,
            )
            self._give_back(f"marked lost: {note}")

    def resolve_by_resubmitting(self):
        """Send it again, deliberately, with its hold still in place. Only when we never
        recorded a charge: a charged job exists upstream, and a second submit pays twice."""
        if self.is_charged:
            raise IllegalTransition(
                f"{self} was charged upstream; give its task id or mark it lost"
            )
        self._transition(
            [State.NEEDS_ATTENTION],
            State.QUEUED,
            upstream_task_id="",
            due_at=timezone.now(),
            failure_reason="",
            resolved_at=timezone.now(),
            deliveries=0,
            poll_errors=0,
            url_refreshes=0,
            finished_null_since=None,
        )

    def retry_locally(self):
        """FAILED -> INGESTING: a failed local conversion is tried again (local ones are free)."""
        self._transition([State.FAILED], State.INGESTING, failure_reason="", finished_at=None)

    def mark_finished(self, asset, result=None):
        """The file is stored (a local conversion, or the upstream's result) -> FINISHED;
        a finishing step's ``result`` is the new version its files became."""
        self._transition(
            [State.INGESTING, *POLLING_STATES],
            State.FINISHED,
            progress=100,
            asset=asset,
            result=result,
            finished_at=timezone.now(),
            due_at=None,
        )

    def wait_for_result_file(self, since, next_poll_at):
        """FINISHED upstream without a result URL yet (a known quirk): poll again."""
        self._transition(
            list(POLLING_STATES),
            self.state,
            finished_null_since=since,
            due_at=next_poll_at,
            deliveries=0,
            poll_errors=0,
        )

    def refresh_result_urls(self, due_at):
        """A result URL had expired when we fetched it: poll once more for fresh ones."""
        self._transition(
            list(POLLING_STATES),
            self.state,
            url_refreshes=models.F("url_refreshes") + 1,
            due_at=due_at,
        )

    def _ledger(self, kind, amount, note):
        """Append one entry for this conversion; a second of the same kind is a no-op."""
        LedgerEntry.objects.append_once(
            kind=kind,
            conversion=self,
            user_id=self.generation.owner_id,
            amount=amount,
            provider="convert",
            note=note[:300],
        )


def needs_attention_count(kinds=None):
    """Generations, conversions and finishing steps, and concept jobs (or only the models
    in ``kinds``) waiting for a person (NEEDS_ATTENTION), in one query."""
    counted = [
        model.objects.filter(state=State.NEEDS_ATTENTION).order_by().values("pk")
        for model in kinds or (Generation, Conversion, ConceptJob)
    ]
    return counted[0].union(*counted[1:], all=True).count()


class RateBudget(models.Model):
    """The upstream's rate budget for the database limiter (embedded set-up without Redis).

    One row; its lock serialises every process that wants to call the upstream.
    """

    key = models.CharField(max_length=40, unique=True)
    # Call times in the current window, as a JSON list of UNIX timestamps.
    calls = models.JSONField(default=list)
    blocked_until = models.FloatField(default=0.0)
    # The limit learned from the wallet; 0 until the first wallet answer.
    limit = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"rate budget {self.key}"


class Alert(models.Model):
    """Something an admin must see (a refused API key, a quarantined generation)."""

    message = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.message[:80]


# --- batches -------------------------------------------------------------------------------
class Batch(models.Model):
    """Many generations asked for at once: a CSV (one row each) or many images (one each).

    A draft keeps the rows as read, with their errors and costs, until its owner submits
    it; ``generations.batches.submit`` then queues every row or none.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    # The CSV's records as read ([] for a batch of images: a row per image), and the
    # choices of the upload form: the provider, edition and options of rows without them.
    records = models.JSONField(default=list, blank=True)
    choices = models.JSONField(default=dict, blank=True)
    # [{"row", "prompt", "image", "provider", "mode", "edition", "options", "errors",
    #   "cost"}, ...] as the preview shows them.
    rows = models.JSONField(default=list, blank=True)
    # Makes each row's form token, so a batch can never queue a row twice.
    token = models.UUIDField(default=uuid.uuid4, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"batch {self.pk} ({self.name})"


class BatchImage(models.Model):
    """An image uploaded with a batch, found by its file name from a CSV row."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="images")
    name = models.CharField(max_length=200)
    file = models.FileField(upload_to="batches/", max_length=300)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["batch", "name"], name="batch_image_one_per_name")
        ]

    def __str__(self):
        return f"{self.name} of batch {self.batch_id}"


class BatchItem(models.Model):
    """The generation a submitted batch's row became."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="items")
    row = models.PositiveIntegerField()
    generation = models.OneToOneField(Generation, on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ["row"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "row"], name="batch_item_one_per_row")
        ]

    def __str__(self):
        return f"row {self.row} of batch {self.batch_id}"


# --- concept images ("Start from an image") ------------------------------------------------
class ConceptJobQuerySet(OwnedJobQuerySet):
    def create_queued(self, *, owner, image_model, prompt, options, count, form_token, **extra):
        """Save a QUEUED concept job with its price held (``queue_once``). ``extra``:
        ``edit_of`` (the concept image edited again) and ``references`` (cleaned uploads
        to edit, ``images.CleanImage``)."""
        from .concepts import submit_concept
        from .pricing import image_estimate

        price = image_estimate(image_model, options, count)
        references = extra.pop("references", ())
        return queue_once(
            self,
            budget_key=image_model,
            images=[("image", image) for image in references],
            doorbell=submit_concept,
            owner=owner,
            image_model=image_model,
            prompt=prompt,
            options=options,
            count=count,
            form_token=form_token,
            credit_estimate=price.total,
            price_breakdown=price.breakdown,
            price_version=price.version,
            **extra,
        )


class ConceptJob(models.Model):
    """A prompt (and optionally images to edit) that becomes 1-4 concept images upstream.

    An upstream job like a generation: the row is the unit of work, each state change
    is one method below (a conditional UPDATE, ``_move_row``), its price is held at
    submit, charged when the upstream accepts and refunded once if it FAILED. Its ledger
    entries are tied to it (``LedgerEntry.concept_job``, one of each kind, as a
    conversion's) and name it in their note; each transition is in the transaction of
    its entries.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    image_model = models.CharField(max_length=40)  # a key of image_models.IMAGE_MODELS
    prompt = models.TextField()
    options = models.JSONField(default=dict, blank=True)
    count = models.PositiveSmallIntegerField(default=1)
    # "Edit again": the concept image this job edits (sent first, before any reference).
    edit_of = models.ForeignKey(
        "ConceptImage", null=True, blank=True, on_delete=models.SET_NULL, related_name="edits"
    )
    form_token = models.UUIDField(default=uuid.uuid4, unique=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    upstream_task_id = models.CharField(max_length=64, blank=True)
    credit_estimate = models.PositiveIntegerField()
    price_version = models.PositiveIntegerField(null=True, blank=True)  # as a generation's
    price_breakdown = models.JSONField(default=list, blank=True)
    failure_reason = models.TextField(blank=True)
    results = models.JSONField(default=list, blank=True)
    url_refreshes = models.PositiveSmallIntegerField(default=0)
    finished_null_since = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    claim = models.CharField(max_length=32, blank=True)
    deliveries = models.PositiveSmallIntegerField(default=0)
    # As a conversion's: failed polls or downloads in a row, when it last stopped for a
    # person and when a person resolved that (its time-out counts again from then).
    poll_errors = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    attention_since = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ConceptJobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["due_at"],
                name="conceptjob_due_idx",
                condition=Q(
                    state__in=["queued", "submitting", "pending", "in_progress", "ingesting"]
                ),
            )
        ]

    def __str__(self):
        return f"concept job {self.pk} ({self.state})"

    @property
    def model_spec(self):
        from .image_models import IMAGE_MODELS

        return IMAGE_MODELS[self.image_model]

    @property
    def is_final(self):
        return self.state in FINAL_STATES

    @property
    def is_edit(self):
        return self.edit_of_id is not None or self.references.exists()

    def input_images(self):
        """The data URIs sent with an edit: the image edited again, then the references."""
        uris = [self.edit_of.data_uri()] if self.edit_of_id else []
        return uris + [reference.data_uri() for reference in self.references.all()]

    def lineage(self):
        """This job and the jobs it edits, oldest first."""
        chain, job = [], self
        while job is not None and job not in chain:
            chain.insert(0, job)
            job = job.edit_of.job if job.edit_of_id else None
        return chain

    # --- transitions ---------------------------------------------------------
    # The steps a concept job shares with a conversion are one definition, Conversion's
    # (each a conditional UPDATE giving up the claim; mark_submitted turns the hold into
    # a charge in one transaction); what differs is below.
    kind = "image"  # named in the charge's note, as a conversion's kind is
    _transition = Conversion._transition
    claim_for_dispatch = Conversion.claim_for_dispatch
    claim_for_submit = Conversion.claim_for_submit
    requeue_submit = Conversion.requeue_submit
    mark_submitted = Conversion.mark_submitted
    mark_needs_attention = Conversion.mark_needs_attention
    record_progress = Conversion.record_progress
    wait_for_result_file = Conversion.wait_for_result_file
    defer = Conversion.defer
    _hold_becomes_charge = Conversion._hold_becomes_charge
    _give_back = Conversion._give_back
    is_charged = Conversion.is_charged
    resolve_with_task_id = Conversion.resolve_with_task_id
    resolve_as_lost = Conversion.resolve_as_lost
    resolve_by_resubmitting = Conversion.resolve_by_resubmitting

    def mark_rejected(self, reason):
        """SUBMITTING -> FAILED: refused at submit, nothing charged; the hold is released."""
        with transaction.atomic():
            self._transition(
                [State.SUBMITTING],
                State.FAILED,
                failure_reason=reason[:2000],
                finished_at=timezone.now(),
                due_at=None,
            )
            self._ledger(LedgerEntry.Kind.RELEASE, self.credit_estimate, reason)

    def mark_failed(self, reason):
        """Upstream FAILED (after it charged): the refund, once, with the transition."""
        reason = reason or "The upstream reported a failure without a reason."
        with transaction.atomic():
            self._transition(
                [*POLLING_STATES, State.INGESTING],
                State.FAILED,
                failure_reason=reason[:2000],
                finished_at=timezone.now(),
                due_at=None,
            )
            self._ledger(LedgerEntry.Kind.REFUND, self.credit_estimate, reason)

    def start_ingest(self, results, due_at):
        self._transition(
            list(POLLING_STATES),
            State.INGESTING,
            results=results,
            due_at=due_at,
            deliveries=0,
            poll_errors=0,
        )

    def refresh_result_urls(self, due_at):
        """INGESTING -> IN_PROGRESS once, when the storage refused an expired URL."""
        self._transition(
            [State.INGESTING],
            State.IN_PROGRESS,
            due_at=due_at,
            url_refreshes=models.F("url_refreshes") + 1,
        )

    def mark_finished(self):
        """INGESTING -> FINISHED, only with at least one stored image."""
        if not self.images.exists():
            raise IllegalTransition(f"concept job {self.pk}: no image stored")
        self._transition(
            [State.INGESTING],
            State.FINISHED,
            progress=100,
            finished_at=timezone.now(),
            due_at=None,
        )

    def _ledger(self, kind, amount, note):
        """Append one entry for this job; a second of the same kind is a no-op."""
        LedgerEntry.objects.append_once(
            kind=kind,
            concept_job=self,
            user_id=self.owner_id,
            amount=amount,
            provider=self.image_model,
            note=f"concept job {self.pk}: {note}"[:300],
        )


class ConceptReference(StoredImage):
    """An uploaded image a concept job edits, cleaned like every reference image."""

    job = models.ForeignKey(ConceptJob, on_delete=models.CASCADE, related_name="references")
    slot = models.CharField(max_length=20, default="image")  # always "image": no views
    position = models.PositiveSmallIntegerField(default=0)
    file = models.FileField(upload_to="references/", max_length=300)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return f"reference {self.position} of concept job {self.job_id}"


class ConceptImage(StoredImage):
    """A concept image the upstream made, stored in our storage (re-encoded and checked)."""

    job = models.ForeignKey(ConceptJob, on_delete=models.CASCADE, related_name="images")
    position = models.PositiveSmallIntegerField()
    file = models.FileField(upload_to="concepts/", max_length=300)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            # One stored image per upstream result, however often ingest runs.
            models.UniqueConstraint(fields=["job", "position"], name="concept_image_one_per_result")
        ]

    def __str__(self):
        return f"image {self.position + 1} of concept job {self.job_id}"


class ConceptPick(models.Model):
    """Lineage: a concept image chosen as a generation's reference image (in a view slot)."""

    generation = models.ForeignKey(
        Generation, on_delete=models.CASCADE, related_name="concept_picks"
    )
    image = models.ForeignKey(ConceptImage, on_delete=models.PROTECT, related_name="picks")
    slot = models.CharField(max_length=20, default="image")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["generation", "slot"], name="concept_pick_one_per_slot")
        ]

    def __str__(self):
        return f"{self.image} as {self.slot} of generation {self.generation_id}"
