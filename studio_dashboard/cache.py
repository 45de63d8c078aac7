"""A Redis cache that degrades to a miss when Redis is away, instead of failing the page.

The cache holds copies only (pages and counts are recomputed on a miss; sessions
live in the database), so while Redis restarts or is flushed the pages stay up,
a little slower, and say so once per failure in the log.
"""

import logging
import time

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


# After a failure the cache is skipped for this long, so a Redis outage costs one
# connect timeout every few seconds, not one per cache call of every page.
RETRY_AFTER = 5.0


def _tolerant(name, fallback):
    method = getattr(RedisCache, name)

    def call(self, *args, **kwargs):
        if time.monotonic() >= self._down_until:
            try:
                return method(self, *args, **kwargs)
            except RedisError as exc:
                self._down_until = time.monotonic() + RETRY_AFTER
                logger.warning("cache %s failed, treated as a miss: %s", name, exc)
        return fallback(*args, **kwargs) if callable(fallback) else fallback

    call.__name__ = name
    return call


def _default(key, default=None, *args, **kwargs):
    return default


class _ReusedClient(RedisCacheClient):
    """Django builds a redis.Redis client (and its table of response callbacks) on every
    call; one per pool is enough: the client is thread-safe and holds no connection."""

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        clients = self.__dict__.setdefault("_clients", {})
        client = clients.get(id(pool))
        if client is None:
            client = clients[id(pool)] = self._client(connection_pool=pool)
        return client


class TolerantRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusedClient
        self._down_until = 0.0

    get = _tolerant("get", _default)
    get_many = _tolerant("get_many", {})
    has_key = _tolerant("has_key", False)
    set = _tolerant("set", None)
    set_many = _tolerant("set_many", lambda data, *a, **k: list(data))
    add = _tolerant("add", False)
    touch = _tolerant("touch", False)
    delete = _tolerant("delete", False)
    delete_many = _tolerant("delete_many", None)

    def clear(self):
        """Delete this site's keys only: the database may also hold the Celery broker's
        queues (one REDIS_URL for both), which Django's FLUSHDB would wipe."""
        try:
            client = self._cache.get_client(write=True)
            keys = list(client.scan_iter(match=f"{self.key_prefix}:*", count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
        except RedisError as exc:
            logger.warning("cache clear failed: %s", exc)
            return False
        return True
