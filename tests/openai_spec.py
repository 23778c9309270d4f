"""OpenAI's spec for our tests: the conformance kit's (``sidecar.testing.spec``), whose package data
``sidecar/testing/openai_schemas.json`` is the one committed extract (see
``scripts/extract_openai_schemas.py``).

    from openai_spec import assert_valid
    assert_valid(body, "CreateChatCompletionResponse")
"""

from __future__ import annotations

from pathlib import Path

from sidecar.testing import spec as _spec
from sidecar.testing.spec import (  # noqa: F401 - re-exported for the tests
    assert_valid,
    convert_nullable,
    load_document,
    request_params,
    schema_names,
    validation_errors,
    validator_for,
)

SCHEMAS_PATH = Path(_spec.__file__).with_name(_spec.SCHEMAS_FILE)
