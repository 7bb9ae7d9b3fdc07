"""Personal data: the vault port that encrypts it, and how it is masked.

The vault is a port: infra/keys.py implements it with a per-account AES-GCM key
wrapped by the master key. Destroying an account's key makes every copy of its
personal data unreadable (crypto-shredding) while events stay untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol
from uuid import UUID


class PersonalDataVault(Protocol):
    """Encrypts and decrypts an account's personal fields with that account's key."""

    def encrypt(self, account_id: UUID, fields: Mapping[str, str]) -> dict[str, str]:
        """Ciphertext of each field, creating the account's key if it has none."""
        ...

    def decrypt(self, account_id: UUID, fields: Mapping[str, str]) -> dict[str, str] | None:
        """Clear text of each field, or None once the account's key is destroyed."""
        ...

    def destroy(self, account_id: UUID) -> None:
        """Destroy the account's key for good; doing it twice is harmless."""
        ...


def mask(field: str, value: str) -> str:
    """Mask one personal field for a reader who may not see it in full."""
    if field == "email" and "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    if field in ("phone", "id_document"):
        return "****" + value[-4:] if len(value) > 4 else "****"
    if field == "name":
        return " ".join(part[:1] + "***" for part in value.split())
    return "****"


def mask_all(fields: Mapping[str, str]) -> dict[str, str]:
    """Mask every field of a customer record."""
    return {k: mask(k, v) for k, v in fields.items()}
