"""Signed notes and checkpoints: the Go sumdb note vectors byte for byte, and every refusal."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.signed_note import (
    BadSignature,
    BadVerifierKey,
    Checkpoint,
    MalformedNote,
    UnknownKey,
    checkpoint_text,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
    sign_checkpoint,
    sign_note,
    signing_key_from_seed,
    verifier_key,
)

# golang.org/x/mod/sumdb/note's note_test.go: the key pair, the text, the signatures.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngo"
    "tpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwn"
    "WLox33WWd1RvMc+QQ=\n"
)
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"

ORIGIN = "crmledger/test"
ROOT = hashlib.sha256(b"a root").digest()


def go_private_key() -> Ed25519PrivateKey:
    encoded = GO_SKEY.split("+", 4)[4]
    raw = base64.b64decode(encoded)
    assert raw[0] == 1, "0x01 names Ed25519"
    return signing_key_from_seed(raw[1:])


KEY = signing_key_from_seed(bytes(range(32)))
VKEY = verifier_key(ORIGIN, KEY.public_key())


def test_signing_the_go_text_gives_the_go_signature_byte_for_byte() -> None:
    note = sign_note(GO_TEXT, "PeterNeumann", go_private_key())
    assert note == GO_TEXT + "\n" + PETER_SIG


def test_the_verifier_key_line_is_the_go_one() -> None:
    assert verifier_key("PeterNeumann", go_private_key().public_key()) == GO_VKEY
    verifier = parse_verifier_key(GO_VKEY)
    assert verifier.name == "PeterNeumann" and verifier.key_hash.hex() == "c74f20a3"


def test_opening_the_go_note_ignores_a_cosignature_by_another_key() -> None:
    peter = parse_verifier_key(GO_VKEY)
    assert open_note(GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG, peter) == GO_TEXT
    enoch = parse_verifier_key(ENOCH_VKEY)
    assert open_note(GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG, enoch) == GO_TEXT


def test_a_note_without_a_signature_by_the_key_is_refused_as_unknown_key() -> None:
    with pytest.raises(UnknownKey, match=r"no signature by key PeterNeumann\+c74f20a3"):
        open_note(GO_TEXT + "\n" + ENOCH_SIG, parse_verifier_key(GO_VKEY))


def test_a_mangled_signature_is_refused_as_invalid() -> None:
    mangled = GO_TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(BadSignature, match=r"invalid signature for key PeterNeumann\+c74f20a3"):
        open_note(mangled, parse_verifier_key(GO_VKEY))


def test_a_changed_text_fails_its_signature() -> None:
    changed = (GO_TEXT + "\n" + PETER_SIG).replace("cryptography", "cryptographY")
    with pytest.raises(BadSignature):
        open_note(changed, parse_verifier_key(GO_VKEY))


@pytest.mark.parametrize(
    "note",
    [
        GO_TEXT,
        GO_TEXT + "\n",
        GO_TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + GO_TEXT + "\n" + PETER_SIG,
        GO_TEXT
        + "\n"
        + "\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2"
        "pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
        GO_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        GO_TEXT + "\n" + "\u2014 PeterNeumann x08go/Z!\n",
        GO_TEXT + "\n" + "\u2014 PeterNeumann AAAA\n",
        GO_TEXT + "\n" + PETER_SIG * 101,
    ],
)
def test_malformed_notes_are_refused(note: str) -> None:
    with pytest.raises(MalformedNote):
        open_note(note, parse_verifier_key(GO_VKEY))


def test_every_mangling_of_the_verifier_key_is_refused() -> None:
    b = GO_VKEY
    mangled = {b[i:j] for i in range(len(b)) for j in range(i + 1, len(b) + 1)} - {b}
    mangled |= {b[:i] + chr(ord(b[i]) + 1) + b[i + 1 :] for i in range(len(b))}
    mangled.add("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    mangled.add("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    for k in mangled:
        with pytest.raises(BadVerifierKey):
            parse_verifier_key(k)


def test_a_checkpoint_signed_then_opened_gives_its_tree_head() -> None:
    note = sign_checkpoint(ORIGIN, 12345, ROOT, KEY)
    body = f"{ORIGIN}\n12345\n{base64.b64encode(ROOT).decode()}\n"
    assert note.startswith(body + "\n\u2014 crmledger/test ")
    assert note == sign_checkpoint(ORIGIN, 12345, ROOT, KEY), "Ed25519 is deterministic"
    assert open_checkpoint(note, VKEY) == Checkpoint(ORIGIN, 12345, ROOT)
    assert VKEY.startswith(f"{ORIGIN}+") and parse_verifier_key(VKEY).name == ORIGIN


def test_the_c2sp_example_checkpoint_parses() -> None:
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    checkpoint = parse_checkpoint(text)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert parse_checkpoint(text + "an extension line\n") == checkpoint


@pytest.mark.parametrize(
    ("old", "new"), [("\n12345\n", "\n12346\n"), ("crmledger/test\n", "crmledger/tesT\n")]
)
def test_a_checkpoint_whose_size_or_origin_was_changed_fails_its_signature(
    old: str, new: str
) -> None:
    note = sign_checkpoint(ORIGIN, 12345, ROOT, KEY).replace(old, new, 1)
    with pytest.raises(BadSignature):
        open_checkpoint(note, VKEY)


def test_a_checkpoint_whose_root_was_changed_fails_its_signature() -> None:
    other = base64.b64encode(hashlib.sha256(b"another root").digest()).decode()
    note = sign_checkpoint(ORIGIN, 1, ROOT, KEY).replace(base64.b64encode(ROOT).decode(), other)
    with pytest.raises(BadSignature):
        open_checkpoint(note, VKEY)


def test_a_checkpoint_signed_by_another_key_is_refused_as_unknown_key() -> None:
    other = signing_key_from_seed(b"\x07" * 32)
    with pytest.raises(UnknownKey):
        open_checkpoint(sign_checkpoint(ORIGIN, 1, ROOT, other), VKEY)


def test_a_checkpoint_of_another_log_is_refused_even_when_its_key_signed_it() -> None:
    note = sign_note(checkpoint_text("crmledger/other", 1, ROOT), ORIGIN, KEY)
    with pytest.raises(UnknownKey, match="origin 'crmledger/other' is not the key's name"):
        open_checkpoint(note, VKEY)


@pytest.mark.parametrize(
    "text",
    [
        f"{ORIGIN}\n007\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n-1\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n7\n{base64.b64encode(ROOT[:31]).decode()}\n",
        f"{ORIGIN}\n7\nnot base64!\n",
        f"{ORIGIN}\n7\n",
    ],
)
def test_a_signed_note_that_is_not_a_checkpoint_is_refused_as_malformed(text: str) -> None:
    with pytest.raises(MalformedNote):
        open_checkpoint(sign_note(text, ORIGIN, KEY), VKEY)


def test_names_and_seeds_that_cannot_sign_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        signing_key_from_seed(b"short")
    for name in ("", "a+b", "a b"):
        with pytest.raises(ValueError, match="key name"):
            sign_checkpoint(name, 1, ROOT, KEY)
    with pytest.raises(ValueError, match="32-byte root"):
        sign_checkpoint(ORIGIN, 1, ROOT[:8], KEY)
