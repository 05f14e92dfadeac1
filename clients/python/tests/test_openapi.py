"""The client's models cannot drift from the server: each is compared, field by field and
required by required, with the schema of the same name in a running server's
``/openapi.json``."""

from __future__ import annotations

from typing import Any, Dict, Set

import httpx
import pytest

from weir_harness import Weir
from weir_client.errors import ERRORS_BY_CODE
from weir_client.models import CHECKED_MODELS


@pytest.fixture
def document(weir: Weir) -> Dict[str, Any]:
    return httpx.get(f"{weir.url}/openapi.json").json()


def required_fields(model: Any) -> Set[str]:
    return {name for name, field in model.model_fields.items() if field.is_required()}


@pytest.mark.parametrize("model", CHECKED_MODELS, ids=lambda m: m.__name__)
def test_model_matches_the_server_schema(model: Any, document: Dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert model.__name__ in schemas, f"the server has no schema {model.__name__}"
    schema = schemas[model.__name__]
    properties = set(schema.get("properties", {}))
    assert set(model.model_fields) == properties, (
        f"{model.__name__}: the client has {sorted(set(model.model_fields) - properties)} "
        f"the server does not, and lacks {sorted(properties - set(model.model_fields))}"
    )
    assert required_fields(model) == set(schema.get("required", [])), model.__name__


def test_every_documented_error_code_has_an_exception(document: Dict[str, Any]) -> None:
    detail = document["components"]["schemas"]["ErrorDetail"]
    described = detail["properties"]["code"].get("description", "")
    codes = {word.strip("`.,: ") for word in described.split() if word.startswith("`")}
    assert codes, "the ErrorDetail code description lists no codes"
    missing = codes - set(ERRORS_BY_CODE)
    assert not missing, f"codes without an exception class: {sorted(missing)}"


def test_every_operation_the_client_calls_exists(document: Dict[str, Any]) -> None:
    paths = document["paths"]
    for path, method in [
        ("/v1/runs", "post"),
        ("/v1/runs", "get"),
        ("/v1/runs/{id}", "get"),
        ("/v1/runs/{id}/cancel", "post"),
        ("/v1/runs/{id}/events", "get"),
        ("/v1/reviews", "get"),
        ("/v1/reviews/{id}", "get"),
        ("/v1/reviews/{id}", "post"),
        ("/v1/workflows", "get"),
        ("/v1/plugins", "get"),
        ("/v1/plugins", "post"),
    ]:
        assert method in paths.get(path, {}), f"{method.upper()} {path} is not in the document"
