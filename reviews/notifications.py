"""Announcing finished and failed generations, and the batched mail.

Why a periodic scan and not ``post_save`` on Generation: the pipeline changes
states with conditional ``UPDATE ... WHERE state = ...`` (Generation._transition),
which never sends ``post_save``; a signal would miss every finish and failure.
The scan (``tasks.notify``, on beat) looks for finished and failed generations
without a ``GenerationEvent`` row, and inserting that row is its claim: the
unique constraint lets exactly one scan announce each event, however many run.
"""

import logging
import smtplib
from itertools import groupby

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from generations.models import Generation, State

from .models import GenerationEvent, Notification, NotificationKind, Review

log = logging.getLogger(__name__)


def reviewers():
    """Active people allowed to review (by group, by direct permission, or superusers)."""
    perm = Permission.objects.filter(
        content_type__app_label="generations", codename="review_generation"
    ).first()
    who = Q(is_superuser=True)
    if perm is not None:
        who |= Q(groups__permissions=perm) | Q(user_permissions=perm)
    return get_user_model().objects.filter(who, is_active=True).distinct().order_by("pk")


def announce_generation_events(now=None, limit=500):
    """Notify reviewers of new finished generations and owners of failed ones, once each."""
    now = now or timezone.now()
    since = now - settings.REVIEW_EVENT_LOOKBACK
    announced = 0
    team = None
    for kind, state in (
        (GenerationEvent.Kind.FINISHED, State.FINISHED),
        (GenerationEvent.Kind.FAILED, State.FAILED),
    ):
        pending = (
            Generation.objects.filter(state=state, finished_at__gte=since)
            .filter(~Exists(GenerationEvent.objects.filter(generation=OuterRef("pk"), kind=kind)))
            .select_related("owner")
            .order_by("pk")[:limit]
        )
        for generation in pending:
            try:
                with transaction.atomic():
                    GenerationEvent.objects.create(generation=generation, kind=kind)
                    if kind == GenerationEvent.Kind.FAILED:
                        Notification.objects.notify(
                            generation.owner,
                            NotificationKind.FAILED,
                            key=f"failed:{generation.pk}",
                            generation=generation,
                            message=f"Generation #{generation.pk} failed: "
                            f"{generation.failure_reason or 'no reason given'}",
                        )
                    elif not Review.objects.filter(generation=generation).exists():
                        team = team if team is not None else list(reviewers())
                        _tell_reviewers(team, generation)
            except IntegrityError:
                continue  # another scan announced it first
            announced += 1
    return announced


def _tell_reviewers(team, generation):
    for person in team:
        if person.pk == generation.owner_id and not settings.REVIEW_ALLOW_SELF_APPROVAL:
            continue  # they could not approve it; their own list shows it anyway
        Notification.objects.notify(
            person,
            NotificationKind.AWAITING_REVIEW,
            key=f"finished:{generation.pk}",
            generation=generation,
            message=f"#{generation.pk} by {generation.owner.get_username()} awaits review: "
            f"“{generation.prompt[:120]}”",
        )


def send_notification_mail(now=None):
    """One mail per person listing everything new for them since the last batch.

    Rows are claimed with SKIP LOCKED, so two runs at once never mail one item twice.
    Returns the number of mails sent.
    """
    now = now or timezone.now()
    sent = 0
    with transaction.atomic():
        pending = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(mail_pending=True)
            .select_related("recipient", "generation")
            .order_by("recipient_id", "id")[:2000]
        )
        for _, group in groupby(pending, key=lambda n: n.recipient_id):
            items = list(group)
            recipient = items[0].recipient
            if recipient.email and recipient.is_active:
                try:
                    send_mail(
                        _subject(items),
                        render_to_string(
                            "reviews/email/notifications.txt",
                            {"recipient": recipient, "items": _with_links(items)},
                        ),
                        None,
                        [recipient.email],
                    )
                except (smtplib.SMTPException, OSError):
                    # Stays pending: the next batch tries again.
                    log.exception("notification mail to user %s failed", recipient.pk)
                    continue
                sent += 1
            Notification.objects.filter(pk__in=[n.pk for n in items]).update(
                mail_pending=False, mailed_at=now
            )
    return sent


def _subject(items):
    awaiting = sum(1 for n in items if n.kind == NotificationKind.AWAITING_REVIEW)
    if awaiting == len(items):
        noun = "generation awaits" if awaiting == 1 else "generations await"
        return f"Studio Dashboard: {awaiting} {noun} your review"
    return f"Studio Dashboard: {len(items)} new notification{'s' if len(items) != 1 else ''}"


def _with_links(items):
    for item in items:
        item.link = (
            settings.STUDIO_BASE_URL + reverse("reviews:generation", args=[item.generation_id])
            if item.generation_id
            else ""
        )
    return items
