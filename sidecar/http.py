"""Small aiohttp helpers shared by handlers: JSON bodies in, msgspec-encoded JSON out."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from aiohttp import web
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE, HttpVersion11
from multidict import CIMultiDict

from sidecar.errors import SidecarError, bad_request

T = TypeVar("T")

encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def header_value(text: str) -> str:
    """``text`` (a model name or id a client or operator chose) as a header may carry it: its
    control characters percent-encoded. aiohttp refuses to send a header holding one and drops
    the connection, so the client would get no answer at all."""
    if text.isprintable():
        return text
    return _CONTROL.sub(lambda m: f"%{ord(m.group()):02X}", text)


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=encoder.encode(obj), status=status, headers=headers,
                        content_type="application/json")


def head_items(lines: str) -> list[tuple[str, str]]:
    """The (name, value) pairs of head lines (``name: value\\r\\n`` each)."""
    return [tuple(line.split(": ", 1)) for line in lines.split("\r\n")[:-1]]  # type: ignore[misc]


class OnePieceHead(web.StreamResponse):
    """A 200 answer whose head (status line and headers) is written in one piece: the answers of
    proxied calls, which carry a dozen headers (LiteLLM's ``x-litellm-*``).

    aiohttp's responses copy headers into a ``CIMultiDict``, add their own one by one and
    serialise them a character at a time (about 40,000 instructions of a chat request's 637,000);
    here the head is one string, joined in C. It is handed to the request's writer as aiohttp
    hands any head (buffered, sent with the first body bytes in one write), and only where
    aiohttp would send the same bytes: HTTP/1.1 with keep-alive, not HEAD, a response nobody
    changed (status, headers, cookies, compression, keep-alive) and no ``on_response_prepare``
    signal to run. Elsewhere the answer is prepared as any response is, its headers in
    :attr:`headers` (beside any a middleware set there; reading :attr:`headers` before the answer
    is prepared puts them there too).

    A subclass gives :meth:`fixed_head` (its own lines: Content-Type...), and ``unknown_length``
    for a body of unknown length (its fixed head then says ``Transfer-Encoding: chunked``: on
    aiohttp's way, aiohttp decides that line itself).

    ``headers`` (a dict, or head lines already made: ``name: value\\r\\n`` each) is the
    caller's promise: names the head does not say itself (Content-Type, Content-Length, Date,
    Server, Connection, Transfer-Encoding), values without control characters
    (:meth:`Router.head` passes names it did not choose through :func:`header_value`). Checking
    every character here cost 25,000 instructions an answer (a regular expression or
    ``str.isprintable`` on the joined head); in a dict, a CR or LF, which would split the answer,
    is still caught (two counts) and sent aiohttp's way, which refuses it. Head lines are sent as
    they are.
    """

    unknown_length = False

    def __init__(self, headers: dict[str, str] | str, body: bytes = b"") -> None:
        super().__init__()
        self._extra = headers
        self._answer = body  # (a body known in advance, written by write_eof)
        self._spread = False  # (whether the head's headers are in self._headers)

    def fixed_head(self) -> str:
        """The head's lines that come before ``headers``, each ending in CRLF."""
        raise NotImplementedError

    @property
    def headers(self) -> CIMultiDict[str]:
        self._spread_head()
        return self._headers

    async def prepare(self, request: web.BaseRequest) -> Any:
        if self._payload_writer is None and not self._eof_sent:
            if self._one_piece(request):
                return self._payload_writer
            self._spread_head()
        # (prepared already: aiohttp prepares a handler's answer again after it returns, which
        # for a stream the handler prepared itself; its head is not spread for nothing then)
        return await super().prepare(request)

    def _spread_head(self) -> None:
        """Put the head's headers in :attr:`headers`, beside any set there already (which win)."""
        if self._spread:
            return
        self._spread = True
        for name, value in head_items(self.fixed_head()):
            if name != "Transfer-Encoding":  # (aiohttp chunks a body of unknown length where it may)
                self._headers.setdefault(name, value)
        extra = self._extra
        for name, value in head_items(extra) if isinstance(extra, str) else extra.items():
            self._headers.setdefault(name, value)

    def _one_piece(self, request: web.BaseRequest) -> bool:
        """Hand the head to the request's writer, in one piece, where aiohttp would send the same."""
        if (request.version != HttpVersion11 or not request.keep_alive or request.method == "HEAD" or self._spread
                or self._headers or self._cookies or self._status != 200 or self._keep_alive is not None
                or self._compression or self._chunked):
            return False
        for app in request.match_info.apps:
            if app.on_response_prepare:
                return False
        extra = self._extra
        if type(extra) is str:  # (head lines made so that no value can hold a CR or LF: Router.head)
            lines = extra
        else:
            lines = "".join([f"{name}: {value}\r\n" for name, value in extra.items()])
            if lines.count("\n") != len(extra) or lines.count("\r") != len(extra):
                return False  # (a CR or LF in a header: aiohttp's way refuses it rather than split the answer)
        self._req = request
        self._keep_alive = True
        writer = self._payload_writer = request._payload_writer
        if self.unknown_length:
            writer.enable_chunking()
        writer._headers_buf = (f"HTTP/1.1 200 OK\r\n{self.fixed_head()}{lines}"
                               f"Date: {rfc822_formatted_time()}\r\nServer: {SERVER_SOFTWARE}\r\n\r\n").encode()
        writer._headers_written = False
        return True


class Answer(OnePieceHead):
    """A 200 JSON answer, its body known (``Answer(headers, body)``): head and body in one write."""

    def fixed_head(self) -> str:
        return f"Content-Type: application/json\r\nContent-Length: {len(self._answer)}\r\n"

    async def write_eof(self, data: bytes = b"") -> None:
        await super().write_eof(b"" if self._must_be_empty_body else self._answer)  # (HEAD: no body)


def answer_response(obj: Any, headers: dict[str, str] | str) -> web.StreamResponse:
    """A proxied call's 200 answer: ``obj`` encoded, with ``headers`` (:class:`Answer`)."""
    return Answer(headers, encoder.encode(obj))


def bytes_response(body: bytes, status: int = 200) -> web.Response:
    """An already-encoded JSON answer (the info caches hold these)."""
    return web.Response(body=body, status=status, content_type="application/json")


def error_response(err: SidecarError) -> web.Response:
    return json_response(err.body(), status=err.status, headers=err.headers)


async def read_bytes(request: web.BaseRequest) -> bytes:
    """The request's body, as ``request.read()`` gives it. A body that has all arrived (a small
    request comes in one read) is taken at once, where ``read()`` awaits it piece by piece into a
    buffer and copies it; ``read()`` then answers the same, as after its own read."""
    content = request.content
    if not content.is_eof() or request._read_bytes is not None:
        return await request.read()
    raw = content.read_nowait()
    if request.client_max_size and len(raw) > request.client_max_size:  # (0: no limit, as for read())
        raise web.HTTPRequestEntityTooLarge(max_size=request.client_max_size, actual_size=len(raw))
    request._read_bytes = raw
    return raw


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; 400 for an empty, malformed or non-object body."""
    raw = await read_bytes(request)
    if not raw:
        raise bad_request("the request body is empty; expected a JSON object")
    try:
        body = _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise bad_request("the request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise bad_request(f"the request body must be a JSON object, not {type(body).__name__}")
    return body


_FLAGS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def query_flag(request: web.Request, name: str) -> bool:
    """A true/false query parameter (``1``/``0``, ``yes``/``no``, ``on``/``off`` too; absent is
    false); anything else is a 400 naming it."""
    value = request.query.get(name)
    if value is None:
        return False
    flag = _FLAGS.get(value.strip().lower())
    if flag is None:
        raise SidecarError(400, f"`{name}` must be true or false, not {value[:50]!r}", param=name, code="invalid_value")
    return flag


def convert(body: dict[str, Any], type_: type[T]) -> T:
    """``body`` as ``type_``; a 400 naming the field when a type is wrong or a field missing.

    JSON has one number type: ``1.0`` where an integer is expected is 1 (as OpenAI's API takes
    it; Python's ``json`` writes floats so). msgspec refuses it, so the body is converted again
    with whole floats made ints, only then (it costs nothing on valid bodies)."""
    try:
        try:
            return msgspec.convert(body, type_)
        except msgspec.ValidationError as exc:
            if "got `float`" not in str(exc):
                raise
            return msgspec.convert(_whole_floats_as_ints(body), type_)
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from None
    except RecursionError:
        raise bad_request("the request body is nested too deeply") from None


def _whole_floats_as_ints(value: Any) -> Any:
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {k: _whole_floats_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_floats_as_ints(v) for v in value]
    return value


def validation_error(exc: Exception, status: int = 400) -> SidecarError:
    """msgspec's message as the error, its ``$.path`` (or missing field) as ``param``."""
    message = str(exc)
    _, _, at = message.partition(" - at `$")
    param = at.rstrip("`").lstrip(".") or None
    if message.startswith("Object missing required field `"):
        field = message.split("`")[1]
        param = f"{param}.{field}" if param else field
    return SidecarError(status, message, param=param, code="invalid_value" if status == 400 else None)
