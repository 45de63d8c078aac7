"""The shared cast and guards for every test.

No test may open a connection to anything outside loopback, even when the code
under test is wrong: ``socket.socket.connect`` refuses any other address.
"""

import ipaddress
import socket

import pytest
from django.contrib.auth.models import Group

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


def make_user(django_user_model, username, group=None, **extra):
    user = django_user_model.objects.create_user(username=username, password="pw-" + username, **extra)
    if group:
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
