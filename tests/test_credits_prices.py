"""Prices as versioned data: the admin's form, the Django admin, and the estimate that
is exactly what the ledger charges."""

import copy
import re
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from credits import prices
from credits.models import LedgerEntry, PriceTable
from generations import pricing
from generations.catalogue import PRICE_TABLE
from generations.models import Generation

pytestmark = pytest.mark.django_db


def changed(path, value, table=PRICE_TABLE):
    table = copy.deepcopy(table)
    node = table
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return table


def form_data(table, note=""):
    data = {"note": note}
    for path, value in prices.leaves(table):
        data["price__" + "__".join(path)] = value
    return data


def test_without_a_version_the_catalogue_prices_apply():
    estimate = pricing.estimate("hunyuan_rapid", "text", {"enable_pbr": True})
    assert (estimate.total, estimate.version) == (55, None)
    assert estimate.breakdown == [("Base", 35), ("PBR materials", 20)]


def test_the_newest_version_prices_the_estimate(admin_user):
    prices.publish(changed(("hunyuan_rapid", "pbr"), 15), user=admin_user, note="cheaper PBR")
    prices.publish(changed(("hunyuan_rapid", "pbr"), 25), user=admin_user, note="dearer PBR")
    estimate = pricing.estimate("hunyuan_rapid", "text", {"enable_pbr": True})
    assert (estimate.total, estimate.version) == (60, 2)
    assert estimate.breakdown == [("Base", 35), ("PBR materials", 25)]


def test_a_table_of_the_wrong_shape_is_refused():
    bad = changed(("trellis2", "thumbnail"), -1)
    del bad["tripo_p1"]["texture"]["detailed"]
    bad["tripo_v3"]["unknown"] = 3
    assert prices.shape_errors(bad) == [
        "tripo_p1.texture.detailed is missing.",
        "tripo_v3.unknown is not a price we know.",
        "trellis2.thumbnail must be a whole number of credits, 0 or more.",
    ]
    with pytest.raises(ValueError):
        prices.publish(bad)
    assert not PriceTable.objects.exists()


def test_a_version_is_never_edited(admin_user):
    row = prices.publish(PRICE_TABLE, user=admin_user)
    row.note = "changed my mind"
    with pytest.raises(TypeError):
        row.save()


def test_the_form_shows_every_price_and_publishes_a_new_version(client, admin_user):
    client.force_login(admin_user)
    html = client.get(reverse("credits:prices")).content.decode()
    assert len(re.findall(r'name="price__', html)) == len(prices.leaves(PRICE_TABLE))
    table = changed(("tripo_v3", "quad"), 12)
    response = client.post(reverse("credits:prices"), form_data(table, note="quad up"))
    assert response.status_code == 302
    row = PriceTable.objects.get()
    assert (row.version, row.note, row.created_by) == (1, "quad up", admin_user)
    assert row.table["tripo_v3"]["quad"] == 12
    client.post(reverse("credits:prices"), form_data(changed(("tripo_v3", "quad"), 14)))
    assert list(PriceTable.objects.values_list("version", flat=True)) == [2, 1]
    assert PriceTable.objects.get(version=1).table["tripo_v3"]["quad"] == 12


def test_the_form_refuses_negative_prices(client, admin_user):
    client.force_login(admin_user)
    data = form_data(PRICE_TABLE)
    data["price__hunyuan_pro__pbr"] = -5
    response = client.post(reverse("credits:prices"), data)
    assert response.status_code == 200
    assert "Ensure this value is greater than or equal to 0." in response.content.decode()
    assert not PriceTable.objects.exists()


def test_members_and_reviewers_cannot_publish_prices(client, member, reviewer):
    for user in (member, reviewer):
        client.force_login(user)
        response = client.post(reverse("credits:prices"), form_data(PRICE_TABLE))
        assert response.status_code == 403
    assert not PriceTable.objects.exists()


def test_the_django_admin_adds_the_next_version(client, admin_user):
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    prices.publish(PRICE_TABLE, user=admin_user)
    import json

    table = changed(("tripo_p1", "base", "text"), 70)
    response = client.post(
        reverse("admin:credits_pricetable_add"), {"table": json.dumps(table), "note": "admin"}
    )
    assert response.status_code == 302
    row = PriceTable.objects.active()
    assert (row.version, row.table["tripo_p1"]["base"]["text"], row.created_by) == (
        2,
        70,
        admin_user,
    )


def test_the_estimate_shown_before_submit_is_what_the_ledger_charges(member_client, member):
    """End to end: the live cost fragment, the form post, the hold and the charge."""
    prices.publish(changed(("hunyuan_rapid", "pbr"), 17), note="test")
    query = {"provider": "hunyuan_rapid", "mode": "text", "enable_pbr": "on", "shown": "enable_pbr"}
    shown = member_client.get(reverse("generations:cost"), query)
    assert shown.status_code == 200
    assert shown.context["estimate"].total == 52
    assert "52" in shown.content.decode()

    token = uuid.uuid4()
    response = member_client.post(
        reverse("generations:new"),
        {**query, "prompt": "a green teapot", "form_token": token, "edition": ""},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    generation = Generation.objects.get(form_token=token)
    assert generation.credit_estimate == 52
    assert generation.price_version == 1
    assert [list(line) for line in generation.price_breakdown] == [
        ["Base", 35],
        ["PBR materials", 17],
    ]
    generation.claim_for_submit()
    generation.mark_submitted("task-e2e", timezone.now())
    charge = LedgerEntry.objects.get(generation=generation, kind="charge")
    assert charge.amount == -52
    # A later price change does not touch what was already estimated and charged.
    prices.publish(changed(("hunyuan_rapid", "pbr"), 30))
    generation.refresh_from_db()
    assert (generation.credit_estimate, generation.price_version) == (52, 1)
