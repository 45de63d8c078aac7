"""Price tables as data: the shape check, the active version, publishing a new one.

A published table has exactly the shape of ``catalogue.PRICE_TABLE`` (the same
nested keys, a non-negative integer at every leaf). Publishing never edits a
version: it adds the next one. A version published before a price existed (a
provider, or a section such as the finishing steps' or the image models', added
to the catalogue later) lacks it: it is read as complete, the catalogue's default
standing in for what it lacks (``complete``).
"""

import copy
import time

from django.db import IntegrityError, transaction

from generations.catalogue import PRICE_TABLE
from studio_dashboard import dataversion

from .models import PriceTable


def leaves(table, prefix=()):
    """[(("hunyuan_pro", "base", "text"), 60), ...] in the table's own order."""
    out = []
    for key, value in table.items():
        if isinstance(value, dict):
            out += leaves(value, prefix + (key,))
        else:
            out.append((prefix + (key,), value))
    return out


def from_leaves(pairs):
    table = {}
    for path, value in pairs:
        node = table
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return table


def shape_errors(table, reference=PRICE_TABLE):
    """Why ``table`` is not a valid price table (empty when it is)."""
    if not isinstance(table, dict):
        return ["The price table must be an object."]
    errors = []
    wanted = {path for path, _ in leaves(reference)}
    try:
        given = dict(leaves(table))
    except AttributeError:
        return ["The price table has the wrong shape."]
    for path in sorted(wanted - given.keys()):
        errors.append(f"{'.'.join(path)} is missing.")
    for path in sorted(given.keys() - wanted):
        errors.append(f"{'.'.join(path)} is not a price we know.")
    for path, value in given.items():
        if path in wanted and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            errors.append(f"{'.'.join(path)} must be a whole number of credits, 0 or more.")
    return errors


def complete(table):
    """``table`` with the catalogue's default for every price it lacks (a copy)."""
    full = copy.deepcopy(PRICE_TABLE)
    for path, value in leaves(table):
        node = full
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return full


# The prices in force, kept in this process under the data version (studio_dashboard/
# dataversion.py, bumped when any row changes, a published table included, in every
# process at its commit): a page that prices several things (the five finishing forms of
# a model) reads the table once while nothing changes. Without the cache (Redis away) the
# table is read every time; what a lost bump hides is read again after MEMO_SECONDS.
MEMO_SECONDS = 60
_memo = {}  # {data version: (time read, (version, table))}, the newest only


def active():
    """(version, table) of the prices in force; (None, catalogue defaults) when none is stored.

    A stored table lacks only prices added to the catalogue after it was published
    (a provider, the finishing steps, the image models); those come from the
    catalogue's defaults, so the version's figures stand and the table is complete.
    Callers must not change the table they are given.
    """
    key = dataversion.current()
    kept = _memo.get(key) if key is not None else None
    if kept is not None and time.monotonic() - kept[0] < MEMO_SECONDS:
        return kept[1]
    row = PriceTable.objects.active()
    found = (None, PRICE_TABLE) if row is None else (row.version, complete(row.table))
    if key is not None:
        _memo.clear()
        _memo[key] = (time.monotonic(), found)
    return found


def publish(table, user=None, note=""):
    """Save ``table`` as the next version and return it. Raises ValueError on a bad shape."""
    errors = shape_errors(table)
    if errors:
        raise ValueError(" ".join(errors))
    for _ in range(5):
        latest = PriceTable.objects.active()
        version = (latest.version if latest else 0) + 1
        try:
            with transaction.atomic():
                row = PriceTable.objects.create(
                    version=version, table=table, created_by=user, note=note[:300]
                )
        except IntegrityError:
            continue  # another admin published this number first: take the next
        _audit(user, row)
        return row
    raise RuntimeError("Could not pick a price table version number")


def _audit(user, row):
    from .audit import record

    changed = [
        f"{'.'.join(path)}: {old} -> {new}"
        for (path, new), old in zip(leaves(row.table), _previous_values(row), strict=True)
        if old != new
    ]
    record(
        user,
        "prices.publish",
        f"Published price table v{row.version}" + (f": {row.note}" if row.note else ""),
        target=row,
        details={"version": row.version, "changes": changed},
    )


def _previous_values(row):
    before = PriceTable.objects.filter(version__lt=row.version).active()
    # A version from before a price existed charged the catalogue's default for it.
    previous = dict(leaves(complete(before.table) if before else PRICE_TABLE))
    return [previous.get(path) for path, _ in leaves(row.table)]
