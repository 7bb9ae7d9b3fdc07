"""The ledger's Kafka topics, and creating them when they are missing."""

from __future__ import annotations

import logging

from kafka import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from infra.settings import Settings

log = logging.getLogger(__name__)

ACCOUNT_EVENTS = "crmledger.account-events"
INTEGRATION_EVENTS = "crmledger.integration-events"
INTEGRATION_DLQ = "crmledger.integration-events.dlq"
# The Merkle tree's signed checkpoints (infra/checkpoint_publisher.py).
CHECKPOINTS = "crmledger.checkpoints"
ALL_TOPICS = (ACCOUNT_EVENTS, INTEGRATION_EVENTS, INTEGRATION_DLQ, CHECKPOINTS)

# Content type of a CloudEvent in structured JSON mode, sent as a message header.
CLOUDEVENTS_JSON = b"application/cloudevents+json"


def ensure_topics(bootstrap: str, settings: Settings) -> list[str]:
    """Create whichever of the ledger's topics are missing; return the ones created.

    Existing topics are left as they are (their partition count included), and a
    topic another process creates at the same moment counts as existing.
    """
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="crmledger-admin")
    try:
        existing = set(admin.list_topics())
        created = []
        for topic in ALL_TOPICS:
            if topic in existing:
                continue
            spec = {
                "num_partitions": settings.kafka_partitions,
                "replication_factor": settings.kafka_replication_factor,
            }
            try:
                # One topic per request: a request fails as a whole when any
                # of its topics exists.
                admin.create_topics({topic: spec}, wait_for_metadata=True)
            except TopicAlreadyExistsError:
                continue
            created.append(topic)
            log.info("created Kafka topic %s with %d partitions", topic, spec["num_partitions"])
        return created
    finally:
        admin.close()
