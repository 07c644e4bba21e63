"""The OpenAI-compatible backend against a small fake server on 127.0.0.1 (no model needed).

The fake speaks just enough of the chat-completions streaming protocol (SSE over chunked
HTTP/1.1, as uvicorn sends it) to script failures: HTTP 500 before success, a stream cut off
after some tokens, a stream cut off before its first token, HTTP 400 for llama.cpp's fields,
a server that never answers, and a server that is not there at all.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rag.errors import GenerationError
from rag.llm.base import Message
from rag.llm.openai_server import OpenAICompatibleLLM, display_url
from rag.settings import Settings

SECRET = "sk-test-do-not-log-0123456789"
MESSAGES = [Message("system", "Du antwortest kurz."), Message("user", "Wie ist das Wetter?")]


class FakeServer:
    """Each POST to /v1/chat/completions takes the next scripted behaviour (the last one repeats)."""

    def __init__(self, script: list[str], pieces: list[str] | None = None, tokenize: bool = True) -> None:
        self.script = list(script)
        self.pieces = pieces or ["Es ", "regnet ", "[1]."]
        self.tokenize = tokenize
        self.requests: list[dict] = []
        self.times: list[float] = []
        self.headers: list[dict] = []
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep the test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.endswith("/extras/tokenize/count"):
                    if not fake.tokenize:
                        return self._json(404, {"detail": "Not Found"})
                    return self._json(200, {"count": len(body["input"].split())})
                if self.path.endswith("/tokenize"):
                    return self._json(404, {"detail": "Not Found"})
                fake.requests.append(body)
                fake.times.append(time.monotonic())
                fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                step = fake.script.pop(0) if len(fake.script) > 1 else fake.script[0]
                if step == "500":
                    return self._json(500, {"error": {"message": "model crashed", "type": "server_error"}})
                if step == "400-extras":
                    if "grammar" in body or "repeat_penalty" in body:
                        return self._json(400, {"error": {"message": "Unrecognized request argument supplied: grammar"}})
                    step = "ok"
                if step == "hang":
                    fake.release.wait(10)
                    return self._json(500, {"error": {"message": "too late"}})
                self._stream(step)

            def _json(self, status: int, data: dict) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _chunk(self, data: dict | str) -> None:
                payload = f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()
                self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
                self.wfile.flush()

            def _delta(self, content: str | None, finish: str | None = None) -> dict:
                delta = {"content": content} if content is not None else {"role": "assistant"}
                return {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "local",
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

            def _stream(self, step: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self._chunk(self._delta(None))
                if step == "drop-before-first-token":
                    return self._drop()
                for i, piece in enumerate(fake.pieces):
                    self._chunk(self._delta(piece))
                    if step == "drop-mid-stream" and i == 1:
                        return self._drop()
                if step == "no-finish":  # the body ends cleanly, but the answer never finished
                    self._chunk("[DONE]")
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self._chunk(self._delta("", "stop"))
                self._chunk("[DONE]")
                self.wfile.write(b"0\r\n\r\n")

            def _drop(self) -> None:
                """Cut the connection without ending the chunked body (what a killed server does)."""
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def make_llm(url: str, **overrides) -> OpenAICompatibleLLM:
    values = dict(llm_backend="openai", openai_base_url=url, openai_api_key=SECRET, openai_max_retries=3,
                  openai_timeout_s=5.0)
    values.update(overrides)
    llm = OpenAICompatibleLLM(Settings(_env_file=None, **values))  # type: ignore[call-arg]
    llm.BACKOFF_S = 0.2
    return llm


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_http_500_is_retried_with_exponential_backoff(caplog):
    caplog.set_level(logging.DEBUG)
    with FakeServer(["500", "500", "ok"]) as fake:
        llm = make_llm(fake.url)
        tokens: list[str] = []
        completion = llm.complete(MESSAGES, max_tokens=20, grammar='root ::= "x"', on_token=tokens.append)
    assert completion.text == "Es regnet [1]." and tokens == ["Es ", "regnet ", "[1]."]
    assert len(fake.requests) == 3
    gaps = [b - a for a, b in zip(fake.times, fake.times[1:])]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4, gaps  # 0.2 s, then 0.4 s
    body = fake.requests[-1]
    assert body["stream"] is True and body["temperature"] == 0.0
    assert body["grammar"] == 'root ::= "x"' and body["repeat_penalty"] == 1.0  # llama.cpp's fields
    assert fake.headers[0]["authorization"] == f"Bearer {SECRET}"
    assert "retry 1/3" in caplog.text and "retry 2/3" in caplog.text
    assert SECRET not in caplog.text


def test_stream_dropped_mid_answer_is_a_clear_error(caplog):
    caplog.set_level(logging.DEBUG)
    with FakeServer(["drop-mid-stream", "ok"]) as fake:
        llm = make_llm(fake.url)
        tokens: list[str] = []
        with pytest.raises(GenerationError) as err:
            llm.complete(MESSAGES, max_tokens=20, on_token=tokens.append)
    message = str(err.value)
    assert fake.url in message and "broke off mid-answer" in message
    assert tokens == ["Es ", "regnet "]  # what was shown is not silently continued by a second request
    assert len(fake.requests) == 1
    assert SECRET not in caplog.text and SECRET not in message


def test_stream_dropped_before_the_first_token_is_retried():
    with FakeServer(["drop-before-first-token", "ok"]) as fake:
        llm = make_llm(fake.url)
        completion = llm.complete(MESSAGES, max_tokens=20)
    assert completion.text == "Es regnet [1]." and len(fake.requests) == 2


def test_stream_ending_without_finish_reason_is_an_error():
    with FakeServer(["no-finish"]) as fake:
        llm = make_llm(fake.url)
        with pytest.raises(GenerationError, match="broke off mid-answer"):
            llm.complete(MESSAGES, max_tokens=20)


def test_server_rejecting_llama_fields_is_asked_without_them_and_logged_once(caplog):
    caplog.set_level(logging.WARNING)
    with FakeServer(["400-extras"]) as fake:
        llm = make_llm(fake.url)
        first = llm.complete(MESSAGES, max_tokens=20, grammar='root ::= "x"')
        second = llm.complete(MESSAGES, max_tokens=20, grammar='root ::= "x"')
    assert first.text == second.text == "Es regnet [1]."
    assert ["grammar" in body for body in fake.requests] == [True, False, False]  # no second 400
    assert caplog.text.count("rejects llama.cpp's request fields") == 1


def test_unreachable_server_names_the_url_after_retries():
    url = f"http://127.0.0.1:{free_port()}/v1"
    llm = make_llm(url, openai_max_retries=2)
    llm.BACKOFF_S = 0.05
    started = time.monotonic()
    with pytest.raises(GenerationError) as err:
        llm.complete(MESSAGES, max_tokens=20)
    assert url in str(err.value) and "not reachable" in str(err.value) and "2 retries" in str(err.value)
    assert time.monotonic() - started >= 0.05 + 0.1


def test_silent_server_times_out():
    with FakeServer(["hang"]) as fake:
        llm = make_llm(fake.url, openai_timeout_s=0.5)
        started = time.monotonic()
        with pytest.raises(GenerationError, match="sent nothing for"):
            llm.complete(MESSAGES, max_tokens=20)
        assert time.monotonic() - started < 5
        assert len(fake.requests) == 1  # a read timeout is not retried: it would only time out again


def test_cancel_stops_waiting_during_backoff():
    with FakeServer(["500"]) as fake:
        llm = make_llm(fake.url)
        llm.BACKOFF_S = 5.0
        cancel = threading.Event()
        threading.Timer(0.3, cancel.set).start()
        started = time.monotonic()
        completion = llm.complete(MESSAGES, max_tokens=20, cancel=cancel)
    assert completion.cancelled and time.monotonic() - started < 3


def test_token_counts_come_from_the_server_when_it_can_count():
    with FakeServer(["ok"]) as fake:
        assert make_llm(fake.url).count_tokens("eins zwei drei vier") == 4  # the fake counts words
    with FakeServer(["ok"], tokenize=False) as fake:
        llm = make_llm(fake.url)
        assert llm.count_tokens("a" * 64) == 20  # the character estimate
        assert llm._tokens.mode == "estimate"


def test_display_url_hides_credentials():
    assert display_url("https://user:secret@models.example:8443/v1?key=abc") == "https://models.example:8443/v1"
    llm = make_llm("http://bob:hunter2@127.0.0.1:9/v1")
    assert "hunter2" not in llm.name
