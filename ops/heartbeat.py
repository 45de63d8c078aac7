"""Heartbeats: the dispatcher, the sweep and each worker record that they are alive.

The dispatcher and sweep call ``beat()`` once per run (one UPDATE). Workers beat
from Celery's ``heartbeat_sent`` signal, which fires every two seconds in the
worker's main process; we write at most once every WORKER_BEAT_EVERY seconds per
worker so a fleet of workers does not write to the database constantly.
"""

import logging
import threading
import time

from celery.signals import heartbeat_sent, worker_ready, worker_shutdown
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

log = logging.getLogger(__name__)

# Seconds between two database writes of one worker's heartbeat.
WORKER_BEAT_EVERY = 15.0

_last_worker_beat = {}
_lock = threading.Lock()


def beat(name):
    """Record that ``name`` ran now: one UPDATE, plus an INSERT on the very first beat."""
    from .models import Heartbeat

    now = timezone.now()
    if Heartbeat.objects.filter(name=name).update(beat_at=now) == 0:
        Heartbeat.objects.update_or_create(name=name, defaults={"beat_at": now})


def _worker_name(hostname):
    return f"worker:{hostname}"


def _beat_quietly(name):
    # A heartbeat must never take a worker down: the database being away is
    # exactly what the status page and /healthz then show.
    try:
        close_old_connections()
        beat(name)
    except DatabaseError:
        log.warning("heartbeat %s could not be recorded", name, exc_info=True)


@worker_ready.connect
def _on_worker_ready(sender=None, **kwargs):
    hostname = getattr(sender, "hostname", None)
    if hostname:
        _beat_quietly(_worker_name(hostname))
        with _lock:
            _last_worker_beat[hostname] = time.monotonic()


@heartbeat_sent.connect
def _on_heartbeat_sent(sender=None, **kwargs):
    hostname = getattr(getattr(sender, "eventer", None), "hostname", None)
    if not hostname:
        return
    now = time.monotonic()
    with _lock:
        if now - _last_worker_beat.get(hostname, float("-inf")) < WORKER_BEAT_EVERY:
            return
        _last_worker_beat[hostname] = now
    _beat_quietly(_worker_name(hostname))


@worker_shutdown.connect
def _on_worker_shutdown(sender=None, **kwargs):
    """A worker that stops cleanly leaves the list; one that crashed stays, flagged stale."""
    from .models import Heartbeat

    hostname = getattr(sender, "hostname", None)
    if not hostname:
        return
    try:
        Heartbeat.objects.filter(name=_worker_name(hostname)).delete()
    except DatabaseError:
        pass
