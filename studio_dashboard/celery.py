import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio_dashboard.settings")

app = Celery("studio_dashboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _beat_schedule():
    """Every periodic schedule lives here, with its cadence."""
    from django.conf import settings

    return {
        # The heart of the pipeline: claim generations whose due time has passed
        # (submits, polls, ingests) and enqueue them. The broker is only a
        # doorbell; a lost message is dispatched again once its lease runs out.
        # A short interval keeps the finish-to-visible delay small.
        "dispatch due work": {
            "task": "generations.tasks.dispatch",
            "schedule": settings.DISPATCH_INTERVAL,
            "options": {"expires": settings.DISPATCH_INTERVAL * 5},
        },
        # Recover rows no doorbell will ring for: stuck in SUBMITTING after a
        # killed worker, far overdue; and remove temp files of killed downloads.
        "sweep stuck work": {
            "task": "generations.tasks.sweep",
            "schedule": settings.SWEEP_INTERVAL,
            "options": {"expires": settings.SWEEP_INTERVAL * 2},
        },
        # Posters the broker lost (generations/posters.py: finished over five minutes
        # ago, no picture, not a model that could not be drawn), at most 20 a run, every
        # five minutes: a missing picture waits minutes, and a run over none is one query.
        "sweep lost posters": {
            "task": "generations.tasks.sweep_posters",
            "schedule": 300.0,
            "options": {"expires": 300.0},
        },
        # The wallet (balance for reconciliation, the key's rate limit) every
        # ten minutes; the task itself only calls when the budget has room.
        "refresh wallet": {
            "task": "generations.tasks.refresh_wallet",
            "schedule": 600.0,
            "options": {"expires": 300.0},
        },
        # Review notifications: announce newly finished/failed generations and send
        # one batched mail per person. Every REVIEW_NOTIFY_INTERVAL (5 minutes by
        # default): often enough to be timely, rare enough not to flood inboxes.
        "notify reviewers and members": {
            "task": "reviews.tasks.notify",
            "schedule": settings.REVIEW_NOTIFY_INTERVAL,
            "options": {"expires": settings.REVIEW_NOTIFY_INTERVAL},
        },
        # Expired sessions: refused when read, deleted here once a day.
        "clear expired sessions": {
            "task": "accounts.tasks.clear_expired_sessions",
            "schedule": 86400.0,
            "options": {"expires": 3600.0},
        },
    }


@app.on_after_configure.connect
def setup_periodic_tasks(sender, **kwargs):
    sender.conf.beat_schedule = _beat_schedule()
