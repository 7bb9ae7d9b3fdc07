"""The small family of errors every command can end in.

Each error carries a short `code`: the API maps the class to an HTTP status
(api/errors.py) and the inbound consumer uses the code as the dead-letter reason.
"""

from __future__ import annotations

from uuid import UUID


class LedgerError(Exception):
    """Base of every refusal the ledger gives for a command or a query."""

    code = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidCommand(LedgerError):
    """The command's values break a rule (unknown segment, future time, bad amount)."""

    code = "invalid"


class NotFound(LedgerError):
    """What the query names does not exist."""

    code = "not_found"


class AccountNotFound(NotFound):
    """No account has this id."""

    code = "unknown_account"


class PositionNotFound(NotFound):
    """No event is stored at this position of the ledger."""

    code = "unknown_position"


class TreeSizeNotFound(NotFound):
    """The ledger's Merkle tree has not reached this size (yet)."""

    code = "unknown_tree_size"


class ConflictingState(LedgerError):
    """The account's state does not allow the command."""

    code = "conflict"


class AccountClosed(ConflictingState):
    """A closed account takes no command except erase."""

    code = "account_closed"


class DuplicateAccount(ConflictingState):
    """An account with this external_ref already exists."""

    code = "duplicate"


class StaleVersion(LedgerError):
    """The caller's expected version is not the account's current version."""

    code = "stale_version"


class LedgerIntegrityError(ConflictingState):
    """A stored event of the account cannot be read back: the account cannot be built.

    A conflict, not a server fault: the request is sound and the service is up,
    but the account's stored state (its history) forbids answering it; retrying
    does not help until an operator restores the event. It names the first event
    that cannot be read: the account, its version and its position in the ledger
    (None when the position could not be looked up).
    """

    code = "ledger_integrity"

    def __init__(self, detail: str, account_id: UUID, version: int, position: int | None) -> None:
        super().__init__(detail)
        self.account_id = account_id
        self.version = version
        self.position = position
        # The extra fields of its problem+json answer (api/errors.py adds `extra`).
        self.extra: dict[str, object] = {
            "account_id": str(account_id),
            "version": version,
            "position": position,
        }
