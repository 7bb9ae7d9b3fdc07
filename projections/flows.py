"""Sums kept per day and per month, and the accounts counted where each is now.

A report over a long range, or one that needs everything before a day (the
accounts active then), would otherwise read a row per account or per day of
the whole history. These tables keep each sum twice: per day, and per month
(the month's first day), so any range [start, end) is its whole months, read a
row per month, and the days of at most two cut months (`split_range`).

Accounts are counted where each is now (its current segment, plan, channel):
`opened` on its opening day, `closed` on its closing day, and `ended` on the
later of the two, so the accounts active at a day are those opened less those
ended before it (an account closed before it opened, by business time, is
never active). A batch moves each account it touched from where it stood
before the batch to where it stands after, as signed deltas summed per key and
added to the table once per batch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from psycopg import Cursor

GRAINS = ("day", "month")
# A flow's counters by name, each a signed sum, per (grain, day, *where).
Deltas = defaultdict[tuple[Any, ...], defaultdict[str, int]]


def new_deltas() -> Deltas:
    """An empty set of signed sums per key."""
    return defaultdict(lambda: defaultdict(int))


def moved(deltas: Deltas) -> dict[tuple[Any, ...], defaultdict[str, int]]:
    """The keys whose sums changed: an account that stayed where it was cancels out."""
    return {key: sums for key, sums in deltas.items() if any(sums.values())}


def count_account(
    deltas: Deltas,
    where: tuple[str, ...],
    opened_day: date,
    closed_day: date | None,
    sign: int,
    counters: tuple[str, ...],
) -> None:
    """Add (sign 1) or take away (sign -1) one account's flows, at both grains."""
    days = {"opened": opened_day}
    if closed_day is not None:
        days |= {"closed": closed_day, "ended": max(opened_day, closed_day)}
    for counter, day in days.items():
        if counter in counters:
            deltas[("day", day, *where)][counter] += sign
            deltas[("month", day.replace(day=1), *where)][counter] += sign


def add_up(
    cur: Cursor[Any],
    table: str,
    keys: tuple[str, ...],
    counters: tuple[str, ...],
    sums: Mapping[Any, Mapping[str, Any]],
) -> None:
    """Add each key's sums to its row (made when missing), one upsert per key."""
    if not sums:
        return
    rows = [(*key, *(bucket.get(c, 0) for c in counters)) for key, bucket in sums.items()]
    columns = (*keys, *counters)
    updates = ", ".join(f"{c} = {table}.{c} + EXCLUDED.{c}" for c in counters)
    cur.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}".encode(),
        rows,
    )


def whole_months(start: date, end: date) -> tuple[date, date]:
    """The whole calendar months inside [start, end), as [first, last) month starts.

    None inside: (start, start), an empty span, so every day is read per day.
    """
    first = start if start.day == 1 else (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    last = end.replace(day=1)
    return (first, last) if first < last else (start, start)


# Rows of a per-grain table covering [start, end): whole months from the month
# rows, the other days from the day rows. Parameters: start, end, months_from, months_to.
SPAN = (
    "((grain = 'day' AND day >= %(start)s AND day < %(end)s"
    " AND (day < %(months_from)s OR day >= %(months_to)s))"
    " OR (grain = 'month' AND day >= %(months_from)s AND day < %(months_to)s))"
)
# Rows of a per-grain table covering every day before `{before}` (an SQL date):
# the months before its month, then the days of its month.
BEFORE = (
    "((grain = 'month' AND day < date_trunc('month', {before})::date)"
    " OR (grain = 'day' AND day >= date_trunc('month', {before})::date AND day < {before}))"
)


def span_params(start: date, end: date, months: bool = True) -> dict[str, date]:
    """SPAN's parameters; `months` False reads every day per day (a day or week bucket)."""
    months_from, months_to = whole_months(start, end) if months else (start, start)
    return {"start": start, "end": end, "months_from": months_from, "months_to": months_to}
