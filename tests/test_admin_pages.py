"""Every page of the Django admin opens for an admin: each registered model's changelist,
add page and change page (an admin deactivates users and resets passwords there)."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from tests.conftest import rapid_generation

pytestmark = pytest.mark.django_db


@pytest.fixture
def one_of_each(member, reviewer, admin_user):
    """At least one row of every model the admin shows."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    from api.models import ApiToken
    from credits.models import Budget, LedgerEntry, PriceTable, WalletSnapshot
    from generations.models import Alert, ConceptJob, State
    from ops.models import Heartbeat
    from reviews.models import AuditLog, Comment, Review, Tag

    generation = rapid_generation(member, prompt="a chair", state=State.FINISHED)
    Alert.objects.create(message="The upstream refused our API key.")
    ConceptJob.objects.create(
        owner=member, image_model="gemini_25_flash", prompt="a lamp", credit_estimate=5
    )
    LedgerEntry.objects.create(
        kind=LedgerEntry.Kind.ADJUSTMENT, user=member, amount=-5, note="correction"
    )
    WalletSnapshot.objects.create(balance=100, rate_limit=3)
    if not PriceTable.objects.exists():
        from credits import prices

        prices.publish(prices.active()[1], user=admin_user, note="first")
    Budget.objects.create(user=member, provider="", monthly_limit=100, updated_by=admin_user)
    Review.objects.create(generation=generation, reviewer=reviewer, decision="approved")
    Comment.objects.create(generation=generation, author=reviewer, body="nice")
    Tag.objects.create(root=generation, name="chairs", added_by=reviewer)
    if not AuditLog.objects.exists():
        AuditLog.objects.create(actor=admin_user, actor_name="boss", action="test.row")
    Heartbeat.objects.create(name="dispatcher", beat_at=timezone.now())
    ApiToken.objects.issue(member, "laptop")
    # django-axes' records of logins: a lockout, a login, a failure.
    seen = {"username": "member", "ip_address": "10.0.0.1", "path_info": "/accounts/login/"}
    AccessAttempt.objects.create(**seen, get_data="", post_data="", failures_since_start=5)
    AccessLog.objects.create(**seen)
    AccessFailureLog.objects.create(**seen, locked_out=True)


def registered_models():
    return [model for model in apps.get_models() if admin.site.is_registered(model)]


def test_every_admin_page_of_every_registered_model_opens(client, one_of_each, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root")
    client.force_login(root)
    assert client.get(reverse("admin:index")).status_code == 200
    models = registered_models()
    assert len(models) >= 13
    for model in models:
        meta = model._meta
        name = f"admin:{meta.app_label}_{meta.model_name}"
        changelist = client.get(reverse(f"{name}_changelist"))
        assert changelist.status_code == 200, (meta.label, changelist.status_code)
        model_admin = admin.site.get_model_admin(model)
        add = client.get(reverse(f"{name}_add"))
        request = changelist.wsgi_request
        # Append-only records (reviews, the audit log) refuse an add page by design.
        expected = 200 if model_admin.has_add_permission(request) else 403
        assert add.status_code == expected, (meta.label, add.status_code)
        row = model._default_manager.order_by("pk").first()
        assert row is not None, f"no {meta.label} row to open: add one to one_of_each"
        change = client.get(reverse(f"{name}_change", args=[row.pk]))
        assert change.status_code == 200, (meta.label, change.status_code)


def test_an_admin_can_deactivate_a_user_and_reset_a_password(client, member, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root")
    client.force_login(root)
    change = reverse("admin:auth_user_change", args=[member.pk])
    page = client.get(change)
    assert page.status_code == 200
    data = {
        "username": member.username,
        "date_joined_0": member.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": member.date_joined.strftime("%H:%M:%S"),
        "groups": [group.pk for group in member.groups.all()],
    }  # is_active left out: unchecked
    response = client.post(change, data)
    assert response.status_code == 302, response.content[:2000]
    member.refresh_from_db()
    assert not member.is_active
    password = reverse("admin:auth_user_password_change", args=[member.pk])
    assert client.get(password).status_code == 200
    response = client.post(
        password,
        {
            "usable_password": "true",
            "password1": "a-new-long-pass-9",
            "password2": "a-new-long-pass-9",
        },
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.check_password("a-new-long-pass-9")
