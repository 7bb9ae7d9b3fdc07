"""The embedded broker and the ledger's topics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kafka import KafkaAdminClient

from infra.broker import (
    consumer_session_timeout_ms,
    embedded_broker,
    kafka_bootstrap,
    stop_embedded_broker,
)
from infra.settings import Settings
from infra.topics import ALL_TOPICS, ensure_topics
from tests.kafka.conftest import Stack
from tests.support import make_settings

ROOT = Path(__file__).resolve().parents[2]


def test_a_configured_bootstrap_is_used_as_given(tmp_path: Path) -> None:
    settings = Settings(kafka_bootstrap="kafka-1:9092,kafka-2:9092", home=tmp_path)
    assert kafka_bootstrap(settings) == "kafka-1:9092,kafka-2:9092"
    assert not (tmp_path / "kafka-bootstrap").exists()


def test_the_embedded_broker_writes_its_address_and_stops(tmp_path: Path) -> None:
    broker = embedded_broker(tmp_path)
    assert broker.process is not None
    assert (tmp_path / "kafka-bootstrap").read_text().strip() == broker.bootstrap
    assert broker.bootstrap.startswith("127.0.0.1:")
    assert embedded_broker(tmp_path) is broker  # one per home and process

    stop_embedded_broker(tmp_path)

    assert broker.process is None
    assert not (tmp_path / "kafka-bootstrap").exists()


def test_a_second_process_joins_the_running_embedded_broker(tmp_path: Path) -> None:
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from infra.broker import embedded_broker;"
            f" print(embedded_broker(Path({str(tmp_path)!r})).bootstrap, flush=True);"
            " sys.stdin.read()",
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        address = owner.stdout.readline().strip()
        joined = embedded_broker(tmp_path)
        assert joined.bootstrap == address
        assert joined.process is None
        stop_embedded_broker(tmp_path)  # not ours: it keeps running
        assert embedded_broker(tmp_path).bootstrap == address
    finally:
        assert owner.stdin is not None
        owner.stdin.close()  # the owner exits and stops its broker
        owner.wait(10)
    stop_embedded_broker(tmp_path)
    assert not (tmp_path / "kafka-bootstrap").exists()


def test_topics_are_created_once_with_the_configured_partitions(stack: Stack) -> None:
    # The stack fixture created them already, with kafka_partitions=3.
    assert ensure_topics(stack.bootstrap, stack.settings) == []
    admin = KafkaAdminClient(bootstrap_servers=stack.bootstrap)
    try:
        described = admin.describe_topics(list(ALL_TOPICS))
    finally:
        admin.close()
    assert {t["name"]: len(t["partitions"]) for t in described} == dict.fromkeys(ALL_TOPICS, 3)


def test_consumers_use_a_short_session_on_the_embedded_broker_unless_configured() -> None:
    assert consumer_session_timeout_ms(make_settings()) == 6000
    cluster = make_settings(kafka_bootstrap="kafka:9092")
    assert consumer_session_timeout_ms(cluster) == 45000
    tuned = make_settings(kafka_bootstrap="kafka:9092", kafka_session_timeout_ms=8000)
    assert consumer_session_timeout_ms(tuned) == 8000
