"""C2SP signed notes and tlog checkpoints with Ed25519: what an auditor keeps and checks.

A checkpoint is the note text `<origin>\\n<tree size>\\n<base64 root>\\n`, signed
under a key named for the origin; the note's signature lines are
`— <name> <base64(key hash || signature)>`. The formats are those of
c2sp.org/signed-note and c2sp.org/tlog-checkpoint (golang.org/x/mod/sumdb/note
writes the same bytes), so any tool of the transparency-log ecosystem can check
the ledger's checkpoints. Every refusal is a NoteError naming what failed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALG_ED25519 = b"\x01"
SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space begin every signature line
MAX_SIGNATURES = 100  # as golang.org/x/mod/sumdb/note: more is a malformed note

_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
_SIZE = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head: the log's origin, its size in leaves, and its root hash."""

    origin: str
    size: int
    root: bytes


@dataclass(frozen=True)
class Verifier:
    """A note verifier key: its name, its 4-byte key hash and its Ed25519 public key."""

    name: str
    key_hash: bytes
    public_key: Ed25519PublicKey

    @property
    def key_id(self) -> str:
        return f"{self.name}+{self.key_hash.hex()}"


def signing_key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    """The Ed25519 private key of a 32-byte seed (what CRMLEDGER_SIGNING_KEY holds, decoded)."""
    if len(seed) != 32:
        raise ValueError(f"an Ed25519 seed is 32 bytes, not {len(seed)}")
    return Ed25519PrivateKey.from_private_bytes(seed)


def key_hash(name: str, public_key: Ed25519PublicKey | bytes) -> bytes:
    """The first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key)."""
    return hashlib.sha256(f"{name}\n".encode() + ALG_ED25519 + _raw(public_key)).digest()[:4]


def verifier_key(name: str, public_key: Ed25519PublicKey | bytes) -> str:
    """The verifier key line `<name>+<8 hex key hash>+<base64(0x01 || public key)>`."""
    _check_name(name)
    encoded = base64.b64encode(ALG_ED25519 + _raw(public_key)).decode()
    return f"{name}+{key_hash(name, public_key).hex()}+{encoded}"


def parse_verifier_key(line: str) -> Verifier:
    """The verifier a key line names; BadVerifierKey when it is not a well-formed Ed25519 key."""
    parts = line.strip().split("+", 2)
    if len(parts) != 3:
        raise BadVerifierKey("a verifier key is <name>+<key hash>+<key>")
    name, hash_hex, encoded = parts
    if not _valid_name(name) or not re.fullmatch(r"[0-9a-f]{8}", hash_hex):
        raise BadVerifierKey("the verifier key's name or key hash is malformed")
    key = _b64(encoded, BadVerifierKey("the verifier key is not base64"))
    if len(key) != 33 or key[:1] != ALG_ED25519:
        raise BadVerifierKey("the verifier key is not an Ed25519 key")
    if key_hash(name, key[1:]) != bytes.fromhex(hash_hex):
        raise BadVerifierKey("the verifier key's hash does not match its name and key")
    return Verifier(name, bytes.fromhex(hash_hex), Ed25519PublicKey.from_public_bytes(key[1:]))


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """The signed note: the text, a blank line and one signature line by `name`."""
    _check_name(name)
    _check_text(text)
    public = private_key.public_key()
    blob = key_hash(name, public) + private_key.sign(text.encode())
    return f"{text}\n{SIGNATURE_PREFIX}{name} {base64.b64encode(blob).decode()}\n"


