"""An in-process Gemini API and Vertex AI server in Google's wire format, and a fake OAuth token
endpoint for google-auth's service-account flow.

- Gemini API: ``POST /v1beta/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse``
  (each ``data:`` event a whole GenerateContentResponse, CRLF-framed, no ``[DONE]``),
  ``:batchEmbedContents``; the key in ``x-goog-api-key`` (a wrong one gets Google's 400
  ``API_KEY_INVALID``).
- Vertex AI: ``POST /v1/projects/{p}/locations/{l}/publishers/google/models/{model}:{method}``
  (the same methods, ``:predict`` for embeddings); ``Authorization: Bearer`` must be a token the
  fake's ``/token`` issued.
- ``POST /token``: the JWT-bearer grant; the assertion's RS256 signature is checked against
  ``public_key`` when set; answers ``{access_token, expires_in, token_type}``.

The model name picks a behaviour: ``error-429`` (RESOURCE_EXHAUSTED, with its QuotaFailure and
RetryInfo details), ``error-500``,
``error-context`` (input over the context window), ``blocked`` (promptFeedback.blockReason),
``safety`` (a candidate finishing SAFETY with no content), ``filtered`` (text, then SAFETY),
``long`` (MAX_TOKENS), ``...thinker`` (a thought part first, thought and cached token counts),
``parallel`` (calls every declared function), ``error-first`` (a 200 stream whose first event is
a 429 error), ``error-mid-stream`` (two events, then an error), ``cut`` (two events, then the
connection closes), ``no-finish`` (two events, then a clean end without a finishReason). Otherwise: with tools (mode not NONE) a function call, else
``"Hello from Gemini. <last user text>"``, streamed a word an event.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

import msgspec
from aiohttp import web
from fake_upstreams import FakeUpstream

PROMPT_TOKENS, CANDIDATE_TOKENS, THOUGHT_TOKENS, CACHED_TOKENS = 12, 5, 7, 4
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode

ERRORS: dict[str, tuple[int, str, str]] = {
    "error-429": (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    "error-500": (500, "INTERNAL", "An internal error has occurred. Please retry or report in "
                                   "https://developers.generativeai.google/guide/troubleshooting"),
    "error-context": (400, "INVALID_ARGUMENT", "The input token count (1200000) exceeds the maximum number of "
                                               "tokens allowed (1048576)."),
}

RETRY_DELAY = "34s"
QUOTA_DETAILS = [  # what Gemini's 429 says besides its message: which quota, and when to retry
    {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "quotaValue": "10"}]},
    {"@type": "type.googleapis.com/google.rpc.Help", "links": [
        {"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": RETRY_DELAY},
]


def google_error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def _b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


class GoogleFake(FakeUpstream):
    greeting = "Hello from Gemini."

    def __init__(self, api_key: str | None = None, public_key: Any = None, expires_in: int = 3600) -> None:
        self.public_key = public_key
        self.expires_in = expires_in
        self.issued: list[str] = []
        self.token_requests: list[dict[str, Any]] = []
        self._serial = itertools.count(1)
        super().__init__(api_key)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1beta/models/{target}", self.gemini)
        router.add_post("/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{target}",
                        self.vertex)
        router.add_post("/token", self.token)

    # ------------------------------------------------------------ sign-in

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        claims = self._claims(form.get("assertion", ""))
        self.token_requests.append({"grant_type": form.get("grant_type"), "claims": claims})
        if claims is None:
            return web.json_response({"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
                                     status=400)
        token = f"ya29.fake-access-token-{next(self._serial)}"
        self.issued.append(token)
        return web.json_response({"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"})

    def _claims(self, assertion: str) -> dict[str, Any] | None:
        """The JWT's claims if its RS256 signature verifies (or no public key is set)."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            header, payload, signature = assertion.split(".")
            if self.public_key is not None:
                self.public_key.verify(_b64url(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(),
                                       hashes.SHA256())
            return _decode(_b64url(payload))
        except (ValueError, InvalidSignature):
            return None

    # ------------------------------------------------------------ the APIs

    async def gemini(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        model, _, method = request.match_info["target"].rpartition(":")
        if self.api_key is not None and request.headers.get("x-goog-api-key") != self.api_key:
            return self._error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
                               details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                         "reason": "API_KEY_INVALID", "domain": "googleapis.com"}])
        return await self._serve(request, got.body, model, method)

    async def _claude(self, request: web.Request, body: Any, model: str, method: str) -> web.StreamResponse:
        """Claude on Vertex AI: Anthropic's Messages API at ``:rawPredict`` / ``:streamRawPredict``,
        the model in the URL and ``anthropic_version`` in the body (the Anthropic fake answers)."""
        from fake_anthropic import AnthropicFake

        if body.get("anthropic_version") != "vertex-2023-10-16" or "model" in body:
            return self._error(400, "INVALID_ARGUMENT", "anthropic_version vertex-2023-10-16 is required, "
                                                        "and the model goes in the URL")
        if method != ("streamRawPredict" if body.get("stream") else "rawPredict"):
            return self._error(400, "INVALID_ARGUMENT", f"{method} does not match stream={body.get('stream')}")
        claude = AnthropicFake()
        whole = claude.message({**body, "model": model})
        if not body.get("stream"):
            return web.json_response(whole)
        return await claude.stream(request, model, whole)

    async def vertex(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        model, _, method = request.match_info["target"].rpartition(":")
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer not in self.issued:
            return self._error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected "
                                                       "OAuth 2 access token, login cookie or other valid "
                                                       "authentication credential.")
        if request.match_info["publisher"] == "anthropic":
            return await self._claude(request, got.body, model, method)
        return await self._serve(request, got.body, model, method)

    async def _serve(self, request: web.Request, body: Any, model: str, method: str) -> web.StreamResponse:
        if model in ERRORS:
            code, status, message = ERRORS[model]
            return self._error(code, status, message, details=QUOTA_DETAILS if code == 429 else None)
        if method == "batchEmbedContents":
            dims = [r.get("outputDimensionality") or 3 for r in body["requests"]]
            return web.json_response({"embeddings": [{"values": self.vector(i, d)} for i, d in enumerate(dims)]})
        if method == "predict":
            dims = (body.get("parameters") or {}).get("outputDimensionality") or 3
            return web.json_response({"predictions": [
                {"embeddings": {"values": self.vector(i, dims), "statistics": {"token_count": 2, "truncated": False}}}
                for i, _ in enumerate(body["instances"])]})
        events = self.events(body, model)
        if method == "generateContent":
            return web.json_response(self.whole(events))
        if method != "streamGenerateContent" or request.query.get("alt") != "sse":
            return self._error(404, "NOT_FOUND", f"unknown method {method}")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if model == "error-first":
            events = [google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).")]
        elif model == "error-mid-stream":
            events = [*events[:2], google_error(500, "INTERNAL", "An internal error has occurred mid-stream.")]
        for event in events[:2] if model in ("cut", "no-finish") else events:
            await resp.write(b"data: " + _encode(event) + b"\r\n\r\n")
        if model == "cut":
            request.transport.close()
            return resp
        await resp.write_eof()
        return resp

    def _error(self, code: int, status: str, message: str, details: list[Any] | None = None) -> web.Response:
        body = google_error(code, status, message)
        if details:
            body["error"]["details"] = details
        return web.json_response(body, status=code)

    @staticmethod
    def vector(index: int, dims: int) -> list[float]:
        return [float(index + 1)] + [0.5] * (dims - 1)

    # ------------------------------------------------------------ answers

    def events(self, body: dict[str, Any], model: str) -> list[dict[str, Any]]:
        """The answer as stream events; the last carries finishReason and usageMetadata."""
        config = body.get("generationConfig") or {}
        count = config.get("candidateCount") or 1
        usage = {"promptTokenCount": PROMPT_TOKENS, "candidatesTokenCount": CANDIDATE_TOKENS,
                 "totalTokenCount": PROMPT_TOKENS + CANDIDATE_TOKENS}
        if model.endswith("thinker"):
            usage.update(thoughtsTokenCount=THOUGHT_TOKENS, cachedContentTokenCount=CACHED_TOKENS,
                         totalTokenCount=PROMPT_TOKENS + CANDIDATE_TOKENS + THOUGHT_TOKENS)
        if model == "blocked":
            return [{"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []}, "usageMetadata": usage,
                     "modelVersion": model}]
        if model == "safety":
            return [{"candidates": [{"content": {"role": "model", "parts": []}, "finishReason": "SAFETY",
                                     "index": 0}], "usageMetadata": usage, "modelVersion": model}]
        steps = self.parts(body, model)
        finish = {"long": "MAX_TOKENS", "filtered": "SAFETY"}.get(model, "STOP")
        events = []
        for n, parts in enumerate(steps):
            last = n == len(steps) - 1
            candidates = []
            for index in range(count):
                cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": index}
                if last:
                    cand["finishReason"] = finish
                candidates.append(cand)
            event: dict[str, Any] = {"candidates": candidates, "modelVersion": model, "responseId": "resp-fake-1"}
            event["usageMetadata"] = usage if last else {"promptTokenCount": PROMPT_TOKENS}
            events.append(event)
        return events

    def parts(self, body: dict[str, Any], model: str) -> list[list[dict[str, Any]]]:
        """The parts of each stream event."""
        declarations = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []]
        calling = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {})
        contents = body.get("contents") or []
        answered = contents and any("functionResponse" in p for p in contents[-1]["parts"])
        if declarations and calling.get("mode") != "NONE" and not answered:
            allowed = calling.get("allowedFunctionNames")
            chosen = [d for d in declarations if not allowed or d["name"] in allowed]
            chosen = chosen if model == "parallel" else chosen[:1]
            calls = []
            for n, decl in enumerate(chosen):
                args = {name: "Paris" for name in ((decl.get("parameters") or {}).get("properties") or {})}
                calls.append({"functionCall": {"name": decl["name"], "args": args},
                              **({"thoughtSignature": "c2lnbmF0dXJl"} if n == 0 else {})})
            return [calls]
        users = [p.get("text") or p.get("functionResponse", {}).get("response", {}).get("content", "")
                 for c in contents if c["role"] == "user" for p in c["parts"]]
        words = f"{self.greeting} {users[-1] if users else ''}".strip().split(" ")
        steps = [[{"text": w if i == 0 else " " + w}] for i, w in enumerate(words)]
        if model.endswith("thinker"):
            steps.insert(0, [{"text": "Let me think.", "thought": True}])
        return steps

    @staticmethod
    def whole(events: list[dict[str, Any]]) -> dict[str, Any]:
        """The events of a stream as one generateContent answer."""
        last = dict(events[-1])
        if "candidates" in last:
            merged = []
            for index, cand in enumerate(last["candidates"]):
                parts = [p for e in events for p in e["candidates"][index]["content"]["parts"]]
                merged.append({**cand, "content": {"role": "model", "parts": parts}})
            last["candidates"] = merged
        return last
