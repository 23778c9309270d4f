"""An in-process Bedrock runtime: Converse (``POST /model/{id}/converse``), ConverseStream
(``/converse-stream``, answered in the AWS event-stream binary framing) and InvokeModel
(``/invoke``, Titan and Cohere embeddings).

Every request must carry a SigV4 signature for the fake's credentials: ``Authorization`` and
``X-Amz-Date`` well-formed, the credential scope naming the fake's region and the service
``bedrock``, ``X-Amz-Security-Token`` when the fake has a session token, and a signature that
matches the request as it arrived (method, raw path, host, signed headers, body). Otherwise it
answers AWS's 403s (``UnrecognizedClientException``, ``InvalidSignatureException``...).

The model id picks a behaviour:

- ``error-<name>`` (a key of ``HTTP_ERRORS``): that AWS error answer;
- ``exc-first-<exception>`` / ``exc-mid-<exception>``: a stream whose first event after
  ``messageStart`` is / whose third event is that exception (``throttlingException``...);
- ``cut``: a stream whose connection drops after two events;
- ``max-tokens``, ``guardrail``: a text answer stopping for that reason;
- anything else: ``"Hello from Bedrock. <last user text>"``, or with ``toolConfig`` (and no
  tool result last) a call of the named or first tool with every property ``"Paris"``; with
  ``additionalModelRequestFields.thinking`` a reasoning block first.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import struct
import time
from binascii import crc32
from hashlib import sha256
from typing import Any
from urllib.parse import quote

import msgspec
from aiohttp import web
from fake_upstreams import FakeUpstream

ACCESS_KEY = "AKIAFAKEBEDROCK00001"
SECRET_KEY = "fake-secret-key/0123456789abcdefghijklmnop"
SESSION_TOKEN = "FwoGZXIvYXdzEFAKEsessiontoken0123456789"
REGION = "eu-west-1"
USAGE = {"inputTokens": 11, "outputTokens": 4, "totalTokens": 20, "cacheReadInputTokens": 2,
         "cacheWriteInputTokens": 3}
THOUGHT = "Let me think."
HTTP_ERRORS: dict[str, tuple[int, str, str]] = {
    "throttling": (429, "ThrottlingException", "Too many requests, please wait before trying again."),
    "denied": (403, "AccessDeniedException", "You don't have access to the model with the specified model ID."),
    "missing": (404, "ResourceNotFoundException", "Could not resolve the foundation model from the provided "
                                                  "model identifier."),
    "validation": (400, "ValidationException", "The provided request is not valid"),
    "too-long": (400, "ValidationException", "Input is too long for requested model."),
    "timeout": (408, "ModelTimeoutException", "Model has timed out in processing the request."),
    "internal": (500, "InternalServerException", "The server encountered an internal error."),
    "unavailable": (503, "ServiceUnavailableException", "Bedrock is unable to process your request."),
}
STREAM_ERRORS = {
    "throttlingException": "Too many tokens, please wait before trying again.",
    "validationException": "Input is too long for requested model.",
    "modelStreamErrorException": "The model stream failed.",
    "internalServerException": "The server encountered an internal error.",
    "serviceUnavailableException": "Bedrock is unable to process your request.",
}
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/"
                   r"(?P<service>[a-z0-9-]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
                   r"Signature=(?P<signature>[0-9a-f]{64})")
_encode = msgspec.json.Encoder().encode


# ---------------------------------------------------------------- the AWS event-stream framing


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return bytes([len(raw_name)]) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (total length, headers length, prelude CRC32), string
    headers (type 7), payload, message CRC32."""
    raw_headers = b"".join(_header(k, v) for k, v in headers.items())
    prelude = struct.pack(">II", 12 + len(raw_headers) + len(payload) + 4, len(raw_headers))
    prelude += struct.pack(">I", crc32(prelude) & 0xFFFFFFFF)
    message = prelude + raw_headers + payload
    return message + struct.pack(">I", crc32(message) & 0xFFFFFFFF)


def event(kind: str, payload: dict[str, Any]) -> bytes:
    """An event message, with the ``p`` padding field AWS adds to every payload."""
    return frame({":event-type": kind, ":content-type": "application/json", ":message-type": "event"},
                 _encode({**payload, "p": "abcdefghij"}))


