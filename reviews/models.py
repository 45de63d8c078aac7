"""Review decisions, the team library, comments, notifications and the audit log.

The review state of a generation is derived from its decisions: the latest
one wins, and every decision stays in the history. ``ReviewStatus`` is a
denormalised copy of the latest decision (with the root of the generation's
version chain, which the library groups by); it is written in the same
transaction as the decision it copies, under a lock on the generation row,
so it can never disagree with the history.
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from generations.models import Generation, State


class Decision(models.TextChoices):
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"


class ReviewConflict(Exception):
    """The decision was made against a review state that is no longer current."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


# --- version chains -------------------------------------------------------------
# "Regenerate with changes" links a new generation to the one it revises through
# Generation.previous_version. The chain (a tree, if someone regenerates the same
# version twice) is one asset; its first version is the root.
MAX_CHAIN_DEPTH = 500  # a guard against a cycle written by hand in the admin


def chain_root_id(generation):
    """The id of the first version of ``generation``'s chain (one query per step back)."""
    current, previous = generation.pk, generation.previous_version_id
    seen = {current}
    while previous is not None and previous not in seen and len(seen) < MAX_CHAIN_DEPTH:
        seen.add(previous)
        current = previous
        previous = (
            Generation.objects.filter(pk=previous)
            .values_list("previous_version_id", flat=True)
            .first()
        )
    return current


def chain_versions(root_id):
    """Every generation of the chain that starts at ``root_id``, oldest first.

    One query per generation of versions (breadth first), not per version.
    """
    found = list(Generation.objects.filter(pk=root_id).select_related("owner"))
    frontier = [root_id]
    seen = set(frontier)
    while frontier and len(seen) < MAX_CHAIN_DEPTH:
        children = [
            child
            for child in Generation.objects.filter(previous_version_id__in=frontier).select_related(
                "owner"
            )
            if child.pk not in seen
        ]
        seen.update(child.pk for child in children)
        found.extend(children)
        frontier = [child.pk for child in children]
    return sorted(found, key=lambda g: (g.created_at, g.pk))


def retake_count(root_id):
    """The asset's retakes: versions in the chain minus the first."""
    return len(chain_versions(root_id)) - 1


# --- decisions --------------------------------------------------------------------
class ReviewQuerySet(models.QuerySet):
    def record_decision(self, generation, reviewer, decision, comment="", based_on=None):
        """Append one decision and update the current state, in one transaction.

        Refuses (PermissionDenied) a reviewer without the permission, and one approving
        their own generation unless REVIEW_ALLOW_SELF_APPROVAL. Refuses (ValueError)
        a generation that is not finished or a reject/changes without a comment.
        ``based_on`` is the id of the latest decision the reviewer saw (0 for none):
        when someone decided in between, ReviewConflict, so a double click or two
        reviewers on one item never record two decisions blindly.
        """
        if not reviewer.has_perm("generations.review_generation"):
            raise PermissionDenied("Only reviewers can review generations.")
        comment = (comment or "").strip()
        if decision not in Decision.values:
            raise ValueError(f"unknown decision {decision!r}")
        if decision != Decision.APPROVED and not comment:
            raise ValueError("A comment is required to reject or request changes.")
        with transaction.atomic():
            # The lock on the generation row serialises decisions on it, which is
            # what keeps ReviewStatus equal to the latest decision.
            locked = Generation.objects.select_for_update().get(pk=generation.pk)
            if locked.state != State.FINISHED:
                raise ValueError("Only finished generations can be reviewed.")
            if (
                decision == Decision.APPROVED
                and locked.owner_id == reviewer.pk
                and not settings.REVIEW_ALLOW_SELF_APPROVAL
            ):
                raise PermissionDenied("You cannot approve your own generation.")
            status = ReviewStatus.objects.filter(generation=locked).first()
            current = status.review_id if status else 0
            if based_on is not None and based_on != current:
                raise ReviewConflict(
                    "Someone else decided on this generation meanwhile; "
                    "look at the history and decide again."
                )
            review = self.create(
                generation=locked, reviewer=reviewer, decision=decision, comment=comment
            )
            root_id = status.root_id if status else chain_root_id(locked)
            ReviewStatus.objects.update_or_create(
                generation=locked,
                defaults={
                    "root_id": root_id,
                    "state": decision,
                    "review": review,
                    "decided_at": review.created_at,
                },
            )
            from . import audit

            audit.record(
                reviewer,
                f"review.{decision}",
                f"{review.get_decision_display()} generation #{locked.pk}",
                target=locked,
                details={"comment": comment, "review": review.pk},
            )
            Notification.objects.notify(
                locked.owner,
                NotificationKind.DECISION,
                key=f"review:{review.pk}",
                generation=locked,
                message=(
                    f"{reviewer.get_username()}: {review.get_decision_display().lower()} "
                    f"generation #{locked.pk}" + (f" — {comment}" if comment else "")
                ),
            )
        return review


class Review(models.Model):
    """One decision on a generation. History: never edited, never deleted."""

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.CharField(max_length=20, choices=Decision.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ReviewQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["generation", "created_at"], name="review_history_idx")]

    def __str__(self):
        return f"{self.get_decision_display()} #{self.generation_id} by {self.reviewer_id}"


class ReviewStatusQuerySet(models.QuerySet):
    def library(self):
        """The team library: per version chain, the newest approved version.

        Version ids grow with time, so "newest" is the highest generation id among
        the chain's approved versions. Rejected, awaiting and superseded versions
        stay out (they keep their history). Served by ``review_status_chain_idx``.
        """
        newer_approved = ReviewStatus.objects.filter(
            root_id=OuterRef("root_id"),
            state=Decision.APPROVED,
            generation_id__gt=OuterRef("generation_id"),
        )
        return self.filter(state=Decision.APPROVED).filter(~Exists(newer_approved))


