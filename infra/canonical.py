"""The canonical JSON of event hashes, through orjson.

domain/integrity.py defines the canonical form with the standard library
(sorted keys, no spaces, UTF-8) and hashes through a port; the wiring installs
this encoder there, which gives the same bytes several times faster (a test
holds the two together). The rare text orjson refuses (a lone surrogate, which
UTF-8 cannot carry) takes the definition's path.
"""

from __future__ import annotations

import orjson

from domain.integrity import json_default, standard_canonical_json, use_canonical_json

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def orjson_canonical_json(value: object) -> bytes:
    """standard_canonical_json's bytes, from orjson when it can encode the value."""
    try:
        return orjson.dumps(value, option=_OPTIONS, default=json_default)
    except orjson.JSONEncodeError:
        return standard_canonical_json(value)


def install() -> None:
    """Make the domain hash through orjson (the same bytes, faster)."""
    use_canonical_json(orjson_canonical_json)
