"""Settings for Studio Dashboard.

Everything comes from environment variables (see .env.example). The defaults
run locally with no configuration at all: SQLite, media on local disk, the
sandbox upstream. With DJANGO_DEBUG=0 the process refuses to start without a
real secret key and allowed hosts.
"""

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from kombu import Exchange, Queue

from .env import env_bool, env_float, env_int, env_list, env_secret, env_str, redis_database

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("STUDIO_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", True)

_DEV_SECRET = "dev-only-insecure-secret-key-do-not-use-in-production"
SECRET_KEY = env_secret("DJANGO_SECRET_KEY", _DEV_SECRET if DEBUG else "")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

if not DEBUG:
    if not SECRET_KEY or SECRET_KEY == _DEV_SECRET or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set to a random string of 50+ characters when DJANGO_DEBUG=0"
        )
    if not env_list("DJANGO_ALLOWED_HOSTS"):
        raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must be set when DJANGO_DEBUG=0")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "accounts",
    "generations",
    "credits",
    "reviews",
    "ops",
    # The JSON API (api/): Django REST framework, its OpenAPI schema by drf-spectacular,
    # and Swagger UI's files from drf-spectacular-sidecar (our static files, no CDN).
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api",
    # Login throttling (django-axes): its failures and lockouts are in the admin.
    "axes",
]

MIDDLEWARE = [
    # First, so request latencies (Prometheus, /metrics) include every other middleware.
    "ops.metrics.RequestLatencyMiddleware",
    # Before anything reads a body (CsrfViewMiddleware parses it in its process_view).
    "studio_dashboard.middleware.BodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every answer (SECURE_CSP below).
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Cache-Control: private on signed-in answers and downloads (a shared proxy keeps none).
    "studio_dashboard.middleware.PrivateCacheMiddleware",
    # Names the person acting in audit entries written by signals (role changes).
    "reviews.middleware.AuditActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: turns a lockout into its page (429).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "studio_dashboard.urls"
WSGI_APPLICATION = "studio_dashboard.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "generations.context_processors.studio",
                "credits.context_processors.budget_warning",
                "reviews.context_processors.reviews",
                "studio_dashboard.dataversion.context",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'studio.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
    "DATABASE_PREPARED_STATEMENTS", True
):
    # Server-side parameters and prepared statements: a page's few small queries are
    # each run thousands of times, and PostgreSQL took longer to plan them than to run
    # them (0.4 ms against 0.1 ms for the user's). psycopg prepares a statement on a
    # connection the second time it sees it. Behind PgBouncer in transaction mode
    # (before 1.21's max_prepared_statements) set DATABASE_PREPARED_STATEMENTS=0.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=2
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Web, worker and beat share one SQLite file in the embedded set-up: wait
    # for a writer instead of failing at once, and take the write lock at the
    # start of a transaction so a read-then-write never deadlocks.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes' backend first: it refuses a locked-out username or address before Django's
# own backend checks the password.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Failed logins, counted in the database (so every web process sees them) per username and,
# separately, per address: LOGIN_FAILURE_LIMIT failures in a row lock that username, or that
# address, out for LOGIN_LOCKOUT_MINUTES (a failure while locked out does not extend it).
# Admins see the lockouts under Admin > Axes > Access attempts and clear one by deleting it
# (or `manage.py axes_reset_username NAME`, `axes_reset_ip ADDRESS`).
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "accounts.lockout.locked_out"
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.client_ip"
# Reverse proxies in front of gunicorn that append to X-Forwarded-For (0: none, use the
# connection's address). Wrong here, and every login shares the proxy's address.
LOGIN_TRUSTED_PROXIES = env_int("LOGIN_TRUSTED_PROXIES", 0, minimum=0)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "generations:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"  # never served publicly: downloads go through authorised views
MEDIA_ROOT = Path(env_str("STUDIO_MEDIA_ROOT", str(VAR_DIR / "media")))
# Media on an S3-compatible bucket when S3_BUCKET is set (web, workers and beat may then run
# on different machines), local disk otherwise. Objects stay private: no ACL is sent, so the
# bucket's own (private) policy applies; downloads are streamed by the authorised views.
S3_BUCKET = env_str("S3_BUCKET")
S3_ENDPOINT_URL = env_str("S3_ENDPOINT_URL")
if S3_ENDPOINT_URL and not S3_BUCKET:
    raise ImproperlyConfigured("S3_ENDPOINT_URL is set but S3_BUCKET is not")
