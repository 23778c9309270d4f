"""The loop ``sidecar serve`` runs on without uvloop (``sidecar.loop.LeanLoop``), over real sockets:
a turn's writes go out at its end, in order, and closing, aborting, ``write_eof`` and ``sendfile``
keep asyncio's meaning. The whole suite runs on it too (``tests/conftest.py``)."""

from __future__ import annotations

import asyncio
import contextvars
import select
import socket
import time

import pytest
from fake_http import RawServer, answer, keep_alive

from sidecar.httpclient import LeanSession
from sidecar.httpclient.pool import Pool
from sidecar.loop import LeanLoop


async def _pair() -> tuple[asyncio.Transport, socket.socket, asyncio.Protocol]:
    """A transport of the running loop on one end of a socket pair; the other end, blocking."""
    ours, theirs = socket.socketpair()
    theirs.settimeout(5)
    transport, protocol = await asyncio.get_running_loop().connect_accepted_socket(asyncio.Protocol, ours)
    return transport, theirs, protocol


def _read_all(sock: socket.socket) -> bytes:
    """What ``sock`` receives until the other end is closed."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _nothing_yet(sock: socket.socket) -> bool:
    return not select.select([sock], [], [], 0.05)[0]


async def test_the_suite_runs_on_the_lean_loop():
    assert type(asyncio.get_running_loop()) is LeanLoop


class _Spare:
    """A connection that takes a turn's first write (which is sent at once), so that the writes
    made after it in the same turn, with no ``await`` between, are held."""

    async def __aenter__(self) -> _Spare:
        self.transport, self.peer, _ = await _pair()
        return self

    def first_write(self) -> None:
        self.transport.write(b"x")

    async def __aexit__(self, *exc: object) -> None:
        self.transport.close()
        self.peer.close()


async def _held(data: bytes) -> tuple[asyncio.Transport, socket.socket]:
    """A transport holding ``data``: written after the turn's first write (on a spare connection).
    No turn passes before the caller acts on it (nothing here suspends after the write)."""
    async with _Spare() as spare:
        transport, theirs, _ = await _pair()
        spare.first_write()
        transport.write(data)
    assert transport.get_write_buffer_size() == len(data) and _nothing_yet(theirs)
    return transport, theirs


async def test_a_turns_first_write_goes_at_once_and_the_rest_together_at_its_end():
    await asyncio.sleep(0)  # (a turn of its own)
    transport, theirs, _ = await _pair()
    transport.write(b"at once;")
    assert theirs.recv(100) == b"at once;"
    transport.write(b"one ")
    transport.writelines([b"two ", b"three"])
    assert transport.get_write_buffer_size() == len(b"one two three")
    assert _nothing_yet(theirs)  # (held until the turn ends)
    await asyncio.sleep(0)
    assert theirs.recv(100) == b"one two three"
    assert transport.get_write_buffer_size() == 0
    transport.close()
    theirs.close()


async def test_after_a_turn_that_wrote_to_two_connections_even_the_first_write_is_held():
    async with _Spare() as spare:
        transport, theirs, _ = await _pair()
        spare.first_write()
        transport.write(b"a")  # (two connections written in one turn: the loop is busy)
        await asyncio.sleep(0)
        assert theirs.recv(100) == b"a"
        transport.write(b"b")  # the next turn's first write
        assert transport.get_write_buffer_size() == 1 and _nothing_yet(theirs)
        await asyncio.sleep(0)
        assert theirs.recv(100) == b"b"
        transport.close()
        theirs.close()


async def test_close_and_write_eof_send_what_the_turn_wrote_first():
    transport, theirs = await _held(b"answer")
    transport.write_eof()
    assert theirs.recv(100) == b"answer"
    assert theirs.recv(100) == b""  # then the end of the stream
    transport.close()
    theirs.close()

    transport, theirs = await _held(b"last words")
    transport.close()
    await asyncio.sleep(0.01)
    assert _read_all(theirs) == b"last words"
    theirs.close()


async def test_abort_sends_what_the_turn_wrote_as_asyncios_write_had():
    transport, theirs = await _held(b"written before the abort")
    transport.abort()
    await asyncio.sleep(0.01)
    assert _read_all(theirs) == b"written before the abort"
    theirs.close()


class _FlowRecorder(asyncio.Protocol):
    def __init__(self) -> None:
        self.events: list[str] = []
        self.resumed = asyncio.Event()

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")
        self.resumed.set()


async def test_a_turn_that_writes_more_than_it_may_hold_pauses_its_protocol_as_asyncio():
    """Flow control is asyncio's: writing 2.6 MB in one turn pauses the protocol in that turn
    (what makes aiohttp's ``drain`` wait), and it resumes once the peer has read."""
    ours, theirs = socket.socketpair()
    transport, protocol = await asyncio.get_running_loop().connect_accepted_socket(_FlowRecorder, ours)
    chunk = bytes(range(256)) * 256  # 64 KiB
    for _ in range(40):
        transport.write(chunk)
    assert protocol.events == ["pause"]
    received = asyncio.create_task(asyncio.to_thread(_read_all, theirs))
    await asyncio.wait_for(protocol.resumed.wait(), 5)
    transport.close()
    assert await received == chunk * 40
    assert protocol.events == ["pause", "resume"]
    theirs.close()


def test_writes_outside_a_turn_and_in_a_turn_cut_short_are_sent():
    loop = LeanLoop()
    try:
        ours, theirs = socket.socketpair()
        theirs.settimeout(5)
        transport, _ = loop.run_until_complete(loop.connect_accepted_socket(asyncio.Protocol, ours))
        transport.write(b"between runs;")  # (held: no turn is running)
        loop.run_until_complete(asyncio.sleep(0))
        assert theirs.recv(100) == b"between runs;"

        def write_then_exit():
            transport.write(b"then exit")
            raise SystemExit(3)

        loop.call_soon(write_then_exit)
        with pytest.raises(SystemExit):
            loop.run_forever()
        assert theirs.recv(100) == b"then exit"
        transport.write(b";before close")
        transport.close()
        loop.run_until_complete(asyncio.sleep(0.01))
        assert _read_all(theirs) == b";before close"
        theirs.close()
    finally:
        loop.close()


async def test_a_bytearray_is_sent_as_it_was_when_written():
    async with _Spare() as spare:
        transport, theirs, _ = await _pair()
        spare.first_write()
        data = bytearray(b"before")
        transport.write(data)
    data[:] = b"after!"
    transport.write(b" then bytes")
    await asyncio.sleep(0)
    assert theirs.recv(100) == b"before then bytes"
    transport.close()
    theirs.close()


async def test_a_write_too_big_for_the_socket_is_sent_in_full_later():
    transport, theirs, _ = await _pair()
    big = bytes(range(256)) * 40_000  # 10 MB: far more than the socket's buffer
    transport.write(big)
    transport.write(b"tail")
    transport.close()
    received = await asyncio.to_thread(_read_all, theirs)
    assert received == big + b"tail"
    theirs.close()


async def test_sendfile_starts_after_what_was_written_before_it(tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(b"file body")
    transport, theirs = await _held(b"head;")
    with path.open("rb") as f:
        await asyncio.get_running_loop().sendfile(transport, f)
    transport.write(b";tail")
    transport.close()
    assert await asyncio.to_thread(_read_all, theirs) == b"head;file body;tail"
    theirs.close()


def test_callbacks_keep_asyncios_contexts_order_and_errors():
    loop = LeanLoop()
    try:
        var = contextvars.ContextVar("var", default="unset")
        seen = []
        ctx = contextvars.copy_context()
        ctx.run(var.set, "given")
        loop.call_soon(lambda: seen.append(("first", var.get())))
        loop.call_soon(lambda: seen.append(("second", var.get())), context=ctx)
        loop.call_soon(loop.stop)
        loop.run_forever()
        assert seen == [("first", "unset"), ("second", "given")]
        assert loop.get_debug() is False
        loop.set_debug(True)
        assert loop.get_debug() is True
        with pytest.raises(TypeError, match="coroutines cannot be used"):  # (debug mode: asyncio's own checks)
            loop.call_soon(asyncio.sleep)
        loop.set_debug(False)
        assert loop.get_debug() is False
        assert abs(loop.time() - time.monotonic()) < 1
    finally:
        loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_soon(print)


class _Recorded:
    """A transport that records what is written to it."""

    def __init__(self, name: str, sent: list, closing: bool = False) -> None:
        self.name, self.sent, self.closing = name, sent, closing

    def write(self, data: bytes) -> None:
        self.sent.append((self.name, data))

    def is_closing(self) -> bool:
        return self.closing


def test_on_a_loop_that_sends_at_once_the_lean_client_holds_a_turns_later_requests():
    """uvloop and asyncio's own loop send every write at once: the lean client's pool sends a
    turn's first request at once and the turn's later ones together after it (one closed
    meanwhile is skipped); on :class:`LeanLoop`, which holds them itself, it writes them through."""
    loop = asyncio.SelectorEventLoop()
    try:
        pool = Pool(loop, 0, 0, 30.0, opener=None)  # type: ignore[arg-type]
        sent: list = []

        def turn() -> None:
            pool.write(_Recorded("a", sent), b"1")
            pool.write(_Recorded("b", sent), b"2")
            pool.write(_Recorded("closed", sent, closing=True), b"3")
            pool.write(_Recorded("c", sent), b"4")
            sent.append("end of the turn")

        loop.call_soon(turn)
        loop.run_until_complete(asyncio.sleep(0.01))
        assert sent == [("a", b"1"), "end of the turn", ("b", b"2"), ("c", b"4")]
        pool.close()
    finally:
        loop.close()
    lean = LeanLoop()
    try:
        sent = []
        pool = Pool(lean, 0, 0, 30.0, opener=None)  # type: ignore[arg-type]
        pool.write(_Recorded("a", sent), b"1")
        pool.write(_Recorded("b", sent), b"2")
        assert sent == [("a", b"1"), ("b", b"2")]
        pool.close()
    finally:
        lean.close()


def test_the_lean_client_answers_many_requests_at_once_on_a_loop_that_sends_at_once():
    async def many() -> list[tuple[int, bytes]]:
        upstream = await RawServer(keep_alive(lambda req, n: answer(body=req.body))).start()
        session = LeanSession(limit=0, limit_per_host=0, keepalive_timeout=30)
        try:
            answers = await asyncio.gather(*(session.post_read(upstream.url(), str(i).encode(), None, None)
                                             for i in range(20)))
        finally:
            await session.close()
            await upstream.close()
        return [(status, body) for status, _, body in answers]

    loop = asyncio.SelectorEventLoop()
    try:
        assert loop.run_until_complete(many()) == [(200, str(i).encode()) for i in range(20)]
    finally:
        loop.close()
