"""A Celery worker whose ingest kills its own process for "poison" prompts.

Started by the poison-generation test as `python -m tests.crashing_worker ...`:
the crash is injected here, in test code, never in the product.
"""

import os
import signal
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio_dashboard.settings")
django.setup()

from generations import ingest  # noqa: E402
from generations.models import Generation  # noqa: E402
from studio_dashboard.celery import app  # noqa: E402

_real_download = ingest.download


def crashing_download(url, **kwargs):
    # The sandbox's result URLs carry the upstream task id in their path.
    poison = Generation.objects.filter(prompt__contains="poison").values_list(
        "upstream_task_id", flat=True
    )
    if any(task_id and task_id in url for task_id in poison):
        os.kill(os.getpid(), signal.SIGKILL)
    return _real_download(url, **kwargs)


ingest.download = crashing_download

if __name__ == "__main__":
    app.worker_main(sys.argv[1:])  # ["worker", "--loglevel", ...]