if S3_BUCKET:
    from boto3.s3.transfer import TransferConfig

    # A multipart upload reads its parts into memory ahead of sending them: by default
    # 10 parts of 8 MB read ahead plus 10 in flight. Two of each keeps a 200 MB upload
    # within our 64 MB budget per process (tests/bench/bench_memory.py measures it).
    _transfer_config = TransferConfig(
        multipart_threshold=8 * 1024 * 1024,
        multipart_chunksize=8 * 1024 * 1024,
        max_concurrency=2,
    )
    # Not an argument of boto3's TransferConfig, but an attribute s3transfer reads.
    _transfer_config.max_in_memory_upload_chunks = 2
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": S3_ENDPOINT_URL or None,
            # Empty: boto3's own chain (instance role, ~/.aws) supplies the keys.
            "access_key": env_secret("S3_ACCESS_KEY_ID") or None,
            "secret_key": env_secret("S3_SECRET_ACCESS_KEY") or None,
            "region_name": env_str("S3_REGION") or None,
            # S3-compatible servers (MinIO, moto, Ceph) behind one host name want path style.
            "addressing_style": "path" if S3_ENDPOINT_URL else None,
            "default_acl": None,  # never "public-read"
            "querystring_auth": True,  # any URL the storage makes is signed ...
            "querystring_expire": 300,  # ... and short-lived
            # Names carry a random UUID, so no HEAD per save to find a free one.
            "file_overwrite": True,
            # storage.open() spools a whole object; past 4 MB the spool goes to disk, not memory.
            "max_memory_size": 4 * 1024 * 1024,
            "transfer_config": _transfer_config,
        },
    }
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# GLB and WASM decoders must go out with the right type for model-viewer.
WHITENOISE_MIMETYPES = {".glb": "model/gltf-binary", ".wasm": "application/wasm"}

