"""Amazon Bedrock for llm-sidecar: chat through the Converse and ConverseStream APIs (Claude,
Nova, Llama, Mistral... under one request shape), embeddings through InvokeModel (Titan and
Cohere embedding models).

``bedrock/<model id>`` and ``bedrock/converse/<model id>`` both chat through Converse; a model
id may carry a cross-region inference prefix (``us.``, ``eu.``, ``apac.``, ``global.``...) or be
an ARN. Requests are signed with SigV4 by botocore, which is imported on the first call, never
at start-up.
"""

from __future__ import annotations

from sidecar import Provider, hookimpl
from sidecar_bedrock.provider import BedrockProvider

__version__ = "0.1.0"


@hookimpl
def sidecar_providers() -> list[Provider]:
    return [BedrockProvider()]
