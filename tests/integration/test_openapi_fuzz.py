"""Schemathesis against the served OpenAPI document: no input makes a 5xx, every answer is declared.

A bounded, seeded run (the same cases every time) for `make test`: every operation the app
declares is a case of its own (enrolled from the app, so a route added later is fuzzed
too), with valid and invalid inputs. `make fuzz` runs the same test with far more cases
(`FUZZ_EXAMPLES`, default 300 there) from a random seed, which a failure prints.

Schemathesis's own pytest plugin does not run on pytest 9 (it renames nodes through a
private attribute that is gone), so each operation's strategy is drawn with Hypothesis here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from server.app import create_app
from server.settings import Settings
from tests.fakes.server_thread import ServedApp

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
"""Cases per operation and generation mode: 8 in `make test`, `make fuzz` sets more."""

SEEDED = "FUZZ_EXAMPLES" not in os.environ
"""`make test` draws the same cases every run; `make fuzz` new ones each time."""

NOT_CHECKED = [positive_data_acceptance]
"""Every other check of schemathesis runs. This one wants every input the document allows
accepted, and the document cannot say every rule a request must keep: rules across fields
(`tool_choice` names one of `tools`; a document id appears once in a batch) and rules of the
service's state (a model alias that is configured). Such a request gets a 400 that says
which rule, and the 400 is declared."""


def _settings(data: Path) -> Settings:
    """The embedded defaults: no keys, the offline model, SQLite, no Redis."""
    return Settings(
        _env_file=None,
        sqlite_path=data / "checkpoints.sqlite",
        knowledge_path=data / "knowledge.sqlite",
        load_plugin_tools=False,
        database_url=None,
        redis_url=None,
    )


def _constrained(schema: dict[str, object]) -> bool:
    return schema.get("type") != "string" or len(schema) > 2  # more than type (and title)


def _cases() -> list[tuple[str, str, GenerationMode]]:
    """(method, path, mode) of every operation the app declares (building it does no I/O).

    Invalid inputs only where there is an input to get wrong: a body, or a parameter with a
    type or a constraint (any string is a valid path segment).
    """
    document = create_app(_settings(Path("unused"))).openapi()
    cases = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            cases.append((method.upper(), path, GenerationMode.POSITIVE))
            if operation.get("requestBody") or any(
                _constrained(parameter.get("schema", {}))
                for parameter in operation.get("parameters", ())
            ):
                cases.append((method.upper(), path, GenerationMode.NEGATIVE))
    return cases


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    """The served document, loaded from a service of the module's own."""
    with ServedApp(create_app(_settings(tmp_path_factory.mktemp("fuzz")))) as app:
        yield schemathesis.openapi.from_url(f"{app.url}/openapi.json")


@pytest.mark.timeout(0 if not SEEDED else 300)  # a stream runs the graph for each case
@pytest.mark.parametrize(("method", "path", "mode"), _cases())
def test_no_input_gets_a_5xx_or_an_undeclared_answer(
    api_schema: schemathesis.BaseSchema, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=SEEDED,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(excluded_checks=NOT_CHECKED)

    try:
        check()
    except Unsatisfiable:
        # Every parameter takes any value (an id in the path, an optional string): there is
        # no invalid input to send. Only the invalid mode can find none.
        if mode is not GenerationMode.NEGATIVE:
            raise


def test_langserves_own_422_is_the_declared_400(api_schema: schemathesis.BaseSchema) -> None:
    """What `make fuzz` found: `/agent/batch` with more configs than inputs was LangServe's 422."""
    operation = api_schema["/agent/batch"]["POST"]
    case = operation.Case(body={"inputs": [], "config": [{}, {}]}, media_type="application/json")
    response = case.call_and_validate(excluded_checks=NOT_CHECKED)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
