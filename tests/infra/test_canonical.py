"""The infra side of the hash chain: orjson's canonical JSON and the stored-state decoder."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import uuid4

from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, UUIDAsHex

from domain.activities import Purchase, apply_activity
from domain.integrity import StoredRecord, json_default, standard_canonical_json, verify_records
from infra.canonical import orjson_canonical_json
from infra.event_store import plain_state
from tests.domain.test_integrity import account_with_three_events

NOW = datetime.now(UTC)


def test_the_fast_canonical_json_is_the_standard_librarys() -> None:
    tricky = {
        "text": 'é\u2028\x00\x1f\x7f"\\/\n\t\r\b\f😀 中文',
        "nested": [1, True, None, {"z": 1, "y": Decimal("1.10"), "ü": "x"}],
        "utc": datetime(2026, 1, 1, tzinfo=UTC),
        "offset": datetime(2026, 1, 1, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=8))),
        "id": uuid4(),
        "big": 2**62,
        "surrogate": "\ud800",
    }
    for value in (tricky, {k: v for k, v in tricky.items() if k != "surrogate"}):
        expected = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=json_default
        ).encode("utf-8", "surrogatepass")
        assert orjson_canonical_json(value) == expected
        assert standard_canonical_json(value) == expected


def test_hashing_the_plain_stored_state_gives_the_events_hash() -> None:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    account = account_with_three_events()
    purchase = Purchase(Decimal("12.50"), Decimal("3"), "HKD", "central")
    apply_activity(account, purchase, NOW, {"a": 1})
    records = []
    for event in account.collect_events():
        state = dict(vars(event))
        del state["originator_id"], state["originator_version"]
        plain = plain_state(transcoder.encode(state))
        records.append(
            StoredRecord(
                event.originator_version,
                account.id,
                event.originator_version,
                type(event).__name__,
                plain,
            )
        )
    assert verify_records(records).ok