def exception(kind: str, message: str) -> bytes:
    return frame({":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"},
                 _encode({"message": message}))


# ---------------------------------------------------------------- SigV4, checked


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), sha256).digest()


def expected_signature(request: web.Request, body: bytes, signed: list[str], amz_date: str, scope: str,
                       secret: str) -> str:
    """The SigV4 signature of the request as it arrived (AWS's algorithm, for a non-S3 service:
    the path's percent-encoding encoded once more)."""
    headers = "".join(f"{name}:{' '.join(request.headers.get(name, '').split())}\n" for name in signed)
    canonical = "\n".join(["POST", quote(request.raw_path.split("?")[0], safe="/~"), request.query_string,
                           headers, ";".join(signed), sha256(body).hexdigest()])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, sha256(canonical.encode()).hexdigest()])
    date, region, service, _ = scope.split("/")
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret}".encode(), date), region), service), "aws4_request")
    return hmac.new(key, to_sign.encode(), sha256).hexdigest()


class BedrockFake(FakeUpstream):
    greeting = "Hello from Bedrock."

    def __init__(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY,
                 session_token: str | None = None, region: str = REGION) -> None:
        super().__init__()
        self.access_key, self.secret_key, self.session_token, self.region = access_key, secret_key, session_token, region
        self.raw_paths: list[str] = []

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post(r"/model/{model:.+}/converse", self.converse)
        router.add_post(r"/model/{model:.+}/converse-stream", self.converse_stream)
        router.add_post(r"/model/{model:.+}/invoke", self.invoke)

    # ------------------------------------------------------------ auth

    def aws_error(self, status: int, type_name: str, message: str) -> web.Response:
        return web.Response(status=status, body=_encode({"message": message}), content_type="application/json",
                            headers={"x-amzn-ErrorType": f"{type_name}:http://internal.amazon.com/coral/com.amazon.bedrock/"})

    async def check(self, request: web.Request) -> tuple[Any, web.Response | None]:
        """Record the request; the AWS 403 its signature earns, if it is not right."""
        raw = await request.read()
        got = await self.record(request)
        self.raw_paths.append(request.raw_path)
        auth = request.headers.get("Authorization")
        if auth is None:
            return got, self.aws_error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        m = _AUTH.fullmatch(auth)
        amz_date = request.headers.get("X-Amz-Date", "")
        assert m is not None, f"malformed Authorization: {auth}"
        assert re.fullmatch(r"\d{8}T\d{6}Z", amz_date) and amz_date[:8] == m["date"], amz_date
        assert (m["region"], m["service"]) == (self.region, "bedrock"), auth
        signed = m["signed"].split(";")
        assert {"host", "x-amz-date"} <= set(signed), signed
        token = request.headers.get("X-Amz-Security-Token")
        if self.session_token is not None:
            assert "x-amz-security-token" in signed, signed
        if m["key"] != self.access_key or token != self.session_token:
            return got, self.aws_error(403, "UnrecognizedClientException",
                                       "The security token included in the request is invalid.")
        scope = f"{m['date']}/{m['region']}/bedrock/aws4_request"
        if m["signature"] != expected_signature(request, raw, signed, amz_date, scope, self.secret_key):
            return got, self.aws_error(403, "InvalidSignatureException",
                                       "The request signature we calculated does not match the signature you "
                                       "provided. Check your AWS Secret Access Key and signing method.")
        return got, None

    def scripted(self, model: str) -> web.Response | None:
        name = model.removeprefix("error-")
        if model.startswith("error-") and name in HTTP_ERRORS:
            return self.aws_error(*HTTP_ERRORS[name])
        return None

    # ------------------------------------------------------------ converse

    def blocks(self, model: str, body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        """The answer's content blocks and stop reason."""
        out: list[dict[str, Any]] = []
        if "thinking" in (body.get("additionalModelRequestFields") or {}):
            out.append({"reasoningContent": {"reasoningText": {"text": THOUGHT, "signature": "sig-0001"}}})
        tools = [t["toolSpec"] for t in (body.get("toolConfig") or {}).get("tools", [])]
        last = body["messages"][-1]["content"]
        answered = any("toolResult" in block for block in last)
        if tools and not answered:
            wanted = ((body["toolConfig"].get("toolChoice") or {}).get("tool") or {}).get("name")
            spec = next((t for t in tools if t["name"] == wanted), tools[0])
            props = spec["inputSchema"]["json"].get("properties") or {}
            out.append({"toolUse": {"toolUseId": "tooluse_fake0001", "name": spec["name"],
                                    "input": {name: "Paris" for name in props}}})
            return out, "tool_use"
        said = " ".join(b.get("text") or b["toolResult"]["content"][0]["text"] for b in last
                        if "text" in b or "toolResult" in b)
        out.append({"text": f"{self.greeting} {said}".strip()})
        return out, {"max-tokens": "max_tokens", "guardrail": "guardrail_intervened"}.get(model, "end_turn")

    async def converse(self, request: web.Request) -> web.Response:
        got, refused = await self.check(request)
        model = request.match_info["model"]
        failed = refused or self.scripted(model)
        if failed is not None:
            return failed
        blocks, stop = self.blocks(model, got.body)
        return web.json_response({"output": {"message": {"role": "assistant", "content": blocks}},
                                  "stopReason": stop, "usage": USAGE, "metrics": {"latencyMs": 120}})

    def events(self, model: str, body: dict[str, Any]) -> list[bytes]:
        blocks, stop = self.blocks(model, body)
        out = [event("messageStart", {"role": "assistant"})]
        for i, block in enumerate(blocks):
            if "reasoningContent" in block:
                reasoning = block["reasoningContent"]["reasoningText"]
                out += [event("contentBlockDelta", {"contentBlockIndex": i, "delta": {"reasoningContent": {"text": w}}})
                        for w in reasoning["text"].split(" ")]
                out.append(event("contentBlockDelta", {"contentBlockIndex": i, "delta": {
                    "reasoningContent": {"signature": reasoning["signature"]}}}))
            elif "toolUse" in block:
                use = block["toolUse"]
                out.append(event("contentBlockStart", {"contentBlockIndex": i, "start": {
                    "toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}}))
                args = _encode(use["input"]).decode()
                out += [event("contentBlockDelta", {"contentBlockIndex": i, "delta": {"toolUse": {"input": args[k:k + 6]}}})
                        for k in range(0, len(args), 6)]
            else:
                words = block["text"].split(" ")
                out += [event("contentBlockDelta", {"contentBlockIndex": i, "delta": {
                    "text": w if k == 0 else " " + w}}) for k, w in enumerate(words)]
            out.append(event("contentBlockStop", {"contentBlockIndex": i}))
        out.append(event("messageStop", {"stopReason": stop}))
        out.append(event("metadata", {"usage": USAGE, "metrics": {"latencyMs": 120}}))
        for where, at in (("exc-first-", 1), ("exc-mid-", 3)):
            if model.startswith(where):
                kind = model.removeprefix(where)
                out = [*out[:at], exception(kind, STREAM_ERRORS[kind])]
        return out

    async def converse_stream(self, request: web.Request) -> web.StreamResponse:
        got, refused = await self.check(request)
        model = request.match_info["model"]
        failed = refused or self.scripted(model)
        if failed is not None:
            return failed
        frames = self.events(model, got.body)
        resp = web.StreamResponse(headers={"Content-Type": "application/vnd.amazon.eventstream"})
        await resp.prepare(request)
        if model == "cut":
            for raw in frames[:3]:
                await resp.write(raw)
            request.transport.close()
            return resp
        for raw in frames:  # each frame in two writes: the reader must join partial frames
            half = len(raw) // 2
            await resp.write(raw[:half])
            await asyncio.sleep(0)
            await resp.write(raw[half:])
        await resp.write_eof()
        return resp

    # ------------------------------------------------------------ invoke (embeddings)

    async def invoke(self, request: web.Request) -> web.Response:
        got, refused = await self.check(request)
        model = request.match_info["model"]
        failed = refused or self.scripted(model)
        if failed is not None:
            return failed
        body = got.body
        if model.startswith("amazon.titan-embed"):
            dims = body.get("dimensions", 4)
            vector = [float(len(body["inputText"]))] + [0.5] * (dims - 1)
            return web.json_response({"embedding": vector, "inputTextTokenCount": len(body["inputText"].split())})
        vectors = [[float(i + 1), 0.25, -0.5] for i in range(len(body["texts"]))]
        return web.json_response({"id": "emb-fake", "response_type": "embeddings_floats", "texts": body["texts"],
                                  "embeddings": vectors},
                                 headers={"X-Amzn-Bedrock-Input-Token-Count": str(3 * len(body["texts"]))})


# ---------------------------------------------------------------- STS

ROLE_ARN = "arn:aws:iam::123456789012:role/llm-invoker"
ROLE_KEY = "ASIAFAKEROLESESSION01"
ROLE_SECRET = "fake/role/secret/0123456789abcdef"
ROLE_TOKEN = "IQoJb3JpZ2luFAKEroletoken0123456789"
WEB_TOKEN = "eyJhbGciOiJSUzI1NiJ9.fake-web-identity-token.sig"
CALLER_ARN = "arn:aws:iam::210987654321:user/sidecar-deployer"


class StsFake(FakeUpstream):
    """AWS STS's query API at ``POST /``: ``AssumeRole`` (signed with the fake's source key for the
    service ``sts``) and ``AssumeRoleWithWebIdentity`` (unsigned, with :data:`WEB_TOKEN`) of
    :data:`ROLE_ARN` answer the role's session credentials (:data:`ROLE_KEY`...), ending
    ``expires_in`` seconds from now; ``refuse`` answers AWS's ``AccessDenied``. ``calls`` keeps
    each request's form."""

    def __init__(self, source_key: str = ACCESS_KEY, expires_in: int = 3600, refuse: bool = False,
                 web_token: str = WEB_TOKEN) -> None:
        super().__init__()
        self.source_key, self.expires_in, self.refuse, self.web_token = source_key, expires_in, refuse, web_token
        self.calls: list[dict[str, str]] = []

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.calls.append(form)
        action = form.get("Action")
        auth = _AUTH.fullmatch(request.headers.get("Authorization", ""))
        if action == "AssumeRole":
            signed_by_source = auth is not None and auth["key"] == self.source_key and auth["service"] == "sts"
            if not signed_by_source:
                return self.sts_error(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
        elif action == "AssumeRoleWithWebIdentity":
            if auth is not None or form.get("WebIdentityToken") != self.web_token:
                return self.sts_error(400, "InvalidIdentityToken", "The web identity token is not valid.")
        else:
            return self.sts_error(400, "InvalidAction", f"Could not find operation {action}")
        if self.refuse or form.get("RoleArn") != ROLE_ARN:  # (AWS's text names the caller's ARN and account)
            return self.sts_error(403, "AccessDenied", f"User: {CALLER_ARN} is not authorized to perform: "
                                                       f"sts:{action} on resource: {form.get('RoleArn')}")
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + self.expires_in))
        result = (f"<Credentials><AccessKeyId>{ROLE_KEY}</AccessKeyId><SecretAccessKey>{ROLE_SECRET}</SecretAccessKey>"
                  f"<SessionToken>{ROLE_TOKEN}</SessionToken><Expiration>{expiry}</Expiration></Credentials>"
                  f"<AssumedRoleUser><Arn>{ROLE_ARN.replace(':role/', ':assumed-role/')}/{form.get('RoleSessionName')}"
                  f"</Arn><AssumedRoleId>AROAFAKE:{form.get('RoleSessionName')}</AssumedRoleId></AssumedRoleUser>")
        body = (f'<{action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><{action}Result>{result}'
                f"</{action}Result><ResponseMetadata><RequestId>fake-request</RequestId></ResponseMetadata>"
                f"</{action}Response>")
        return web.Response(body=body.encode(), content_type="text/xml")

    @staticmethod
    def sts_error(status: int, code: str, message: str) -> web.Response:
        body = (f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>fake-request</RequestId>"
                f"</ErrorResponse>")
        return web.Response(status=status, body=body.encode(), content_type="text/xml")
