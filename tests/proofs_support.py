"""Bring the Merkle tree and its checkpoints up to date on demand, as the notary would.

Tests and features run no background role: they call the notary's own steps
(infra/notary.py) when a scenario needs the tree to hold what was stored.
"""

from __future__ import annotations

from infra.notary import Notary
from infra.wiring import Services


def notarise(services: Services) -> int | None:
    """Append every stored event to the tree and sign a checkpoint of it when it grew.

    Returns the tree size signed, or None when the latest checkpoint already covers it.
    """
    notary = Notary(services, checkpoint_s=0)
    notary.catch_up()
    return notary.checkpoint_if_due()


def rebuild_tree(services: Services) -> None:
    """Throw the tree away and build it again from the stored events (kept checkpoints stay).

    What a forger with the database would do after rewriting events, so that the
    tree agrees with them.
    """
    schema = services.settings.database_schema
    with services.pool.connection() as conn:
        conn.execute(f"DELETE FROM {schema}.merkle_nodes".encode())
        conn.execute(f"DELETE FROM {schema}.merkle_leaves".encode())
        conn.execute(f"UPDATE {schema}.merkle_head SET tree_size = 0, position = 0".encode())
    Notary(services).catch_up()
