"""A transcription's audio file streamed from the client to the upstream, never whole in memory.

The handler reads the client's multipart form with aiohttp's reader up to the file part; the
provider then reads the file with :meth:`Upload.chunks` while it sends it upstream, so the
upstream receives the first bytes before the client has sent the last. What passed is kept in a
spool (memory up to :data:`SPOOL_MEMORY`, then a temporary file), so that a retry or a fallback
sends the file again. Text fields after the file part are read once the file has been read and
kept in :attr:`Upload.trailing`; :meth:`Upload.extra_fields` are those that go upstream after the
file (gateway and credential keys dropped): send them before the file (as the OpenAI SDK does) for
the router to read them.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, MultipartReader
from aiohttp.http_exceptions import BadHttpMessage

from sidecar.errors import SidecarError
from sidecar.wire import CREDENTIAL_BODY_KEYS, GATEWAY_KEYS

CHUNK = 64 * 1024
SPOOL_MEMORY = 1024 * 1024
MAX_FIELD = 64 * 1024
"""The largest text field read (a prompt); more is a 400."""
MALFORMED = (BadHttpMessage, ValueError, KeyError)
"""What aiohttp's multipart reader raises for a form it cannot parse (a bad part header or
boundary, a Content-Type without one)."""


def malformed_form(exc: Exception) -> SidecarError:
    """The 400 for a form aiohttp cannot parse."""
    reason = (exc.message if isinstance(exc, BadHttpMessage) else str(exc))[:200] or type(exc).__name__
    return SidecarError(400, f"the multipart form is malformed: {reason}", param="file", code="invalid_form")


class Upload:
    """One file part of a client's multipart form, read as it arrives (once from the client; any
    later reading replays the spool)."""

    def __init__(self, part: BodyPartReader, reader: MultipartReader, limit: int, field: str = "file") -> None:
        self.field = field
        self.filename = part.filename or "audio"
        self.content_type = part.headers.get("Content-Type", "application/octet-stream")
        self.trailing: dict[str, str | list[str]] = {}
        self.size = 0
        self.failure: SidecarError | None = None
        self._part: BodyPartReader | None = part
        self._reader = reader
        self._limit = limit
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes: first those already read, then the rest as the client sends them."""
        pos = 0
        while True:
            if pos < self.size:
                self._spool.seek(pos)
                data = self._spool.read(min(CHUNK, self.size - pos))
                pos += len(data)
                yield data
                continue
            data = await self._next()
            if not data:
                return
            pos = self.size
            yield data

    async def _next(self) -> bytes:
        """The client's next bytes of the file (b"" at its end), kept in the spool."""
        if self._part is None:
            return b""
        try:
            data = await self._part.read_chunk(CHUNK)
            if not data:
                self._part = None
                await self._read_trailing()
                return b""
        except MALFORMED as exc:
            self.failure = malformed_form(exc)
            raise self.failure from None
        if self.size + len(data) > self._limit:
            self.failure = SidecarError(413, f"the upload is larger than {self._limit / 1048576:g} MB "
                                             "(general_settings.max_request_size_mb)", code="request_too_large")
            raise self.failure
        self._spool.seek(self.size)
        self._spool.write(data)
        self.size += len(data)
        return data

    async def drain(self) -> None:
        """Read what the client still sends (a made-up answer needs no file, but the client must finish)."""
        while await self._next():
            pass

    async def _read_trailing(self) -> None:
        while (part := await self._reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.filename is not None or not part.name:
                await part.release()
                continue
            add_field(self.trailing, part.name, await read_field(part))

    def extra_fields(self) -> dict[str, str | list[str]]:
        """The fields read after the file that go upstream after it (not gateway or credential
        keys, not ``model``: the router has already chosen with the fields before the file)."""
        return {k: v for k, v in self.trailing.items()
                if k not in GATEWAY_KEYS and k not in CREDENTIAL_BODY_KEYS and k != "model"}

    def close(self) -> None:
        self._spool.close()


async def read_field(part: BodyPartReader) -> str:
    """A text field's value; a 400 naming it when it is too long to be one."""
    data = bytearray()
    while chunk := await part.read_chunk(CHUNK):
        data += chunk
        if len(data) > MAX_FIELD:
            raise SidecarError(400, f"the form field {part.name!r} is longer than {MAX_FIELD} bytes",
                               param=part.name, code="invalid_value")
    return data.decode(part.get_charset("utf-8"), "replace")


def add_field(fields: dict[str, str | list[str]], name: str, value: str) -> None:
    """``timestamp_granularities[]=word`` twice is a list under ``timestamp_granularities[]``."""
    if name.endswith("[]"):
        listed = fields.setdefault(name, [])
        if isinstance(listed, list):
            listed.append(value)
    else:
        fields[name] = value