class ReviewStatus(models.Model):
    """The latest decision of a generation (denormalised; see the module docstring)."""

    generation = models.OneToOneField(
        Generation, on_delete=models.CASCADE, primary_key=True, related_name="review_status"
    )
    # The first version of the generation's chain: the library's unit ("the asset").
    root = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=20, choices=Decision.choices)
    review = models.OneToOneField(Review, on_delete=models.CASCADE, related_name="+")
    decided_at = models.DateTimeField()

    objects = ReviewStatusQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["root", "state", "generation"], name="review_status_chain_idx"),
            models.Index(fields=["state", "-decided_at"], name="review_status_recent_idx"),
        ]

    def __str__(self):
        return f"#{self.generation_id}: {self.get_state_display()}"


def awaiting_review():
    """Finished generations without any decision, oldest first."""
    return (
        Generation.objects.filter(state=State.FINISHED)
        .filter(~Exists(Review.objects.filter(generation=OuterRef("pk"))))
        .order_by("finished_at", "id")
    )


def review_state(generation):
    """ "awaiting" for a finished generation without a decision, else the latest decision."""
    status = ReviewStatus.objects.filter(generation=generation).first()
    if status:
        return status.state
    return "awaiting" if generation.state == State.FINISHED else ""


# --- comments and tags ----------------------------------------------------------------
class Comment(models.Model):
    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField(max_length=4000)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"comment by {self.author_id} on #{self.generation_id}"


class Tag(models.Model):
    """A library tag of an asset: of a whole version chain, so it survives a retake."""

    root = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="asset_tags")
    name = models.CharField(max_length=40)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["root", "name"], name="tag_once_per_asset")]
        indexes = [models.Index(fields=["name"], name="tag_name_idx")]

    def __str__(self):
        return self.name


# --- notifications ----------------------------------------------------------------------
class NotificationKind(models.TextChoices):
    AWAITING_REVIEW = "awaiting_review", "Generations waiting for my review"
    DECISION = "decision", "Review decisions on my generations"
    FAILED = "failed", "My generations that failed"


class NotificationQuerySet(models.QuerySet):
    def notify(self, recipient, kind, *, key, message, generation=None):
        """Tell one person about one event, once, as their preferences allow.

        ``key`` names the event ("finished:12", "review:40"); the unique constraint on
        (recipient, key) makes a second notice of the same event a no-op, whoever
        sends it. Returns the notification, or None when it was off or already sent.
        """
        in_app, email = NotificationPreference.wanted(recipient, kind)
        if not (in_app or email):
            return None
        try:
            with transaction.atomic():
                return self.create(
                    recipient=recipient,
                    kind=kind,
                    key=key,
                    generation=generation,
                    message=message[:500],
                    in_app=in_app,
                    mail_pending=email and bool(recipient.email),
                )
        except IntegrityError:
            return None

    def unread_for(self, user):
        return self.filter(recipient=user, in_app=True, read_at=None)


class Notification(models.Model):
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    key = models.CharField(max_length=80)
    generation = models.ForeignKey(
        Generation, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    message = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)
    # Shown in the in-app list (the person's preference when it was made).
    in_app = models.BooleanField(default=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # Waiting for the next mail batch (tasks.notify).
    mail_pending = models.BooleanField(default=False)
    mailed_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["recipient", "key"], name="notification_once_per_event")
        ]
        indexes = [
            models.Index(
                fields=["recipient", "id"],
                name="notification_mail_due_idx",
                condition=Q(mail_pending=True),
            ),
            models.Index(
                fields=["recipient", "-created_at"],
                name="notification_unread_idx",
                condition=Q(in_app=True, read_at=None),
            ),
        ]

    def __str__(self):
        return f"{self.kind} for {self.recipient_id}: {self.message[:40]}"


class NotificationPreference(models.Model):
    """A person's choice for one kind of notification; no row means both on."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    in_app = models.BooleanField(default=True)
    email = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="preference_once_per_kind")
        ]

    def __str__(self):
        return f"{self.user_id} {self.kind}: in-app {self.in_app}, email {self.email}"

    @classmethod
    def wanted(cls, user, kind):
        """(in_app, email) for this person and kind."""
        row = cls.objects.filter(user=user, kind=kind).values_list("in_app", "email").first()
        return row or (True, True)


class GenerationEvent(models.Model):
    """That a generation's finish or failure has been announced: at most once each.

    The pipeline moves states with conditional UPDATEs, which send no post_save
    signal, so a periodic scan (tasks.notify) finds finished and failed
    generations without a row here. Inserting the row is the claim: of two scans
    at once, the unique constraint lets exactly one announce.
    """

    class Kind(models.TextChoices):
        FINISHED = "finished", "Finished"
        FAILED = "failed", "Failed"

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["generation", "kind"], name="generation_event_once")
        ]

    def __str__(self):
        return f"#{self.generation_id} {self.kind}"


# --- audit ----------------------------------------------------------------------------------
class AuditLogQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("The audit log is append-only")

    def delete(self):
        raise TypeError("The audit log is append-only")


class AuditLog(models.Model):
    """Who did what, append-only (also enforced by a PostgreSQL trigger, migration 0002).

    Write it through ``reviews.audit.record``.
    """

    # PROTECT: a person with history is deactivated, not deleted (the trigger would
    # refuse the SET_NULL update anyway).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=60)
    summary = models.CharField(max_length=300)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=40, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now)

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at"], name="audit_recent_idx"),
            models.Index(fields=["action", "-created_at"], name="audit_action_idx"),
        ]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_name or 'system'}: {self.summary}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("The audit log is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("The audit log is append-only")
