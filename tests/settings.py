"""The test suite's settings: the project's, with each pytest-xdist worker on Redis
databases of its own (pytest-django already gives each worker its own test database).

The test command sets REDIS_URL to one database (``.../15``); worker ``gwN`` takes the
database 2N below it for its broker and rate budget, and the one beside that (the
lowest bit flipped, as in production) for its cache: gw0 15 and 14, gw1 13 and 12, gw3
9 and 8.
Processes the tests start are handed these URLs (tests/processes.py).
"""

import os

from studio_dashboard.env import redis_database
from studio_dashboard.settings import *  # noqa: F403
from studio_dashboard.settings import CACHES, CELERY_BROKER_URL, REDIS_URL

_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker.startswith("gw") and CELERY_BROKER_URL == REDIS_URL:
    _base = int(redis_database(REDIS_URL, flip=False).rsplit("/", 1)[1])
    _number = _base - 2 * int(_worker[2:])
    if _number < 1:
        raise ValueError(f"too many pytest-xdist workers for Redis databases below {_base}")
    REDIS_URL = CELERY_BROKER_URL = REDIS_URL.rsplit("/", 1)[0] + f"/{_number}"
    CACHES = {
        **CACHES,
        "default": {**CACHES["default"], "LOCATION": redis_database(REDIS_URL, flip=True)},
    }
