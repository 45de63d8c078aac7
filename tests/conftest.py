"""The shared cast and guards for every test.

No test may open a connection to anything outside loopback, even when the code
under test is wrong: ``socket.socket.connect`` refuses any other address.
"""

import ipaddress
import socket
import threading

import pytest
from django.contrib.auth.models import Group
from django.db import connection

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_address(address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host.startswith("/"):
        return  # unix socket
    try:
        ip = ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        raise ConnectionRefusedError(f"test guard: refusing to connect to {host!r}") from None
    if not ip.is_loopback:
        raise ConnectionRefusedError(f"test guard: refusing to connect to non-loopback {host}")


def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_address(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_address(address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def loopback_only():
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    yield
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex


def at_once(*targets, timeout=60):
    """Run each of ``targets`` in its own thread, all released together by a barrier.

    Each thread closes its own database connection when done. Returns what the
    targets raised (as reprs), so a test can assert it is empty.
    """
    start = threading.Barrier(len(targets))
    errors = []

    def run(target):
        try:
            start.wait(timeout=10)
            target()
        except Exception as exc:  # noqa: BLE001 - returned to the test, which asserts on it
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return errors


# The data migrations that make the groups and grant them permissions, in order.
ROLE_MIGRATIONS = [
    ("generations", "0002_create_roles"),
    ("credits", "0003_grant_admins_credit_permissions"),
    ("reviews", "0003_grant_audit_log_to_admins"),
    ("credits", "0007_ledger_permissions_belong_to_credits"),
    ("accounts", "0005_admins_clear_lockouts"),
]


def ensure_roles():
    """Transactional tests flush the tables, data migrations included: put the roles back
    by running those migrations again, each on the models of its own moment (a
    permission they name may since have moved to another app)."""
    if Group.objects.filter(name="Admins").exists():
        return
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(connection)
    for key in ROLE_MIGRATIONS:
        apps = loader.project_state(key, at_end=False).apps
        for operation in loader.get_migration(*key).operations:
            operation.code(apps, None)


def make_user(django_user_model, username, group=None, **extra):
    user = django_user_model.objects.create_user(
        username=username, password="pw-" + username, **extra
    )
    if group:
        ensure_roles()
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def member(django_user_model):
    return make_user(django_user_model, "member", "Members")


@pytest.fixture
def second_member(django_user_model):
    return make_user(django_user_model, "member2", "Members")


@pytest.fixture
def reviewer(django_user_model):
    return make_user(django_user_model, "reviewer", "Reviewers")


@pytest.fixture
def admin_user(django_user_model):
    return make_user(django_user_model, "boss", "Admins", is_staff=True)


@pytest.fixture
def outsider(django_user_model):
    """Logged in, but in no group at all."""
    return make_user(django_user_model, "outsider")


def rapid_generation(owner, **fields):
    """A text-to-3D generation on Hunyuan Rapid, saved with ``fields``."""
    from generations.models import Generation

    defaults = {"provider": "hunyuan_rapid", "mode": "text", "credit_estimate": 35}
    return Generation.objects.create(owner=owner, **{**defaults, **fields})


@pytest.fixture
def generating(member):
    """The member's generation in flight: Rapid, 30% done."""
    from generations.models import State

    return rapid_generation(member, prompt="a lamp", state=State.IN_PROGRESS, progress=30)


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client


@pytest.fixture
def redis_limiter(settings):
    """The real Redis limiter on the test Redis, emptied before and after."""
    from generations import ratelimit

    settings.RATE_LIMITER = "redis"
    ratelimit.reset_limiter_cache()
    limiter = ratelimit.get_limiter()
    limiter.reset()
    yield limiter
    limiter.reset()
    ratelimit.reset_limiter_cache()


@pytest.fixture
def canned():
    from tests.canned import CannedServer

    server = CannedServer()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache (fragments, sessions, the data version) and
    without the durations the planner keeps per process."""
    from django.core.cache import cache

    from generations import planner

    cache.clear()
    planner.forget_profiles()
    yield


SANDBOX_KEY = "sk-sandbox-sentinel-7f3a"
SANDBOX_TIME_SCALE = 0.004  # Rapid's ~150 s becomes ~0.6 s


@pytest.fixture
def sandbox_server(tmp_path, settings, redis_limiter):
    """The sandbox over real HTTP on loopback, with the dashboard pointed at it."""
    from sandbox.server import SandboxServer

    server = SandboxServer(
        host="127.0.0.1",
        port=0,
        state_path=tmp_path / "sandbox" / "state.sqlite3",
        time_scale=SANDBOX_TIME_SCALE,
        rate_limit=10_000,
        rate_window=60,
        balance=100_000,
        api_keys=[SANDBOX_KEY],
        seed=1,
        quirks=False,
    )
    server.start()
    settings.SANDBOX_MODE = True
    settings.SANDBOX_URL = server.url
    settings.UPSTREAM_BASE_URL = server.url
    settings.UPSTREAM_API_KEY = SANDBOX_KEY
    settings.UPSTREAM_READ_TIMEOUT = 2.0
    settings.PLANNER_DURATION_SCALE = SANDBOX_TIME_SCALE
    settings.UPSTREAM_RATE_LIMIT_OVERRIDE = 10_000
    settings.MEDIA_ROOT = tmp_path / "media"
    yield server
    server.stop()


@pytest.fixture
def empty_broker_queue(settings):
    """Earlier tests ring doorbells on the real broker; start from an empty queue."""
    import redis

    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("celery")
