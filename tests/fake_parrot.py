"""An in-process Parrot API, the made-up upstream of the example plugin's ``parrot`` provider
(its wire format: tests/example_plugin/sidecar_example/parrot.py), built on the conformance kit's
fake helpers (``sidecar.testing``): ``POST /v2/squawk`` (JSON, or newline-delimited JSON lines
when ``chirp``) and ``POST /v2/mimic``.

The key must come in ``X-Parrot-Key`` (a wrong one gets a 403 ``bad_key`` that quotes it, as
careless APIs do). The bird picks a behaviour: ``error-too-fast`` (429, ``wait_seconds`` in the
body only), ``error-too-long`` (413), ``error-rude`` (422), ``error-no-such-bird`` (404),
``error-broken`` (500); ``long`` stops ``out_of_words``; ``cut`` drops the connection after two
lines (a JSON answer half-way); ``oops-mid`` sends two lines, then an ``oops`` line; ``no-end``
ends its body cleanly without the ``end`` line. Otherwise it says ``"Hello from Parrot. <last
words>"``, a word a line; offered ``tricks`` (mode not ``none``, and no trick answered last) it
does the one asked for (or the first) with every property of its shape set to ``"Paris"``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from sidecar.testing import FakeUpstream, cut_json, ndjson

HEARD = 7
WAIT_SECONDS = 12.5
PROBLEMS = {
    "error-too-fast": (429, {"category": "too_fast", "explanation": "slow down: 3 squawks a minute",
                             "wait_seconds": WAIT_SECONDS}),
    "error-too-long": (413, {"category": "too_long", "explanation": "the conversation is longer than 4096 words"}),
    "error-rude": (422, {"category": "rude", "explanation": "this parrot does not repeat that"}),
    "error-no-such-bird": (404, {"category": "no_such_bird", "explanation": "no bird called error-no-such-bird"}),
    "error-broken": (500, {"category": "broken", "explanation": "the perch fell over"}),
}
_encode = msgspec.json.Encoder().encode


def problem(status: int, inner: dict[str, Any]) -> web.Response:
    return web.json_response({"problem": inner}, status=status)


class ParrotFake(FakeUpstream):
    greeting = "Hello from Parrot."

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v2/squawk", self.squawk)
        router.add_post("/v2/mimic", self.mimic)

    def refused(self, request: web.Request, bird: str) -> web.Response | None:
        key = request.headers.get("X-Parrot-Key")
        if self.api_key is not None and key != self.api_key:
            return problem(403, {"category": "bad_key", "explanation": f"{key!r} is not a key this parrot knows"})
        if bird in PROBLEMS:
            return problem(*PROBLEMS[bird])
        return None

    def lines(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The answer as chirp lines: start, words or trick pieces, end."""
        bird = body["bird"]
        out: list[dict[str, Any]] = [{"kind": "start", "squawk_id": "sq_0001", "bird": bird}]
        tricks = body.get("tricks") or []
        mode = body.get("trick_mode", "auto")
        last = body["conversation"][-1]
        if tricks and mode != "none" and last["speaker"] != "tool":
            wanted = mode.get("only") if isinstance(mode, dict) else None
            trick = next((t for t in tricks if t["trick"] == wanted), tricks[0])
            args = _encode({name: "Paris" for name in trick["shape"].get("properties") or {}}).decode()
            half = len(args) // 2
            out += [{"kind": "trick", "ticket": "tk_0001", "trick": trick["trick"], "with_part": args[:half]},
                    {"kind": "trick", "ticket": "tk_0001", "with_part": args[half:]}]
            said, why = 3, "trick"
        else:
            words = f"{self.greeting} {last['words']}".split(" ")
            out += [{"kind": "words", "text": w if i == 0 else " " + w} for i, w in enumerate(words)]
            said, why = len(words), "out_of_words" if bird == "long" else "done"
        out.append({"kind": "end", "why_stopped": why, "beak_count": {"heard": HEARD, "said": said}})
        return out

    def whole(self, lines: list[dict[str, Any]]) -> dict[str, Any]:
        """The JSON answer the lines make up."""
        start, end = lines[0], lines[-1]
        tricks: dict[str, dict[str, Any]] = {}
        for line in lines:
            if line["kind"] == "trick":
                ticket = line["ticket"]
                trick = tricks.setdefault(ticket, {"ticket": ticket, "trick": line.get("trick"), "with": ""})
                trick["with"] += line["with_part"]
        return {"squawk_id": start["squawk_id"], "bird": start["bird"],
                "said": "".join(line.get("text", "") for line in lines),
                "tricks_done": [{**t, "with": msgspec.json.decode(t["with"])} for t in tricks.values()],
                "why_stopped": end["why_stopped"], "beak_count": end["beak_count"]}

    async def squawk(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        bird = got.body["bird"]
        refused = self.refused(request, bird)
        if refused is not None:
            return refused
        lines = self.lines(got.body)
        if not got.body.get("chirp"):
            answer = _encode(self.whole(lines))
            if bird == "cut":
                return await cut_json(request, answer)
            return web.Response(body=answer, content_type="application/json")
        if bird == "cut":
            return await ndjson(request, lines, cut_after=2)
        if bird == "oops-mid":
            lines = [*lines[:2], {"kind": "oops", "problem": PROBLEMS["error-broken"][1]}]
        if bird == "no-end":
            lines = lines[:-1]
        return await ndjson(request, lines)

    async def mimic(self, request: web.Request) -> web.StreamResponse:
        got = await self.record(request)
        refused = self.refused(request, got.body["bird"])
        if refused is not None:
            return refused
        size = got.body.get("size") or 4
        echoes = [{"position": i, "vector": [float(i + 1)] + [0.25] * (size - 1)}
                  for i, _ in enumerate(got.body["phrases"])]
        return web.json_response({"echoes": echoes[::-1], "beak_count": {"heard": 2 * len(echoes)}})