# Uploads above this go to a temporary file, not memory (reference images are up to 20 MB).
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# Non-file form data only (files are not counted): a prompt and options are a few kB.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# The most views a form takes (Hunyuan Pro 3.1: 8); more files in one request is refused (400).
DATA_UPLOAD_MAX_NUMBER_FILES = 8

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", True)
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy: scripts and styles only from our own static files (no inline
# script, style attribute or eval anywhere; htmx's config says so in base.html). The
# exceptions are model-viewer's: its Draco/KTX2/meshopt decoders compile WebAssembly
# ('wasm-unsafe-eval') in workers it starts from blob: URLs, and three.js reads textures
# and buffers through blob: and data: URLs. tests/browser/test_csp.py loads the main pages
# (a real GLB in the viewer) in Chromium and fails on any violation.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.WASM_UNSAFE_EVAL],
    # model-viewer's shadow DOM template carries one fixed <style> element: allowed by its
    # hash (static/vendor/model-viewer/model-viewer.min.js; a new version has a new hash,
    # and the browser test says so).
    "style-src": [CSP.SELF, "'sha256-PXtZZkJMMyc18o/DN1ZEFOJ2qEGq95IQbVaJFMOXOb0='"],
    "img-src": [CSP.SELF, "data:", "blob:"],
    # Rendered turntable videos (MP4, WebM) play from the authorised file view, on this
    # origin (files are streamed through it, never from the bucket's own URLs).
    "media-src": [CSP.SELF],
    "connect-src": [CSP.SELF, "data:", "blob:"],
    "worker-src": [CSP.SELF, "blob:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# Error pages and error mails mask the password of every URL-shaped value (DATABASE_URL,
# REDIS_URL, CACHES' LOCATION...), not only the settings whose name looks secret.
DEFAULT_EXCEPTION_REPORTER_FILTER = "studio_dashboard.debug.URLCredentialsFilter"

# --- Celery -----------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Embedded broker for machines without Redis: kombu's filesystem transport
    # keeps messages in plain files, so no server is needed.
    _broker_dir = Path(env_str("CELERY_BROKER_DIR", str(VAR_DIR / "broker")))
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Exchange tables (kombu's default is ./control, in whatever directory it runs).
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # A message with an ETA longer than this is delivered twice by Redis; we
    # never use countdowns longer than a few seconds (due times live in the
    # database), and every task's hard time limit stays well below it.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# Publish through the anonymous (default) exchange straight to the queue. On
# Redis, named exchanges route through binding keys that a FLUSHALL or a Redis
# restart without persistence wipes, silently dropping every later message;
# the default exchange needs no binding, so the doorbells keep ringing.
CELERY_TASK_QUEUES = (Queue("celery", Exchange("", type="direct"), routing_key="celery"),)
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_DEFAULT_EXCHANGE = ""
CELERY_TASK_DEFAULT_ROUTING_KEY = "celery"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"

# --- Cache and sessions -------------------------------------------------------
# With Redis (the broker) the cache is shared by every web process, in a Redis database
# of its own (by default the broker's number with its lowest bit flipped: 0 -> 1,
# 15 -> 14), so clearing the cache never touches the broker's queues. A Redis outage
# only slows pages: django-redis answers a miss and logs it (IGNORE_EXCEPTIONS); it also
# keeps one client per server, where Django's own backend builds one for every call. The
# embedded set-up without Redis keeps the cache in files under var/cache, which the web
# process and the worker share: a worker's change makes the web process's fragments old
# at once.
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": env_str("CACHE_URL", redis_database(REDIS_URL, flip=True)),
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
                "IGNORE_EXCEPTIONS": True,
            },
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
# Sessions in the database, read through the cache: a Redis flush or outage logs nobody
# out (the database has every session), and a signed-in request usually reads none.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# --- The JSON API (api/) --------------------------------------------------------
# A personal token's own request rate ("120/min"; DRF's throttle syntax), shared by
# every web process through the cache. Over it: 429 with Retry-After.
API_TOKEN_RATE = env_str("API_TOKEN_RATE", "120/min")
# The largest JSON body (base64 images); bigger images go as multipart files.
API_MAX_JSON_BYTES = env_int("API_MAX_JSON_BYTES", 48 * 1024 * 1024, minimum=1024)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.TokenAuthentication",
        # The pages' own scripts; DRF enforces the CSRF token on its writes.
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.TokenRateThrottle"],
    "DEFAULT_PARSER_CLASSES": [
        "api.parsers.CappedJSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.exceptions.handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Studio Dashboard API",
    "DESCRIPTION": "Generate 3D models, follow them, download them; review; spend.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from our own static files (drf-spectacular-sidecar), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # The schema and its docs page for signed-in people and tokens only, like the rest.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
}

# --- Request bodies ---------------------------------------------------------------
# Django reads a body whole (CSRF parses it before any login check; files are spooled to
# disk) and has no cap of its own on files. studio_dashboard.middleware.BodyLimitMiddleware
# answers 413 from the Content-Length alone, before anything reads a byte.
# A reference image may be up to this many bytes (generations/images.py).
REFERENCE_IMAGE_MAX_UPLOAD_BYTES = env_int(
    "REFERENCE_IMAGE_MAX_UPLOAD_BYTES", 20 * 1024 * 1024, minimum=1024
)
# Every request but the few below: a form's fields are at most DATA_UPLOAD_MAX_MEMORY_SIZE;
# the rest is room for multipart framing.
REQUEST_MAX_BODY_BYTES = env_int(
    "REQUEST_MAX_BODY_BYTES", DATA_UPLOAD_MAX_MEMORY_SIZE + 512 * 1024, minimum=1024
)
# The views that take reference images (URL names), and only for someone signed in (a
# session or an API token): an anonymous POST would otherwise be read in full for CSRF.
REQUEST_UPLOAD_VIEWS = [
    "generations:new",
    "generations:poster",
    # "Start from an image": up to 4 images to edit (generations/concept_forms.py).
    "generations:concept-new",
    "api:generations",
    "api:regenerate",
    # A batch's CSV and images (generations/batches.py), DATA_UPLOAD_MAX_NUMBER_FILES files
    # a request at most: the page's script sends a larger choice in several.
    "batches:new",
    "batches:detail",
    "api:batches",
    "api:batch",
]
# Their cap comes from the largest legitimate request: every view slot filled (Hunyuan Pro
# 3.1 takes 8) with an image at the limit, as multipart files, or as base64 in JSON (4/3
# larger, but at most API_MAX_JSON_BYTES); plus DATA_UPLOAD_MAX_MEMORY_SIZE for the fields.
# By default 8 x 20 MB + 2 MB = 162 MB.
_all_images = DATA_UPLOAD_MAX_NUMBER_FILES * REFERENCE_IMAGE_MAX_UPLOAD_BYTES
_all_images_base64 = min(API_MAX_JSON_BYTES, -(-_all_images * 4 // 3))
REQUEST_MAX_UPLOAD_BYTES = env_int(
    "REQUEST_MAX_UPLOAD_BYTES",
    max(_all_images, _all_images_base64) + DATA_UPLOAD_MAX_MEMORY_SIZE,
    minimum=REQUEST_MAX_BODY_BYTES,
)

# --- The upstream -------------------------------------------------------------
STUDIO_API_KEY = env_secret("STUDIO_API_KEY")
SANDBOX_URL = env_str("SANDBOX_URL", "http://127.0.0.1:8765").rstrip("/")
SANDBOX_MODE = not STUDIO_API_KEY
UPSTREAM_BASE_URL = env_str(
    "UPSTREAM_BASE_URL", SANDBOX_URL if SANDBOX_MODE else "https://api.3daistudio.com"
).rstrip("/")
UPSTREAM_API_KEY = STUDIO_API_KEY or env_secret("SANDBOX_API_KEY", "sandbox-key")
UPSTREAM_CONNECT_TIMEOUT = env_float("UPSTREAM_CONNECT_TIMEOUT", 5.0, minimum=0.1)
UPSTREAM_READ_TIMEOUT = env_float("UPSTREAM_READ_TIMEOUT", 30.0, minimum=0.1)
# Result files live on the upstream's storage hosts. Anything else is refused
# before a socket opens (see generations/ingest.py).
UPSTREAM_ASSET_HOSTS = env_list(
    "UPSTREAM_ASSET_HOSTS",
    ["*.3daistudio.com", "*.amazonaws.com", "*.r2.cloudflarestorage.com", "storage.googleapis.com"],
)
# Origins (scheme://host:port, each matched exactly, no wildcards) whose result files
# are fetched although they are not https on the allow-list, or resolve to a private
# address: an http staging upstream, a proxy on a private network. Empty by default;
# every other origin is still refused before a socket opens.
UPSTREAM_EXTRA_ASSET_ORIGINS = []
for _origin in env_list("UPSTREAM_EXTRA_ASSET_ORIGINS"):
    _parts = urlsplit(_origin)
    try:
        _port = _parts.port or {"http": 80, "https": 443}[_parts.scheme]
    except (KeyError, ValueError):
        _port = None
    if not (_port and _parts.hostname) or _parts.username or _parts.path.strip("/"):
        raise ImproperlyConfigured(
            f"UPSTREAM_EXTRA_ASSET_ORIGINS: {_origin!r} is not http(s)://host[:port]"
        )
    UPSTREAM_EXTRA_ASSET_ORIGINS.append(f"{_parts.scheme}://{_parts.hostname}:{_port}")
ASSET_MAX_BYTES = env_int("ASSET_MAX_BYTES", 300 * 1024 * 1024, minimum=1024)
# Seconds one result file may take to download, however slowly it drips. At most
# 600: the time limits of the tasks that download are built around that.
ASSET_DOWNLOAD_DEADLINE = env_float("ASSET_DOWNLOAD_DEADLINE", 600.0, minimum=1.0)
if ASSET_DOWNLOAD_DEADLINE > 600:
    raise ImproperlyConfigured("ASSET_DOWNLOAD_DEADLINE must be at most 600 seconds")
# Requests a minute the upstream allows this key; the wallet's `rate_limit`
# replaces it once fetched, unless UPSTREAM_RATE_LIMIT_OVERRIDE is set.
UPSTREAM_RATE_LIMIT = env_int("UPSTREAM_RATE_LIMIT", 3, minimum=1)
UPSTREAM_RATE_LIMIT_OVERRIDE = env_int("UPSTREAM_RATE_LIMIT_OVERRIDE", 0, minimum=0)
UPSTREAM_RATE_WINDOW = env_float("UPSTREAM_RATE_WINDOW", 60.0, minimum=0.1)
# "redis" shares one budget between every process through Redis; "database"
# does the same through a locked row, for the embedded set-up without Redis.
RATE_LIMITER = env_str("RATE_LIMITER", "redis")
if RATE_LIMITER not in {"redis", "database"}:
    raise ImproperlyConfigured("RATE_LIMITER must be 'redis' or 'database'")
# Multiplies the documented typical durations used to plan the first poll
# until our own history has enough finished generations. Tests and demos run
# the sandbox with a time scale and set the same factor here.
PLANNER_DURATION_SCALE = env_float("PLANNER_DURATION_SCALE", 1.0, minimum=0.0001)
# "adaptive" (see generations/planner.py) or "fixed": poll every
# FIXED_POLL_INTERVAL seconds, the naive baseline of the pipeline benchmark.
PLANNER_MODE = env_str("PLANNER_MODE", "adaptive")
if PLANNER_MODE not in {"adaptive", "fixed"}:
    raise ImproperlyConfigured("PLANNER_MODE must be 'adaptive' or 'fixed'")
FIXED_POLL_INTERVAL = env_float("FIXED_POLL_INTERVAL", 10.0, minimum=0.1)
# How often the dispatcher runs (beat), in seconds.
DISPATCH_INTERVAL = env_float("DISPATCH_INTERVAL", 2.0, minimum=0.1)
# How often the sweep recovers stuck work, in seconds.
SWEEP_INTERVAL = env_float("SWEEP_INTERVAL", 30.0, minimum=0.5)
# A dispatched step (poll, submit) that has not finished within its lease is
# dispatched again (its worker died or its message was lost). Each lease is
# longer than the step's hard time limit, so a step still running is never
# handed out twice. Ingest downloads big files and gets a longer lease.
STEP_LEASE = env_float("STEP_LEASE", 90.0, minimum=1.0)
INGEST_LEASE = env_float("INGEST_LEASE", 1000.0, minimum=1.0)
# A row still SUBMITTING after this long had its worker die mid-submit: the
# upstream may have accepted it, so the sweep sends it to a person.
SUBMIT_DEADLINE = env_float("SUBMIT_DEADLINE", 300.0, minimum=1.0)

# --- Credits ------------------------------------------------------------------
# The spend and wallet pages warn when the upstream wallet is below this many credits.
LOW_BALANCE_WARNING = env_int("LOW_BALANCE_WARNING", 500, minimum=0)

# --- Reviews, notifications and mail --------------------------------------------
# May a reviewer approve a generation they made themselves? (An admin decision.)
REVIEW_ALLOW_SELF_APPROVAL = env_bool("REVIEW_ALLOW_SELF_APPROVAL", False)
# How often (seconds) finished/failed generations are announced and mail is batched.
REVIEW_NOTIFY_INTERVAL = env_float("REVIEW_NOTIFY_INTERVAL", 300.0, minimum=5.0)
# How far back the announcement scan looks for finished and failed generations.
REVIEW_EVENT_LOOKBACK = timedelta(hours=env_int("REVIEW_EVENT_LOOKBACK_HOURS", 48, minimum=1))
# Links in mails point here.
STUDIO_BASE_URL = env_str("STUDIO_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Mail goes to the console unless an SMTP host is set (Django 6.1's MAILERS;
# the EMAIL_* settings it replaces are deprecated).
EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    _mail_use_tls = env_bool("EMAIL_USE_TLS", True)
    _mail_use_ssl = env_bool("EMAIL_USE_SSL", False)
    if _mail_use_tls and _mail_use_ssl:
        raise ImproperlyConfigured("Set at most one of EMAIL_USE_TLS and EMAIL_USE_SSL")
    _mailer = {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": EMAIL_HOST,
            "port": env_int("EMAIL_PORT", 587, minimum=1),
            "username": env_str("EMAIL_HOST_USER"),
            "password": env_secret("EMAIL_HOST_PASSWORD"),
            "use_tls": _mail_use_tls,
            "use_ssl": _mail_use_ssl,
            "timeout": env_float("EMAIL_TIMEOUT", 10.0, minimum=0.1),
        },
    }
elif not DEBUG:
    # Notifications are part of the product: production does not start without mail.
    raise ImproperlyConfigured("EMAIL_HOST must be set when DJANGO_DEBUG=0")
else:
    _mailer = {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
MAILERS = {"default": _mailer}
del EMAIL_HOST
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Studio Dashboard <studio@localhost>")

# --- Operations (ops/) ------------------------------------------------------------
# /metrics answers a Prometheus scrape bearing this token; without one, only staff sessions.
METRICS_TOKEN = env_secret("METRICS_TOKEN")
# The load balancer's health check speaks plain HTTP to the container.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# One line per event: JSON in production, plain in development. Both filters sit on
# the handler, so they see every record: the generation id from the log context
# (ops.logs.log_context) and the API key replaced wherever it appears.
LOG_FORMAT = env_str("LOG_FORMAT") or ("plain" if DEBUG else "json")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured("LOG_FORMAT must be 'plain' or 'json'")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "ops.logs.ContextFilter"},
        "redact": {"()": "ops.logs.RedactFilter"},
    },
    "formatters": {
        "plain": {"()": "ops.logs.PlainFormatter"},
        "json": {"()": "ops.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"urllib3": {"level": "WARNING"}},
}
# Celery workers keep this configuration (and its filters) instead of replacing the
# root logger's handlers with their own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
