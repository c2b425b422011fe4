"""The request guard in front of MLflow's scoring app (``ttsctr.http_guard``), without a server.

The scanner is checked against ``json`` on generated documents (depth, literals outside strings,
escapes and brackets inside strings) and on adversarial bodies; the ASGI middleware with a stub
app and hand-made ``receive``/``send``: a ``Content-Length`` over the limit is refused before the
body is read, a chunked body as soon as the streamed bytes pass the limit, and a body that passes
reaches the app unchanged. The same checks over real HTTP are in
``tests/pipelines/test_serving_http.py``.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import pytest

from ttsctr.http_guard import (DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DEPTH, JsonGuard, max_nesting_depth,
                               scan_json, scan_structure)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


_TRICKY = ["[", "]", "{", "}", '"', "\\", "N", "I", "NaN", "Infinity", "a", "é", "\n", "\u2028", "😀"]


def _document(rng: random.Random, level: int = 0) -> Any:
    r = rng.random()
    if level > 7 or r < 0.3:
        text = "".join(rng.choice(_TRICKY) for _ in range(rng.randint(0, 5)))
        return rng.choice([1, -2.5, None, True, 2**70, text])
    if r < 0.65:
        return [_document(rng, level + 1) for _ in range(rng.randint(0, 3))]
    return {"".join(rng.choice(_TRICKY) for _ in range(rng.randint(0, 3))): _document(rng, level + 1)
            for _ in range(rng.randint(0, 3))}


def test_depth_and_literals_match_json_on_generated_documents() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        doc = _document(rng)
        for ensure_ascii in (True, False):
            body = json.dumps(doc, ensure_ascii=ensure_ascii).encode()
            found = scan_structure(body)
            assert (found.depth, found.literal) == (_depth(doc), None), body
        if isinstance(doc, list):  # a literal after (or before) strings full of brackets, quotes, escapes
            assert scan_structure(json.dumps([*doc, float("nan")]).encode()).literal == "NaN"
            assert scan_structure(json.dumps([float("-inf"), *doc]).encode()).literal == "-Infinity"
            assert scan_structure(json.dumps({"x": doc, "y": float("inf")}).encode()).literal == "Infinity"


@pytest.mark.parametrize("body, depth", [
    (b"", 0), (b"1", 0), (b"[]", 1), (b"{}", 1), (b'{"a": [{"b": [1]}]}', 4),
    (b'["]]]]", "[[[["]', 1),                   # brackets inside strings do not count
    (b'["\\"[[", "\\\\", ["x"]]', 2),          # escaped quote and escaped backslash
    (b'["\\\\\\"[", [1]]', 2),                  # \\ then \" inside one string
    (b'[[["unterminated [[[[', 3),              # an unterminated string runs to the end
    (b"]]]][[", 0),                             # invalid: json stops at the first ]
])
def test_depth_by_hand(body: bytes, depth: int) -> None:
    assert max_nesting_depth(body) == depth


def test_a_thousand_levels_is_refused_and_a_valid_request_passes() -> None:
    deep = b'{"dataframe_records": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    with pytest.raises(RecursionError):
        json.loads(deep)  # what MLflow's server does with it (HTTP 500)
    rejection = scan_json(deep)
    assert rejection is not None and rejection.status == 400 and rejection.error_code == "BAD_REQUEST"
    assert f"more than {DEFAULT_MAX_DEPTH} levels" in rejection.message and "--max-depth" in rejection.message
    records = {"dataframe_records": [{"I1": 1, "C1": "68fd1e64"}]}
    split = {"dataframe_split": {"columns": ["I1", "C1"], "data": [[1, "68fd1e64"]]}}
    assert max_nesting_depth(json.dumps(records).encode()) == 3
    assert max_nesting_depth(json.dumps(split).encode()) == 4
    assert scan_json(json.dumps(records).encode()) is None and scan_json(json.dumps(split).encode()) is None
    assert scan_json(b"[" * 32 + b"]" * 32) is None
    assert scan_json(b"[" * 33 + b"]" * 33) is not None
    assert scan_json(b"[" * 5 + b"]" * 5, max_depth=4) is not None


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_number_literals_are_refused_outside_strings_only(literal: str) -> None:
    body = f'{{"dataframe_records": [{{"I1": {literal}, "C1": "x"}}]}}'.encode()
    rejection = scan_json(body)
    assert rejection is not None and rejection.status == 400
    assert f"literal {literal} " in rejection.message and "null" in rejection.message
    inside = f'{{"dataframe_records": [{{"C1": "{literal}", "C2": "a\\"{literal}"}}]}}'.encode()
    assert scan_json(inside) is None  # a category spelled NaN is a string like any other


def test_bodies_that_are_not_utf8_are_refused() -> None:
    for body in (b"\xff\xfe\x00", b'{"C1": "\xed\xa0\x80"}', '{"C1": "é"}'.encode("latin-1")):
        rejection = scan_json(body)
        assert rejection is not None and rejection.status == 400
        assert "not valid JSON" in rejection.message and "UTF-8" in rejection.message
    assert scan_json('{"C1": "é😀"}'.encode()) is None


def test_invalid_json_of_other_kinds_is_left_to_the_parser() -> None:
    for body in (b"", b"{", b'{"a": 1,', b"nonsense", b'{"a": None}', b'["\\ud800"]'):
        assert scan_json(body) is None


@pytest.mark.parametrize("name, body", [
    ("brackets", b"[" * DEFAULT_MAX_BODY_BYTES),
    ("quotes and escapes", b'"\\"' * (DEFAULT_MAX_BODY_BYTES // 3)),
    ("backslashes", b"\\" * DEFAULT_MAX_BODY_BYTES),
    ("tiny strings", b'["' + b'a", "' * (DEFAULT_MAX_BODY_BYTES // 5) + b'"]'),
])
def test_adversarial_16mib_bodies_scan_in_linear_time(name: str, body: bytes) -> None:
    t0 = time.perf_counter()
    scan_json(body)
    assert time.perf_counter() - t0 < 5.0, name  # ~0.1 s each on 2 cores; quadratic would be hours


# ---- the ASGI middleware --------------------------------------------------------------------

class _App:
    """Stub ASGI app: records the body it received and answers 200."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def _call(guard: JsonGuard, chunks: list[bytes], headers: dict[str, str] | None = None,
          method: str = "POST") -> tuple[int, Any, int]:
    """(status, decoded body, number of body chunks the guard read) of one request."""
    headers = {"content-type": "application/json", **(headers or {})}
    scope = {"type": "http", "method": method, "path": "/invocations",
             "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}
    read = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal read
        if read < len(chunks):
            read += 1
            return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    try:
        return status, json.loads(body), read
    except ValueError:
        return status, body, read


def test_content_length_over_the_limit_is_413_before_reading_the_body() -> None:
    app = _App()
    guard = JsonGuard(app, max_body_bytes=100)
    status, answer, read = _call(guard, [b"x" * 101], {"content-length": "101"})
    assert (status, read, app.bodies) == (413, 0, [])
    assert answer["error_code"] == "RESOURCE_EXHAUSTED"
    assert "larger than 100 bytes" in answer["message"] and "--max-body-bytes" in answer["message"]
    status, _, _ = _call(guard, [b"[]"], {"content-length": "10" * 20})
    assert status == 413


def test_a_streamed_body_over_the_limit_is_413_as_soon_as_it_passes() -> None:
    app = _App()
    guard = JsonGuard(app, max_body_bytes=100)
    status, answer, read = _call(guard, [b"[" * 60, b" " * 60, b"]" * 60, b" " * 60])  # no Content-Length
    assert (status, read, app.bodies) == (413, 2, [])
    assert "more than 100 bytes streamed" in answer["message"]


def test_a_body_of_exactly_the_limit_passes() -> None:
    app = _App()
    guard = JsonGuard(app, max_body_bytes=100)
    body = b"[" + b" " * 98 + b"]"
    assert _call(guard, [body], {"content-length": "100"})[0] == 200
    assert _call(guard, [body[:50], body[50:]])[0] == 200
    assert app.bodies == [body, body]


def test_a_body_that_passes_reaches_the_app_unchanged() -> None:
    app = _App()
    guard = JsonGuard(app, max_body_bytes=100, max_depth=3)
    parts = [b'{"dataframe_records": ', b'[{"C1": "NaN"}', b"]}"]
    assert _call(guard, parts)[0] == 200
    assert _call(guard, [b"a,b\nNaN,1\n"], {"content-type": "text/csv"})[0] == 200  # only JSON is scanned
    assert _call(guard, [b""], method="GET")[0] == 200
    assert app.bodies == [b"".join(parts), b"a,b\nNaN,1\n", b""]
    status, answer, _ = _call(guard, [b'{"a": [[[1]]]}'])
    assert status == 400 and "more than 3 levels" in answer["message"]
    status, answer, _ = _call(guard, [b'{"a": [NaN]}'], {"content-type": "Application/JSON; charset=utf-8"})
    assert status == 400 and "NaN" in answer["message"]
    assert len(app.bodies) == 3


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        JsonGuard(_App(), max_body_bytes=0)
    with pytest.raises(ValueError):
        JsonGuard(_App(), max_depth=0)