def open_note(note: str, verifier: Verifier) -> str:
    """The text of a note signed by `verifier`'s key.

    Signatures by other keys are ignored (a note may carry cosignatures); one
    by this key that does not verify is refused, and so is a note without one.
    """
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNote("a signed note is its text, a blank line, then signature lines")
    text, lines = note[: split + 1], note[split + 2 :]
    _check_text(text)
    if not lines.endswith("\n"):
        raise MalformedNote("the note's signature lines do not end with a newline")
    signatures = lines[:-1].split("\n")
    if len(signatures) > MAX_SIGNATURES:
        raise MalformedNote(f"the note has more than {MAX_SIGNATURES} signatures")
    signers, verified = [], False
    for line in signatures:
        name, blob = _signature(line)
        signers.append(f"{name}+{blob[:4].hex()}")
        if name != verifier.name or blob[:4] != verifier.key_hash:
            continue
        try:
            verifier.public_key.verify(blob[4:], text.encode())
        except InvalidSignature:
            raise BadSignature(f"invalid signature for key {verifier.key_id}") from None
        verified = True
    if not verified:
        raise UnknownKey(
            f"the note has no signature by key {verifier.key_id} (signed by {', '.join(signers)})"
        )
    return text


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    """The tlog-checkpoint note text of a tree head."""
    _check_name(origin)
    if size < 0 or len(root) != 32:
        raise ValueError("a checkpoint has a tree size of 0 or more and a 32-byte root")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def sign_checkpoint(origin: str, size: int, root: bytes, private_key: Ed25519PrivateKey) -> str:
    """The whole signed checkpoint note, signed under a key named for the origin."""
    return sign_note(checkpoint_text(origin, size, root), origin, private_key)


def parse_checkpoint(text: str) -> Checkpoint:
    """The tree head a checkpoint's note text states (extension lines are ignored)."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or "" in lines[:-1]:
        raise MalformedNote("a checkpoint is origin, tree size and root hash, one a line")
    origin, size, encoded = lines[:3]
    if not _SIZE.fullmatch(size):
        raise MalformedNote(f"the checkpoint's tree size {size!r} is not a decimal number")
    root = _b64(encoded, MalformedNote("the checkpoint's root hash is not base64"))
    if len(root) != 32:
        raise MalformedNote("the checkpoint's root hash is not 32 bytes")
    return Checkpoint(origin, int(size), root)


def peek_checkpoint(note: str) -> Checkpoint:
    """The tree head a signed note states, its signatures NOT checked: only to choose what to ask.

    Never trust what it returns before open_checkpoint has checked the note.
    """
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNote("a signed note is its text, a blank line, then signature lines")
    return parse_checkpoint(note[: split + 1])


def open_checkpoint(note: str, verifier_key_line: str) -> Checkpoint:
    """The checkpoint a note holds, once its signature by the verifier key holds.

    The key's name must be the checkpoint's origin: a key signs only its own log.
    """
    verifier = parse_verifier_key(verifier_key_line)
    checkpoint = parse_checkpoint(open_note(note, verifier))
    if checkpoint.origin != verifier.name:
        raise UnknownKey(
            f"the checkpoint's origin {checkpoint.origin!r} is not the key's name {verifier.name!r}"
        )
    return checkpoint


class NoteError(ValueError):
    """A note, checkpoint or verifier key refused: the message says what failed."""


class MalformedNote(NoteError):
    """The text is not a signed note or not a checkpoint."""


class BadVerifierKey(NoteError):
    """The verifier key line is not a well-formed Ed25519 note key."""


class UnknownKey(NoteError):
    """The note carries no signature by the verifier key (or names another log)."""


class BadSignature(NoteError):
    """The note's signature by the verifier key does not verify: the text was changed."""


def _signature(line: str) -> tuple[str, bytes]:
    if not line.startswith(SIGNATURE_PREFIX):
        raise MalformedNote(f"{line[:40]!r} is not a signature line")
    name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not _valid_name(name):
        raise MalformedNote(f"the signature line's key name {name!r} is malformed")
    blob = _b64(encoded, MalformedNote(f"the signature by {name} is not base64"))
    if len(blob) < 5:
        raise MalformedNote(f"the signature by {name} is too short")
    return name, blob


def _check_text(text: str) -> None:
    if not text.endswith("\n") or _CONTROL.search(text):
        raise MalformedNote("a note's text ends with a newline and holds no control characters")


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def _check_name(name: str) -> None:
    if not _valid_name(name):
        raise ValueError(f"a key name is not empty and holds no '+' nor space: {name!r}")


def _b64(encoded: str, error: NoteError) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise error from None


def _raw(public_key: Ed25519PublicKey | bytes) -> bytes:
    if isinstance(public_key, bytes):
        return public_key
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
