"""Embeddings through InvokeModel: Titan (one call per input) and Cohere (one call for all)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from sidecar import Embedding, EmbeddingResponse, EmbeddingUsage, ProviderError, raw_vector

TITAN_KEYS = ("normalize", "embeddingTypes")
COHERE_KEYS = ("truncate", "embedding_types", "output_dimension", "max_tokens")
COHERE_INPUT_TYPE = "search_document"  # LiteLLM's default: documents to be searched


class TitanAnswer(msgspec.Struct):
    embedding: list[float]
    inputTextTokenCount: int = 0


class CohereAnswer(msgspec.Struct):
    embeddings: list[list[float]] | dict[str, list[list[float]]]


titan_answer = msgspec.json.Decoder(TitanAnswer)
cohere_answer = msgspec.json.Decoder(CohereAnswer)
_encode = msgspec.json.Encoder().encode


def texts_of(sent: Mapping[str, Any]) -> list[str]:
    inputs = sent["input"]
    if isinstance(inputs, str):
        return [inputs]
    if inputs and not isinstance(inputs[0], str):
        raise ProviderError(400, "bedrock embeds text only: send `input` as a string or a list of strings",
                            param="input", code="invalid_input", kind="bad_request")
    return list(inputs)


def titan_bodies(sent: Mapping[str, Any], params: Mapping[str, Any]) -> list[bytes]:
    """One InvokeModel body per input: ``{"inputText", "dimensions"?}`` (and Titan's own keys)."""
    extra = {k: sent.get(k, params.get(k)) for k in TITAN_KEYS}
    extra = {k: v for k, v in extra.items() if v is not None}
    if sent.get("dimensions") is not None:
        extra["dimensions"] = sent["dimensions"]
    return [_encode({"inputText": text, **extra}) for text in texts_of(sent)]


def cohere_body(sent: Mapping[str, Any], params: Mapping[str, Any]) -> bytes:
    """``{"texts", "input_type"}``: ``input_type`` from the request or ``litellm_params``, else
    ``search_document``."""
    body: dict[str, Any] = {"texts": texts_of(sent),
                            "input_type": sent.get("input_type") or params.get("input_type") or COHERE_INPUT_TYPE}
    for key in COHERE_KEYS:
        value = sent.get(key, params.get(key))
        if value is not None:
            body[key] = value
    return _encode(body)


def cohere_vectors(answer: CohereAnswer) -> list[list[float]]:
    if isinstance(answer.embeddings, dict):  # (asked for by embedding_types: the floats)
        return answer.embeddings.get("float") or []
    return answer.embeddings


def response(vectors: list[list[float]], model: str, tokens: int) -> EmbeddingResponse:
    """The float vectors (the core encodes them when the client asked for base64)."""
    data = [Embedding(index=i, embedding=raw_vector(v)) for i, v in enumerate(vectors)]
    return EmbeddingResponse(data=data, model=model, usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens))
