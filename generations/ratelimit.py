"""One rate budget for the upstream key, shared by every process we run.

The upstream allows R requests per window (3 a minute by default) per API key,
and counts submits and status polls alike. Celery's own ``rate_limit`` is per
worker, so the budget lives in one place that every process consults: Redis (a
sliding-window log updated by one Lua script, atomic on the server), or for the
embedded set-up without Redis, one locked database row.

Nobody sleeps waiting for a slot: ``acquire`` answers at once with either a
slot or the number of seconds until one frees, and the caller moves its due
time instead.

No maintained library fitted: ``limits`` and similar count per-process moving
windows or fixed windows without a global "blocked until" (needed to honour a
429's Retry-After for every process at once) and without a peek at the free
slots (which the dispatcher uses to hand out the budget by priority). The
script is twenty lines and tested against real Redis.
"""

import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

_ACQUIRE = """
local calls, blocked = KEYS[1], KEYS[2]
local window, limit, take = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local until_ = tonumber(redis.call('GET', blocked) or '0')
if until_ > now then
  return {0, tostring(until_ - now), '0'}
end
redis.call('ZREMRANGEBYSCORE', calls, '-inf', now - window)
local used = redis.call('ZCARD', calls)
if used < limit then
  if take == 1 then
    redis.call('ZADD', calls, now, ARGV[4])
    redis.call('EXPIRE', calls, math.ceil(window) + 5)
    used = used + 1
  end
  return {1, '0', tostring(limit - used)}
end
local oldest = redis.call('ZRANGE', calls, 0, 0, 'WITHSCORES')
return {0, tostring(tonumber(oldest[2]) + window - now), '0'}
"""

_BLOCK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local until_ = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > current then
  redis.call('SET', KEYS[1], tostring(until_), 'EX', math.ceil(tonumber(ARGV[1])) + 5)
end
return tostring(until_)
"""

# A call's slot is logged when it is taken; once its answer is back, the slot moves to
# that moment (only if it is still in the log), see ``settle``.
_SETTLE = """
local t = redis.call('TIME')
return redis.call('ZADD', KEYS[1], 'XX', tonumber(t[1]) + tonumber(t[2]) / 1000000, ARGV[1])
"""


@dataclass
class Decision:
    allowed: bool
    wait: float  # seconds until a slot frees, when not allowed
    remaining: int  # free slots left after this decision
    token: str = ""  # names the slot taken, for ``settle``


def effective_limit():
    if settings.UPSTREAM_RATE_LIMIT_OVERRIDE:
        return settings.UPSTREAM_RATE_LIMIT_OVERRIDE
    learned = get_limiter().learned_limit()
    return learned or settings.UPSTREAM_RATE_LIMIT


def window():
    """The window we count in: the upstream's, plus a safety margin.

    Our clock starts when we take the slot, the upstream's when the request
    arrives; a margin keeps two requests sent a window apart from landing
    inside one upstream window.
    """
    w = settings.UPSTREAM_RATE_WINDOW
    return w + min(1.0, w * 0.02)


class RedisLimiter:
    def __init__(self, url=None, prefix="studio:rate"):
        import redis

        self.redis = redis.Redis.from_url(url or settings.REDIS_URL, socket_timeout=5)
        self.calls_key = f"{prefix}:calls"
        self.blocked_key = f"{prefix}:blocked"
        self.limit_key = f"{prefix}:limit"
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._block = self.redis.register_script(_BLOCK)
        self._settle = self.redis.register_script(_SETTLE)

    def _run(self, take):
        token = uuid.uuid4().hex
        allowed, wait, remaining = self._acquire(
            keys=[self.calls_key, self.blocked_key],
            args=[window(), effective_limit(), 1 if take else 0, token],
        )
        allowed = bool(int(allowed))
        return Decision(allowed, float(wait), int(remaining), token if allowed and take else "")

    def acquire(self):
        return self._run(take=True)

    def peek(self):
        return self._run(take=False)

    def settle(self, decision):
        """Log the call at the moment its answer came back instead of when its slot was taken.

        The upstream counts a call when it arrives, which may be well after we took
        the slot (a slow connect, a loaded machine, a body read from S3). Counting
        from the answer, which is after the arrival, keeps our window from opening
        before the upstream's does, however long the call took to leave.
        """
        if decision.token:
            self._settle(keys=[self.calls_key], args=[decision.token])

    def block(self, seconds):
        self._block(keys=[self.blocked_key], args=[max(0.0, float(seconds))])

    def learned_limit(self):
        value = self.redis.get(self.limit_key)
        return int(value) if value else None

    def learn_limit(self, limit):
        self.redis.set(self.limit_key, int(limit))

    def reset(self):
        self.redis.delete(self.calls_key, self.blocked_key, self.limit_key)


class DatabaseLimiter:
    """The same budget kept in one row, locked for every decision."""

    KEY = "upstream"

    def _row(self):
        from .models import RateBudget

        RateBudget.objects.get_or_create(key=self.KEY)
        return RateBudget.objects.select_for_update().get(key=self.KEY)

    def _run(self, take):
        with transaction.atomic():
            row = self._row()
            now = time.time()
            if row.blocked_until > now:
                return Decision(False, row.blocked_until - now, 0)
            w = window()
            calls = [t for t in row.calls if t > now - w]
            limit = effective_limit()
            if len(calls) < limit:
                if take:
                    calls.append(now)
                row.calls = calls
                row.save(update_fields=["calls"])
                return Decision(True, 0.0, limit - len(calls), repr(now) if take else "")
            return Decision(False, min(calls) + w - now, 0)

    def acquire(self):
        return self._run(take=True)

    def peek(self):
        return self._run(take=False)

    def settle(self, decision):
        """As ``RedisLimiter.settle``: the slot's time becomes the answer's."""
        if not decision.token:
            return
        with transaction.atomic():
            row = self._row()
            taken = float(decision.token)
            if taken in row.calls:
                row.calls = [time.time() if t == taken else t for t in row.calls]
                row.save(update_fields=["calls"])

    def block(self, seconds):
        with transaction.atomic():
            row = self._row()
            row.blocked_until = max(row.blocked_until, time.time() + max(0.0, float(seconds)))
            row.save(update_fields=["blocked_until"])

    def learned_limit(self):
        from .models import RateBudget

        row = RateBudget.objects.filter(key=self.KEY).first()
        return row.limit if row and row.limit else None

    def learn_limit(self, limit):
        with transaction.atomic():
            row = self._row()
            row.limit = int(limit)
            row.save(update_fields=["limit"])

    def reset(self):
        from .models import RateBudget

        RateBudget.objects.filter(key=self.KEY).delete()


_limiter = None


def get_limiter():
    global _limiter
    if _limiter is None:
        _limiter = RedisLimiter() if settings.RATE_LIMITER == "redis" else DatabaseLimiter()
    return _limiter


def reset_limiter_cache():
    global _limiter
    _limiter = None
