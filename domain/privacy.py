"""Personal data: the vault port that encrypts it, how it is masked and how it is searched.

The vault is a port: infra/keys.py implements it with a per-account AES-GCM key
wrapped by the master key. Destroying an account's key makes every copy of its
personal data unreadable (crypto-shredding) while events stay untouched.

Searching personal data goes through a blind index (another port, implemented
in infra/keys.py): a keyed token of each normalised search term, so the read
models never hold a searchable field in clear. Matching is exact on a whole
term after normalisation (`search_terms`): a name is found by any of its words
(NFKC, case-folded), an email by the whole address (trimmed, lower-cased), a
phone by all of its digits ("+852 9137 4682" by "85291374682" or "+852-9137-4682",
not by "9137 4682"). Substrings cannot be searched: a token reveals nothing of
its parts, which is the point.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Protocol
from uuid import UUID

# The personal fields the directory can be searched by.
SEARCHABLE_FIELDS = ("name", "email", "phone")

_WORD = re.compile(r"\w+")


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

    def holds(self, account_id: UUID) -> bool:
        """Whether the account's key is at hand without reading the store."""
        ...


class BlindIndex(Protocol):
    """Keyed tokens of personal search terms: equal terms give equal tokens, nothing else shows."""

    def tokens(self, field: str, value: str) -> tuple[bytes, ...]:
        """One token per normalised search term of the field's value (`search_terms`)."""
        ...


def search_terms(field: str, value: str) -> tuple[str, ...]:
    """The normalised terms a field's value is found by; the same function reads a query.

    A name gives its words (NFKC, case-folded, split on anything not a letter
    or digit), an email the address trimmed and lower-cased, a phone its digits
    (after NFKC, so full-width digits count), each without repeats. Any other
    field is not searchable and gives nothing.
    """
    if field == "name":
        folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())
        return tuple(dict.fromkeys(_WORD.findall(folded)))
    if field == "email":
        address = value.strip().lower()
        return (address,) if address else ()
    if field == "phone":
        digits = "".join(c for c in unicodedata.normalize("NFKC", value) if "0" <= c <= "9")
        return (digits,) if digits else ()
    return ()


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
