"""A Redis cache that degrades to a miss when Redis is away, instead of failing the page.

The cache holds copies only (fragments, counts; sessions are in the database and read
through it), so while Redis restarts or is flushed the pages stay up, a little slower,
and say so once per failure in the log. It keeps a Redis database of its own (see
CACHES in settings), so Django's own ``clear()`` (FLUSHDB) is safe.
"""

import logging
import time

from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


# After a failure the cache is skipped for this long, so a Redis outage costs one
# connect timeout every few seconds, not one per cache call of every page.
RETRY_AFTER = 5.0


def _tolerant(name, fallback):
    method = getattr(RedisCache, name)

    def call(self, *args, **kwargs):
        if time.monotonic() >= self.down_until:
            try:
                return method(self, *args, **kwargs)
            except RedisError as exc:
                self.down_until = time.monotonic() + RETRY_AFTER
                logger.warning("cache %s failed, treated as a miss: %s", name, exc)
        return fallback(*args, **kwargs) if callable(fallback) else fallback

    call.__name__ = name
    return call


def _default(key, default=None, *args, **kwargs):
    return default


class TolerantRedisCache(RedisCache):
    down_until = 0.0

    get = _tolerant("get", _default)
    get_many = _tolerant("get_many", {})
    has_key = _tolerant("has_key", False)
    set = _tolerant("set", None)
    set_many = _tolerant("set_many", lambda data, *a, **k: list(data))
    add = _tolerant("add", False)
    touch = _tolerant("touch", False)
    delete = _tolerant("delete", False)
    delete_many = _tolerant("delete_many", None)
    incr = _tolerant("incr", None)
    clear = _tolerant("clear", False)
