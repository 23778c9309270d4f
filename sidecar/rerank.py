"""msgspec Structs for ``/v1/rerank``: Cohere's rerank request and answer, as LiteLLM serves them.

The request is checked here (a 400 names the field); the answer is what a provider's
``rerank(call)`` returns. Its ``usage`` (the billed search units) prices the call with the
deployment's ``input_cost_per_query``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

__all__ = ["RerankBilledUnits", "RerankMeta", "RerankRequest", "RerankResponse", "RerankResult", "document_text",
           "with_documents"]

Json = dict[str, Any]


class RerankRequest(Struct):
    """Cohere's rerank body: ``documents`` are strings or objects (``rank_fields`` names the
    fields of an object to rank on)."""

    model: str
    query: Annotated[str, Meta(min_length=1)]
    documents: Annotated[list[str | Json], Meta(min_length=1)]
    top_n: Annotated[int, Meta(ge=1)] | None | UnsetType = UNSET
    return_documents: bool | None | UnsetType = UNSET
    rank_fields: list[str] | None | UnsetType = UNSET
    max_tokens_per_doc: Annotated[int, Meta(ge=1)] | None | UnsetType = UNSET
    max_chunks_per_doc: Annotated[int, Meta(ge=1)] | None | UnsetType = UNSET
    metadata: Json | None | UnsetType = UNSET
    drop_params: bool | None | UnsetType = UNSET
    mock_response: Any = UNSET


class RerankBilledUnits(Struct, omit_defaults=True):
    search_units: int | float | None = None
    input_tokens: int | float | None = None
    output_tokens: int | float | None = None


class RerankMeta(Struct, omit_defaults=True):
    api_version: Json | None = None
    billed_units: RerankBilledUnits | None = None
    tokens: Json | None = None
    warnings: list[str] | None = None


class RerankResult(Struct, omit_defaults=True):
    index: int
    relevance_score: float
    document: Json | None = None


class RerankUsage(Struct):
    """What the router counts and prices: ``search_units`` at ``input_cost_per_query``."""

    search_units: float = 0.0
    total_tokens: int = 0


class RerankResponse(Struct, omit_defaults=True):
    results: list[RerankResult]
    id: str = ""
    meta: RerankMeta = msgspec.field(default_factory=RerankMeta)

    def __post_init__(self) -> None:
        if not self.id:
            self.id = str(uuid.uuid4())

    @property
    def usage(self) -> RerankUsage | None:
        """The billed search units, when the provider reported them."""
        billed = self.meta.billed_units
        if billed is None or billed.search_units is None:
            return None
        return RerankUsage(search_units=float(billed.search_units), total_tokens=int(billed.input_tokens or 0))


def document_text(document: str | Json, rank_fields: list[str] | None) -> str:
    """A document as the text to rank: a string as it is, an object as ``field: value`` lines
    (only its ``rank_fields`` when given), the YAML-like form Cohere recommends."""
    if isinstance(document, str):
        return document
    fields = rank_fields or list(document)
    return "\n".join(f"{k}: {_scalar(document[k])}" for k in fields if k in document)


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def with_documents(results: list[RerankResult], request: RerankRequest) -> list[RerankResult]:
    """``results`` carrying their documents when the client asked for them (``return_documents``):
    ``{"text": ...}`` for a string, the object itself for an object, as LiteLLM returns them."""
    if not request.return_documents:
        return results
    docs = request.documents
    for result in results:
        if result.document is None and 0 <= result.index < len(docs):
            doc = docs[result.index]
            result.document = {"text": doc} if isinstance(doc, str) else doc
    return results
