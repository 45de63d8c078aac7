#!/usr/bin/env bash
# Set up and run the whole test suite, lint included. Uses the PostgreSQL and
# Redis this machine kind runs on 127.0.0.1, and Debian's Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  echo "test: installing Debian's chromium for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
bash scripts/setup.sh

export DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/studio}"
export REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}"
export CELERY_BROKER_URL="$REDIS_URL"
export STUDIO_VAR_DIR="$PWD/var/test"
unset STUDIO_API_KEY

# The database the test database is named after; pytest-django creates test_studio.
.venv/bin/python - <<'PY'
import os, psycopg
url = os.environ["DATABASE_URL"]
name = url.rsplit("/", 1)[1]
with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
        conn.execute(f'CREATE DATABASE "{name}"')
PY

echo "== lint"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== migrations"
.venv/bin/python manage.py makemigrations --check --dry-run
echo "== deploy checks (production settings)"
DJANGO_DEBUG=0 DJANGO_SECRET_KEY="ci-$(head -c 48 /dev/urandom | base64 | tr -dc 'a-zA-Z0-9')xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
  DJANGO_ALLOWED_HOSTS=studio.example.com STUDIO_API_KEY=ci-sentinel-key EMAIL_HOST=smtp.example.com \
  .venv/bin/python manage.py check --deploy --fail-level WARNING
echo "== collectstatic (production storage: hashed, compressed, every reference resolved)"
DJANGO_DEBUG=0 DJANGO_SECRET_KEY="ci-collectstatic-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
  DJANGO_ALLOWED_HOSTS=studio.example.com STUDIO_API_KEY=ci-sentinel-key EMAIL_HOST=smtp.example.com \
  .venv/bin/python manage.py collectstatic --noinput --clear -v0
echo "== tests"
mkdir -p test-artifacts
# Four processes (pytest-xdist), each with its own test database and Redis databases
# (tests/settings.py), on two cores: the real-process and browser tests mostly wait, so
# four overlap their waits (10 min 49 s against 13 min 15 s with two, 2026-12-06);
# worksteal hands a finished worker the tests another has not started (the slowest take
# up to a minute). PYTEST_WORKERS=0 runs everything in this one.
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-4}" --dist worksteal "$@"
