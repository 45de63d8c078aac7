from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self):
        # Connect the worker heartbeat receivers before any worker starts: Celery
        # only sends heartbeat_sent when the signal has receivers at start-up.
        from . import heartbeat  # noqa: F401
