"""The provider contract: what a plugin's ``sidecar_providers()`` hook returns."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

__all__ = ["CAPABILITIES", "CAPABILITY_METHODS", "NO_AMBIENT_CREDENTIALS", "HttpSession", "Provider", "ProviderCall",
           "accepted_params", "supported_params", "takes_capability"]

if TYPE_CHECKING:
    import aiohttp

    from sidecar.rerank import RerankResponse
    from sidecar.wire import ChatCompletion, ChatCompletionChunk, EmbeddingResponse, ModerationResponse
    from sidecar.wire_completions import TextCompletion, TextCompletionChunk
    from sidecar.wire_media import ImagesResponse, RawAnswer, TranscriptionResponse

    # what a chat stream yields: a chunk, its encoded JSON, or a list of them that arrived together
    StreamItem = ChatCompletionChunk | bytes | list[ChatCompletionChunk | bytes]

NO_AMBIENT_CREDENTIALS = "no_ambient_credentials"
"""A ``ProviderCall.params`` key: when true, use no credential from outside ``params``."""

CAPABILITY_METHODS = {
    "chat": "chat",
    "completion": "text_completion",
    "embedding": "embeddings",
    "moderation": "moderations",
    "image_generation": "image_generation",
    "rerank": "rerank",
    "audio_transcription": "transcription",
    "audio_speech": "speech",
}
"""Each capability and the Provider method that serves it: the one table the core dispatches by
(a request for a capability calls its method; the routes of each are in :mod:`sidecar.routes`).
A provider declaring a capability without overriding its method, or overriding the method of a
capability it does not declare, is refused at start-up."""

CAPABILITIES = tuple(CAPABILITY_METHODS)
"""Capability names a provider may declare; each matches a LiteLLM ``mode``."""


class HttpSession(Protocol):
    """The app's upstream client, as ``ProviderCall.session``: the part of ``aiohttp.ClientSession``
    that both clients the operator may choose (``general_settings.upstream_http_client``) serve.

    ``request(method, url)``, ``get(url)`` and ``post(url)`` take ``data`` (bytes, or an async
    iterable of bytes sent chunked), ``headers`` and ``timeout`` (an ``aiohttp.ClientTimeout``),
    and are awaited (the response stays open) or used with ``async with`` (released at the end).
    A response has ``status``, ``reason``, ``headers`` (case-insensitive), ``read()``,
    ``content.iter_any()``, ``content.iter_chunked(n)`` and ``release()``. Failures raise
    ``aiohttp.ClientError`` subclasses or ``asyncio.TimeoutError``. :func:`sidecar.post_json`
    and :func:`sidecar.open_stream` are the usual way to use it."""

    def request(self, method: str, url: Any, **kwargs: Any) -> Any: ...

    def get(self, url: Any, **kwargs: Any) -> Any: ...

    def post(self, url: Any, **kwargs: Any) -> Any: ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class ProviderCall:
    """Everything a provider needs to serve one request.

    ``body`` is the OpenAI request as the client sent it, with ``model`` set to the upstream model
    name, the gateway's own keys (``metadata``, ``drop_params``, ...), unsupported params and the
    params the core serves for the provider (:data:`CORE_PARAMS`) removed, and the deployment's
    defaults for OpenAI params added (:mod:`sidecar.defaults`): an OpenAI-compatible provider can
    send it as it is. ``request`` is the same body as a typed :mod:`sidecar.wire` Struct. ``params`` are the deployment's ``litellm_params`` with
    ``os.environ/`` references resolved (credentials included: never log them).
    """

    model: str
    body: dict[str, Any]
    request: Any
    params: Mapping[str, Any]
    session: HttpSession
    """The app's upstream client (:class:`HttpSession`)."""
    deployment_id: str
    stream: bool = False
    secrets: tuple[str, ...] = ()
    """Values to mask in messages: the deployment's credentials and any the client sent."""
    upload: Any = None
    """A transcription's audio file, as it arrives from the client (:class:`sidecar.uploads.Upload`:
    ``filename``, ``content_type``, ``field``, ``chunks()``); ``body`` then holds the form's text fields."""


