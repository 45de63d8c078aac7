"""Prometheus metrics: pipeline gauges computed at scrape time, and request latencies.

The gauges come from the database, Redis and the rate limiter when Prometheus
scrapes (``StudioCollector``), so every web process reports the same values.

Request latency histograms live in process memory. With several gunicorn
workers each process keeps its own, and a scrape reaches one of them; so when
PROMETHEUS_MULTIPROC_DIR is set (an empty directory, wiped when the service
starts, shared by the workers of one host) prometheus_client's multiprocess mode
keeps the histograms in files there and a scrape sums every process. Without it
(development, one process) they are per process. Only histograms are kept that
way: the multiprocess mode cannot carry our scrape-time gauges, which need none.
"""

import os
import time

from prometheus_client import CollectorRegistry, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from generations.models import IN_FLIGHT_STATES, State

from . import status as ops_status

REQUEST_REGISTRY = CollectorRegistry(auto_describe=True)
REQUEST_LATENCY = Histogram(
    "studio_http_request_duration_seconds",
    "Time to answer an HTTP request, by view and status class.",
    ["view", "status"],
    registry=REQUEST_REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class StudioCollector:
    """The status page's figures, as gauges."""

    def collect(self):
        figures = ops_status.gather()
        by_state = GaugeMetricFamily(
            "studio_generations",
            "Generations in flight or needing attention, by state.",
            labels=["state"],
        )
        for state in [*IN_FLIGHT_STATES, State.NEEDS_ATTENTION]:
            by_state.add_metric([str(state)], figures.by_state.get(state, 0))
        yield by_state
        yield GaugeMetricFamily(
            "studio_queue_length",
            "Generations waiting to be submitted (QUEUED).",
            value=figures.queued,
        )
        yield GaugeMetricFamily(
            "studio_needs_attention",
            "Upstream jobs waiting for a person: generations, conversions, finishing steps "
            "and concept jobs (the attention page's rows).",
            value=figures.needs_attention,
        )
        age = figures.oldest_waiting_age
        yield GaugeMetricFamily(
            "studio_oldest_waiting_seconds",
            "Age of the oldest generation still in flight (0 when none).",
            value=age.total_seconds() if age else 0,
        )
        if figures.broker_queue is not None:
            yield GaugeMetricFamily(
                "studio_broker_queue_length",
                "Messages waiting in the broker queue.",
                value=figures.broker_queue,
            )
        if figures.rate is not None:
            yield GaugeMetricFamily(
                "studio_rate_limit",
                "Upstream requests allowed per window.",
                value=figures.rate.limit,
            )
            yield GaugeMetricFamily(
                "studio_rate_used",
                "Upstream requests spent in the current window.",
                value=figures.rate.used,
            )
            yield GaugeMetricFamily(
                "studio_rate_next_slot_seconds",
                "Seconds until the next upstream request may be sent (0: now).",
                value=figures.rate.next_slot_in,
            )
        if figures.wallet is not None:
            yield GaugeMetricFamily(
                "studio_wallet_balance",
                "Upstream wallet balance at the last sync.",
                value=float(figures.wallet.balance),
            )
            yield GaugeMetricFamily(
                "studio_wallet_synced_timestamp_seconds",
                "When the wallet was last synced (Unix time).",
                value=figures.wallet.fetched_at.timestamp(),
            )
        beats = GaugeMetricFamily(
            "studio_heartbeat_timestamp_seconds",
            "When each process last beat (Unix time; 0: never).",
            labels=["name"],
        )
        stale = GaugeMetricFamily(
            "studio_heartbeat_stale", "1 when a heartbeat is overdue.", labels=["name"]
        )
        for beat in figures.beats:
            beats.add_metric([beat.name], beat.beat_at.timestamp() if beat.beat_at else 0)
            stale.add_metric([beat.name], 1 if beat.stale else 0)
        yield beats
        yield stale


def render():
    """The exposition text for one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StudioCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(registry) + generate_latest(REQUEST_REGISTRY)
    return text


class RequestLatencyMiddleware:
    """Observes each request's duration, labelled by view name and status class (2xx, 4xx)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        # Unresolved paths (404s) share one label, so scanners cannot grow the series.
        view = match.view_name if match and match.view_name else "unresolved"
        REQUEST_LATENCY.labels(view, f"{response.status_code // 100}xx").observe(
            time.perf_counter() - started
        )
        return response
