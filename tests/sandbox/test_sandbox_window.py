"""The sliding window itself, checked exhaustively on synthetic clocks (no sleeping)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.store import Store

times = st.lists(st.floats(min_value=0, max_value=300, allow_nan=False), max_size=60).map(sorted)


@settings(max_examples=300, deadline=None)
@given(
    times=times, limit=st.integers(min_value=1, max_value=5), window=st.sampled_from([1, 10, 60])
)
def test_the_window_admits_exactly_what_fits(times, limit, window):
    store = Store(":memory:")
    admitted = []
    for now in times:
        log_id = store.log_start(now, "GET", "/x/", None, "key", "status")
        wait = store.throttle(log_id, "key", now, limit, window)
        recent = [t for t in admitted if t > now - window]
        if wait:
            # Refused only when the window is really full ...
            assert len(recent) >= limit
            # ... and the wait is exactly until the oldest blocking request leaves it.
            assert wait == max(recent[-limit] + window - now, 0.001)
        else:
            assert len(recent) < limit
            admitted.append(now)
    # Never more than `limit` admitted in any window.
    for start in admitted:
        assert len([t for t in admitted if start <= t < start + window]) <= limit
    store.close()