class Provider:
    """Base class for providers. Subclasses set ``name`` and ``capabilities`` and override the
    coroutine of each capability they declare.

    Errors: raise :class:`sidecar.ProviderError` with the upstream's status and message (the
    helpers in :mod:`sidecar.upstream` do this for HTTP upstreams).
    """

    name: str = ""
    capabilities: frozenset[str] = frozenset()
    description: str = ""

    def supported_openai_params(self, model: str, capability: str | None = None) -> list[str]:
        """OpenAI params this provider accepts for ``model`` (LiteLLM's list of the same name),
        for the request's ``capability`` (``chat``, ``embedding``...; the core always passes it).
        The older one-argument form, ``supported_openai_params(self, model)``, still works (its
        one list then serves every capability), with a DeprecationWarning at start-up."""
        return []

    def secret_params(self) -> frozenset[str]:
        """Extra ``litellm_params`` keys of this provider that hold credentials."""
        return frozenset()

    def ambient_credentials(self, params: Mapping[str, Any]) -> list[str]:
        """Credential values this provider would use for ``params`` that are not in them (read
        from the environment, say), so the core can mask them in messages and logs.

        When ``params`` has :data:`NO_AMBIENT_CREDENTIALS` set, the client redirected the call
        to its own ``api_base`` (``allow_client_side_credentials``): send only the credentials
        in ``params``, none taken from the environment.
        """
        return []

    async def chat(self, call: ProviderCall) -> ChatCompletion | AsyncIterator[StreamItem]:
        """Answer a chat request: a ChatCompletion, or (``call.stream``) an async iterator of chunks.

        A stream may yield a chunk, its JSON as ``bytes``, or a list of either: chunks that
        arrived together, relayed together (cheaper than one at a time). For a stream, fail
        before returning the iterator when the upstream refuses the request, so the client gets
        the upstream's status rather than an error event; an error raised before the first chunk
        still reaches the client as a plain error answer with its status.
        """
        raise NotImplementedError

    async def embeddings(self, call: ProviderCall) -> EmbeddingResponse:
        raise NotImplementedError

    async def moderations(self, call: ProviderCall) -> ModerationResponse:
        raise NotImplementedError

    async def text_completion(self, call: ProviderCall) -> TextCompletion | AsyncIterator[TextCompletionChunk]:
        """Answer a legacy completion (capability ``completion``): a TextCompletion, or
        (``call.stream``) an async iterator of chunks (or their JSON bytes, or lists), as :meth:`chat`."""
        raise NotImplementedError

    async def image_generation(self, call: ProviderCall) -> ImagesResponse:
        """Generate images (capability ``image_generation``) for ``call.request``, an
        :class:`~sidecar.wire_media.ImageGenerationRequest`."""
        raise NotImplementedError

    async def speech(self, call: ProviderCall) -> RawAnswer:
        """Text to speech (capability ``audio_speech``): the audio as a RawAnswer, returned once the
        upstream accepted the request, its bytes relayed to the client as they arrive."""
        raise NotImplementedError

    async def transcription(self, call: ProviderCall) -> TranscriptionResponse | RawAnswer:
        """Speech to text (capability ``audio_transcription``): ``call.upload`` is the audio, to be
        read once with ``call.upload.chunks()`` (it streams from the client; a retry replays it),
        ``call.body`` the form's text fields. A TranscriptionResponse, or a RawAnswer relaying the
        upstream's own format (``text``, ``srt``, ``verbose_json``, a stream...)."""
        raise NotImplementedError

    async def rerank(self, call: ProviderCall) -> RerankResponse:
        """Rank ``call.request.documents`` (a :class:`sidecar.rerank.RerankRequest`) by relevance to
        its ``query``: a :class:`sidecar.rerank.RerankResponse`, results best first, at most
        ``top_n``, with their documents when ``return_documents`` (:func:`sidecar.rerank.with_documents`),
        and ``meta.billed_units.search_units`` when known (it prices the call)."""
        raise NotImplementedError

    async def list_models(self, params: Mapping[str, Any], session: aiohttp.ClientSession) -> list[str]:
        """Model names the upstream offers now (``sidecar sync --models``); [] if unknown."""
        return []


CORE_PARAMS = {"embedding": ("encoding_format",), "chat": ("stream_options",), "completion": ("stream_options",)}
"""OpenAI params the core serves for a provider that does not list them (the same for all):
base64 vectors from floats, and ``include_usage`` (a usage chunk not asked for is dropped).
Such a param is then accepted, and left out of the body the provider gets."""


def accepted_params(provider: Provider, model: str, capability: str) -> list[str]:
    """The OpenAI params a request of ``capability`` for ``model`` may carry: the provider's
    own, and those the core serves for it (:data:`CORE_PARAMS`)."""
    params = supported_params(provider, model, capability)
    extra = [p for p in CORE_PARAMS.get(capability, ()) if p not in params]
    return params + extra if extra else params


def supported_params(provider: Provider, model: str, capability: str) -> list[str]:
    """``provider.supported_openai_params`` for ``capability``, in either of its forms."""
    if takes_capability(type(provider)):
        return provider.supported_openai_params(model, capability)
    return provider.supported_openai_params(model)  # type: ignore[call-arg]


@functools.lru_cache(maxsize=256)
def takes_capability(cls: type) -> bool:
    """Whether ``cls.supported_openai_params`` takes the ``capability`` argument (the current
    form) rather than only ``model`` (the older one-argument form, deprecated)."""
    try:
        inspect.signature(cls.supported_openai_params).bind(None, "model", "chat")
    except TypeError:
        return False
    except ValueError:  # (no signature to read: a builtin; assume the current form)
        return True
    return True


SUPPORTED_PARAMS_SIGNATURE = "supported_openai_params(self, model: str, capability: str | None = None)"
"""The current form, named by the deprecation warning for the one-argument form."""
