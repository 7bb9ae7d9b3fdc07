"""Blind-index tokens: normalised search terms, keyed by a key derived from the master key."""

from __future__ import annotations

import os

from domain.privacy import search_terms
from infra.keys import HmacBlindIndex, blind_index_key


def test_search_terms_are_whole_normalised_words_addresses_and_digits() -> None:
    assert search_terms("name", " Zebulon  QUIXOTICA-Straße ") == (
        "zebulon",
        "quixotica",
        "strasse",
    )
    assert search_terms("name", "\uff3a\uff45\uff42\uff55\uff4c\uff4f\uff4e zebulon") == (
        "zebulon",
    )  # NFKC, no repeats
    assert search_terms("name", "陳大文") == ("陳大文",)
    assert search_terms("email", "  ZQ.Unique@Example.ORG ") == ("zq.unique@example.org",)
    assert search_terms("phone", "+852 9137-4682") == ("85291374682",)
    assert search_terms("phone", "\uff19\uff11\uff13\uff17 \uff14\uff16\uff18\uff12") == (
        "91374682",
    )  # full-width digits
    assert search_terms("phone", "n/a") == search_terms("email", " ") == ()
    assert search_terms("address", "1 Queen's Road") == ()  # not searchable


def test_tokens_are_keyed_by_the_master_key_and_the_field() -> None:
    master = os.urandom(32)
    key = blind_index_key(master)
    assert len(key) == 32 and key != master and key == blind_index_key(master)
    index, same = HmacBlindIndex(key), HmacBlindIndex(blind_index_key(master))
    other = HmacBlindIndex(blind_index_key(os.urandom(32)))

    tokens = index.tokens("name", "Zebulon Quixotica")
    assert len(tokens) == 2 and all(len(t) == 16 for t in tokens)
    assert same.tokens("name", "quixotica ZEBULON") == tokens[::-1]
    assert set(other.tokens("name", "Zebulon Quixotica")).isdisjoint(tokens)
    # The same text as another field gives another token.
    assert index.tokens("email", "zebulon") != index.tokens("name", "zebulon")
    assert index.tokens("phone", "+852 9137 4682") == index.tokens("phone", "85291374682")
    assert b"zebulon" not in b"".join(tokens)
