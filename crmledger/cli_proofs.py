"""`crmledger audit proof` and `audit check`: an auditor's proofs, without the database.

`proof` fetches an event, its inclusion proof and the signed checkpoint over
the service's HTTP API into one bundle file; `check` checks a bundle offline,
or two kept checkpoints with a consistency proof it fetches, trusting only the
verifier key given (infra/proof_bundle.py). Exit 0 when every check holds, 1
when one fails (each named), 2 on a usage error or a service it cannot ask.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pydantic import ValidationError

from crmledger.cli_support import fail
from infra.proof_bundle import (
    NotABundle,
    check_bundle,
    check_consistency,
    make_bundle,
    read_bundle,
)
from infra.settings import Settings
from infra.signed_note import BadVerifierKey, NoteError, parse_verifier_key, peek_checkpoint

Url = Annotated[
    str | None,
    typer.Option(help="the service's base URL; default http://CRMLEDGER_HOST:CRMLEDGER_PORT"),
]
Token = Annotated[
    str | None, typer.Option(envvar="CRMLEDGER_TOKEN", help="a bearer token of an auditor")
]
VerifierKey = Annotated[
    str, typer.Option(help="the verifier key line you trust (GET /v1/audit/verifier-key)")
]
File = typer.Argument(exists=True, dir_okay=False, help="a bundle written by `audit proof`")


def audit_proof(
    position: Annotated[int, typer.Option(min=1, help="the event's position in the ledger")],
    out: Annotated[Path, typer.Option(dir_okay=False, help="the bundle file to write")],
    tree_size: Annotated[
        int | None,
        typer.Option(min=1, help="prove against this kept checkpoint; default the latest"),
    ] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Write a proof bundle: the event as stored, its inclusion proof, the signed checkpoint."""
    with _service(url, token) as api:
        if tree_size is None:
            note = _get(api, "/v1/audit/checkpoint").text
            try:
                tree_size = peek_checkpoint(note).size
            except NoteError as e:
                fail(f"the service's latest checkpoint is not one: {e}")
        else:
            note = _get(api, "/v1/audit/checkpoint", tree_size=tree_size).text
        proof = _get(api, "/v1/audit/proofs/inclusion", position=position, tree_size=tree_size)
    out.write_text(json.dumps(make_bundle(_json(proof), note), indent=2, ensure_ascii=False))
    typer.echo(f"wrote the proof of position {position} in the tree of {tree_size} to {out}")


def audit_check(
    verifier_key: VerifierKey,
    bundle: Annotated[Path | None, File] = None,
    consistency: Annotated[
        tuple[Path, Path] | None,
        typer.Option(help="OLD NEW: two kept checkpoint files; fetch and check their proof"),
    ] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Check a proof bundle offline, or that a newer checkpoint only extends an older one."""
    if (bundle is None) == (consistency is None):
        fail("give a bundle FILE, or --consistency OLD NEW (one of them)")
    try:
        parse_verifier_key(verifier_key)
    except BadVerifierKey as e:
        fail(f"--verifier-key is not a verifier key: {e}")
    if bundle is not None:
        try:
            findings = check_bundle(read_bundle(_read(bundle)), verifier_key)
        except NotABundle as e:
            fail(f"{bundle} is not a proof bundle: {e}")
    else:
        assert consistency is not None
        old, new = (_read(path) for path in consistency)
        findings = check_consistency(
            old, new, _consistency_proof(old, new, url, token), verifier_key
        )
    for finding in findings:
        typer.echo(f"{'ok' if finding.ok else 'FAILED'}: {finding.message}")
    if not all(f.ok for f in findings):
        raise typer.Exit(1)


def _consistency_proof(old: str, new: str, url: str | None, token: str | None) -> Any:
    """The service's proof between the two sizes, or None when none is needed or possible.

    Sizes are only peeked at to choose what to ask: check_consistency opens
    both notes, and a note that is not a checkpoint fails there, by name.
    """
    try:
        first, second = peek_checkpoint(old).size, peek_checkpoint(new).size
    except NoteError:
        return None
    if not 0 < first < second:
        return None
    with _service(url, token) as api:
        return _json(_get(api, "/v1/audit/proofs/consistency", first=first, second=second))


@contextmanager
def _service(url: str | None, token: str | None) -> Iterator[httpx.Client]:
    if url is None:
        try:
            settings = Settings()
        except ValidationError as e:
            fail(f"give --url: the settings do not load ({e.errors()[0]['msg']})")
        url = f"http://{settings.host}:{settings.port}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        yield client


def _get(api: httpx.Client, path: str, **params: int) -> httpx.Response:
    """GET a route; exit 2 when the service cannot be reached or does not answer 200."""
    try:
        response = api.get(path, params=params)
    except httpx.HTTPError as e:
        fail(f"cannot ask {api.base_url}: {e}")
    if response.status_code != 200:
        fail(f"{path} answered {response.status_code}: {_detail(response)}")
    return response


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        fail(f"{response.url.path} did not answer JSON")


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail") or response.text)
    except (ValueError, AttributeError):
        return response.text[:200]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        fail(f"cannot read {path}: {e}")
