"""Schema-driven fuzzing of the served OpenAPI document (schemathesis), on both backends.

Every operation gets a bounded number of generated requests — valid ones aimed at real records,
and invalid ones (negative mode) at generated ids — sent as a caller whose role may use it. No
response may be a 5xx, and every response must match what the document says (status code, content
type, body schema). Runtime is bounded by EXAMPLES per operation and mode.
"""

from __future__ import annotations

import re
import uuid

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.permissions import action_for
from domain.permissions import AccessPolicy
from ledger.keys import LogKeys
from ledger.settings import Settings

EXAMPLES = {GenerationMode.POSITIVE: 4, GenerationMode.NEGATIVE: 3}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
POLICY = AccessPolicy.load()


def caller_for(app, operation, roles: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """(endpoint, test caller name) — a caller holding the widest scope for the operation's action."""
    path = re.sub(r"\{[a-z_]+\}", str(uuid.uuid4()), operation.path.replace("{kind}", "ticket"))
    endpoint, _ = app.url_map.bind("localhost").match(path, operation.method.upper())
    action = action_for(endpoint)
    ranked = sorted(roles, key=lambda n: ("all", "team", "own", None).index(POLICY.scope(roles[n][1], action)))
    return endpoint, ranked[0]


def test_fuzz_every_operation(app, api, records, env, roles):
    LogKeys.from_settings(Settings.from_environ(env)).init()  # a configured system: checkpoints can be signed
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= len([r for r in app.url_map.iter_rules()]) - 1  # every route is documented
    for operation in operations:
        endpoint, name = caller_for(app, operation, roles)
        headers = {"Authorization": f"Bearer {api.tokens[name]}"}
        kind = endpoint.split(".")[0].rstrip("s") if "aggregate_id" in operation.path else None
        for mode, examples in EXAMPLES.items():
            fixed = {}
            if mode is GenerationMode.POSITIVE and "{aggregate_id}" in operation.path:
                fixed = {"aggregate_id": records.get(kind, records["ticket"])}
                if "{kind}" in operation.path:
                    fixed["kind"] = "ticket"
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed or None)

            @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=strategy)
            def run(case) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                run()
            except BaseExceptionGroup as e:  # schemathesis's FailureGroup: collect them all, then report
                failures.append(f"{operation.method.upper()} {operation.path} as {name} ({mode.value}):\n{e}"[:3000])
    assert not failures, "\n\n".join(failures)
