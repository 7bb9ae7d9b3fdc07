"""The directory's keys: blind-index tokens of normalised terms, account keys read by the page."""

from __future__ import annotations

import os

import pytest
from psycopg_pool import ConnectionPool, PoolClosed

from domain.privacy import search_terms
from infra.keys import HmacBlindIndex, PostgresKeyVault, blind_index_key
from infra.secrets import master_key
from infra.wiring import Services
from tests.support import open_plain


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


def test_a_page_of_the_directory_reads_its_account_keys_in_one_go(services: Services) -> None:
    accounts = [open_plain(services.ledger, f"Prefetch {i}") for i in range(3)]
    erased, other = open_plain(services.ledger, "Erased"), open_plain(services.ledger, "Other")
    services.ledger.erase(erased.id, "request", erased.opened_at, {"actor": "t"})
    options = {"options": f"-c search_path={services.settings.database_schema}"}
    with ConnectionPool(services.database_url, kwargs=options, min_size=1, open=True) as pool:
        vault = PostgresKeyVault(pool, master_key(services.settings))
        vault.prefetch([*(a.id for a in accounts), erased.id])
    # With the pool closed, only the keys read before can decrypt.
    for i, account in enumerate(accounts):
        assert vault.decrypt(account.id, account.customer) == {"name": f"Prefetch {i}"}
    assert vault.decrypt(erased.id, erased.customer) is None  # read as destroyed, and kept so
    with pytest.raises(PoolClosed):
        vault.decrypt(other.id, other.customer)


def test_keys_asked_for_again_are_kept_before_older_ones(services: Services) -> None:
    a, b, c, d = (open_plain(services.ledger, f"Recent {i}").id for i in range(4))
    vault = PostgresKeyVault(services.pool, master_key(services.settings), cache_size=3)
    for key in (a, b, c):  # one at a time: one query's rows come in no set order
        vault.prefetch([key])
    vault.prefetch([a, d])  # a is about to be used: b, the least recently used, goes
    assert list(vault._cache) == [c, a, d]
