"""Production settings plus the benchmark's URLconf and its own collected static files."""

import os

from studio_dashboard.settings import *  # noqa: F403
from studio_dashboard.settings import MIDDLEWARE, STORAGES

ROOT_URLCONF = "tests.bench.web_urls"
# With DJANGO_DEBUG=0 static URLs come from the manifest of collected files; the bench
# collects them into a directory of its own rather than the project's STATIC_ROOT.
STATIC_ROOT = os.environ["BENCH_STATIC_ROOT"]
# The vendored model-viewer names a source map it does not ship, which fails the
# manifest's post-processing; the bench's storage leaves source-map references alone.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "tests.bench.web_static.BenchStaticStorage"}}
# The "(after a change)" rows: every request first makes the cached fragments old.
if os.environ.get("BENCH_BUMP_EVERY_REQUEST") == "1":
    MIDDLEWARE = ["tests.bench.web_urls.bump_data_version", *MIDDLEWARE]
