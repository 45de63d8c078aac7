#!/usr/bin/env bash
# Set up and run the whole dashboard on embedded defaults: web, Celery worker,
# beat and the sandbox upstream. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python manage.py migrate --noinput -v0
exec .venv/bin/python manage.py rundev "$@"
