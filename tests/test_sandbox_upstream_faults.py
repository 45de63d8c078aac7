"""Issue 16's upstream faults against the real sandbox over loopback: a proxy that
echoes the key into its answers (item 1), and the older docs' status shape (item 10)."""

import logging

import pytest

from generations.models import Asset, Generation, State
from tests.conftest import SANDBOX_KEY
from tests.sandbox_control import set_faults
from tests.test_pipeline import drive, inline_doorbells, queue  # noqa: F401 - a fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("inline_doorbells")]


def assert_no_key(*texts):
    for text in texts:
        assert SANDBOX_KEY not in str(text)
        assert SANDBOX_KEY.upper() not in str(text).upper()


def test_a_failed_task_whose_answers_echo_the_key_stores_and_logs_none_of_it(
    sandbox_server, member, caplog
):
    set_faults(sandbox_server, {"echo_authorization": ["failure_reason"], "fail_rate": 1.0})
    with caplog.at_level(logging.INFO):
        generation = drive(queue(member))
    assert generation.state == State.FAILED
    assert "[redacted]" in generation.failure_reason
    row = Generation.objects.filter(pk=generation.pk).values().get()
    assert_no_key(*row.values(), caplog.text)


def test_a_status_word_that_echoes_the_key_is_stored_and_logged_without_it(
    sandbox_server, member, caplog
):
    set_faults(sandbox_server, {"echo_authorization": ["status"]})
    generation = queue(member)
    # An unknown status word is "still running": it never ends by itself.
    with caplog.at_level(logging.INFO), pytest.raises(AssertionError):
        drive(generation, timeout=2.0, until=lambda g: g.polls >= 2 and False)
    generation.refresh_from_db()
    assert generation.polls >= 1
    assert "[REDACTED]" in generation.upstream_status  # uppercased with the word
    row = Generation.objects.filter(pk=generation.pk).values().get()
    assert_no_key(*row.values(), caplog.text)


def test_a_refusal_whose_detail_echoes_the_key_stores_none_of_it(sandbox_server, member, caplog):
    import requests

    set_faults(sandbox_server, {"echo_authorization": True})
    # An empty wallet: the sandbox refuses the submit (402) with the key in the detail.
    requests.put(f"{sandbox_server.url}/_sandbox/wallet", json={"balance": "10.00"}, timeout=5)
    with caplog.at_level(logging.INFO):
        generation = drive(queue(member))
    assert generation.state == State.FAILED
    assert "[redacted]" in generation.failure_reason, generation.failure_reason
    row = Generation.objects.filter(pk=generation.pk).values().get()
    assert_no_key(*row.values(), caplog.text)


def test_the_old_status_shape_keeps_the_thumbnail(sandbox_server, member):
    set_faults(sandbox_server, {"old_status_shape": True})
    generation = drive(queue(member))
    assert generation.state == State.FINISHED, generation.attention_reason
    assert generation.assets.filter(role=Asset.Role.THUMBNAIL).exists()
