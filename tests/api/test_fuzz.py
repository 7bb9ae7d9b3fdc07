"""Schemathesis over the whole OpenAPI, with real tokens of three roles.

Every operation gets generated requests, valid and invalid, sent in process
(ASGI) to the real app over its own ledger on the test PostgreSQL; each is
sent with a token of customer_service, of auditor and of admin, and the
account routes are also sent to three accounts that exist. The run
fails on any server error and on any answer the document does not describe:
its status, its content type or its body's schema. It is bounded
(MAX_EXAMPLES per operation, no shrinking) to about two minutes, and reports
every operation that failed, each with a curl command that reproduces it.

The pytest plugin of schemathesis does not run under pytest 9 (it sets a
node id pytest no longer has), so the operations are driven through the
Python API with Hypothesis directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from tests.support import open_plain, own_ledger

ROLES = ("customer_service", "auditor", "admin")
MAX_EXAMPLES = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.mark.slow
def test_no_request_gets_a_server_error_or_an_undocumented_answer(
    token: Callable[..., str],
) -> None:
    tokens = {role: f"Bearer {token(role, sub=f'fuzz-{role}')}" for role in ROLES}
    failures: list[str] = []
    with own_ledger() as services:
        accounts = [str(open_plain(services.ledger, f"Fuzz {n}").id) for n in range(3)]
        schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(services))
        for result in schema.get_all_operations():
            operation = result.ok()
            strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
                GenerationMode.NEGATIVE
            )
            if "{account_id}" in operation.path:
                # Random ids only ever meet a 404: reach real accounts too.
                for account in accounts:
                    strategy |= operation.as_strategy(path_parameters={"account_id": account})

            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def fuzz(case: Any) -> None:
                for bearer in tokens.values():
                    case.call_and_validate(headers={"Authorization": bearer}, checks=CHECKS)

            try:
                fuzz()
            except (Exception, FailureGroup) as e:  # report each failing operation, go on
                failures.append(f"{operation.label}: {e}")
    assert not failures, "\n\n".join(failures)
