"""The audit log: append-only in the model and in PostgreSQL, decisions and roles logged."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from reviews import audit
from reviews.models import AuditLog, Decision, Review
from tests.test_reviews_support import fast_passwords, make_finished, media  # noqa: F401

pytestmark = pytest.mark.django_db


def test_record_appends_an_entry_with_its_target(admin_user, member):
    entry = audit.record(
        admin_user,
        "budget.changed",
        "Budget of member: 500",
        target=member,
        details={"old": 300, "new": 500},
    )
    entry.refresh_from_db()
    assert (entry.actor, entry.actor_name, entry.action) == (admin_user, "boss", "budget.changed")
    assert (entry.target_type, entry.target_id) == ("auth.user", str(member.pk))
    assert entry.details == {"old": 300, "new": 500}


def test_the_model_refuses_updates_and_deletes(admin_user):
    entry = audit.record(admin_user, "price.changed", "Rapid 35 -> 40")
    entry.summary = "rewritten"
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    with pytest.raises(TypeError):
        AuditLog.objects.filter(pk=entry.pk).update(summary="x")
    with pytest.raises(TypeError):
        AuditLog.objects.all().delete()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_the_database_refuses_raw_updates_and_deletes(admin_user):
    entry = audit.record(admin_user, "price.changed", "Rapid 35 -> 40")
    for sql in (
        "UPDATE reviews_auditlog SET summary = 'rewritten' WHERE id = %s",
        "DELETE FROM reviews_auditlog WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql, [entry.pk])
    assert AuditLog.objects.get(pk=entry.pk).summary == "Rapid 35 -> 40"


def test_decisions_are_logged(member, reviewer, media):  # noqa: F811
    generation = make_finished(member)
    Review.objects.record_decision(generation, reviewer, Decision.CHANGES_REQUESTED, "more legs")
    entry = AuditLog.objects.get(action="review.changes_requested")
    assert entry.actor == reviewer
    assert entry.target_id == str(generation.pk)
    assert entry.details["comment"] == "more legs"


def test_role_changes_are_logged_with_who_did_them(client, admin_user, member, django_user_model):
    reviewers = Group.objects.get(name="Reviewers")
    admin_user.is_superuser = True  # the admin's user form needs change_user
    admin_user.save()
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:auth_user_change", args=[member.pk]),
        {
            "username": "member",
            "groups": [reviewers.pk],
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "last_login_0": "",
            "last_login_1": "",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    added = AuditLog.objects.get(
        action="role.added", target_id=str(member.pk), details__group="Reviewers"
    )
    assert added.actor == admin_user
    removed = AuditLog.objects.get(action="role.removed", target_id=str(member.pk))
    assert removed.details == {"group": "Members"}


def test_group_changes_from_the_group_side_are_logged(member):
    admins = Group.objects.get(name="Admins")
    admins.user_set.add(member)
    admins.user_set.clear()
    actions = list(
        AuditLog.objects.filter(target_id=str(member.pk), details__group="Admins")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["role.added", "role.removed"]


def _ensure_audit_permission():
    """Transactional tests flush data migrations; put this app's grant back if needed."""
    admins = Group.objects.get(name="Admins")
    admins.permissions.add(Permission.objects.get(codename="view_auditlog"))


def test_the_audit_page_is_for_admins(client, admin_user, reviewer):
    _ensure_audit_permission()
    audit.record(admin_user, "budget.changed", "Team budget 10000")
    client.force_login(admin_user)
    page = client.get(reverse("reviews:audit"))
    assert page.status_code == 200
    assert "Team budget 10000" in page.content.decode()
    fragment = client.get(
        reverse("reviews:audit"), {"action": "budget"}, headers={"HX-Request": "true"}
    )
    assert 'id="audit"' in fragment.content.decode() and "<html" not in fragment.content.decode()
    client.force_login(reviewer)
    assert client.get(reverse("reviews:audit")).status_code == 403
