#!/usr/bin/env bash
# Set up and run the whole dashboard on embedded defaults: web, Celery worker,
# beat and the sandbox upstream. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Without a Redis that answers, everything (the migration below included) uses the embedded
# filesystem broker, the database rate limiter and a cache in files under var/.
if [ -z "${CELERY_BROKER_URL:-}" ] && ! .venv/bin/python -c '
import os, redis
redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
                     socket_connect_timeout=1, socket_timeout=1).ping()' 2>/dev/null; then
  echo "Notice: no Redis answers at ${REDIS_URL:-redis://127.0.0.1:6379/0}; using the embedded filesystem broker and the database rate limiter instead."
  export CELERY_BROKER_URL="filesystem://" RATE_LIMITER="database"
fi
.venv/bin/python manage.py migrate --noinput -v0
exec .venv/bin/python manage.py rundev "$@"
