"""A model behind an OpenAI-compatible server (llama.cpp's llama-server, llama-cpp-python[server], vLLM):
streaming with retries, an exact token counter where the server offers one, and URL scrubbing."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

from rag.errors import GenerationError
from rag.llm.base import Choice, Completion
from rag.settings import Settings

logger = logging.getLogger(__name__)

# Token counts remembered per text (an LRU): a question's context sentences are counted again
# and again while the context is packed; 8192 entries cover the seed corpus many times over.
TOKEN_COUNT_CACHE_ENTRIES = 8192


def display_url(url: str) -> str:
    """The server URL as it may appear in messages and logs: no user:password@, no query string."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    except ValueError:
        return "<invalid URL>"


class OpenAICompatibleLLM:
    """A model behind an OpenAI-compatible server (llama.cpp's llama-server, llama-cpp-python[server], vLLM, ...).

    Streams the answer. Connection errors, connect timeouts, 408/429 and 5xx are retried with
    exponential backoff as long as no token has reached the caller (NEWSBOT_OPENAI_MAX_RETRIES
    times); a connection lost after that is a GenerationError, never a half answer passed on as
    whole. llama.cpp's sampling fields travel in `extra_body` (the GBNF `grammar`, and
    `repeat_penalty` 1.0 as in-process: llama-cpp-python's server defaults to 1.1); a server that
    rejects them with HTTP 400 is asked again without them, which is logged once (citations are
    then checked and repaired by rag/answering/cite.py alone). The API key goes only into the
    Authorization header, never into a message or log line.
    """

    BACKOFF_S = 0.5
    MAX_BACKOFF_S = 8.0
    supports_choice = False  # no next-token probabilities over HTTP: a greedy, grammar-constrained pick instead
    can_stream = True

    def __init__(self, settings: Settings) -> None:
        import openai

        self.settings = settings
        self.url = display_url(settings.openai_base_url)
        self.name = f"{settings.openai_model} @ {self.url}"
        timeout = openai.Timeout(settings.openai_timeout_s, connect=min(10.0, settings.openai_timeout_s))
        # Retries are ours (below), so that a stream that breaks before its first token is retried too.
        self.client = openai.OpenAI(
            base_url=settings.openai_base_url, api_key=settings.openai_api_key.get_secret_value(),
            timeout=timeout, max_retries=0,
        )
        self._extras_ok = True
        self._tokens = _ServerTokenCounter(settings, self.url)

    def count_tokens(self, text: str) -> int:
        return self._tokens.count(text)

    def choose(self, messages, *, prefix, options, refusal) -> Choice | None:
        return None  # see supports_choice

    def forget_states(self) -> None:
        """Nothing cached here (the server keeps its own cache)."""

    def _extras(self, grammar: str | None) -> dict:
        extra: dict = {"repeat_penalty": 1.0, "stream_options": {"include_usage": True}}
        if grammar:
            extra["grammar"] = grammar
        return extra

    def complete(self, messages, *, max_tokens, grammar=None, prefix=None, stop=None, on_token=None, cancel=None) -> Completion:
        import openai

        started = time.perf_counter()
        request = dict(
            model=self.settings.openai_model, messages=[{"role": m.role, "content": m.content} for m in messages],
            max_tokens=max_tokens, temperature=self.settings.temperature, seed=self.settings.seed, stop=stop or None,
            stream=True,
        )
        use_extras = self._extras_ok
        retries = 0
        while True:
            parts: list[str] = []
            try:
                return self._stream(request, self._extras(grammar) if use_extras else None, started, parts, on_token, cancel,
                                    after_plain_retry=use_extras != self._extras_ok)
            except openai.BadRequestError as exc:
                if use_extras:
                    use_extras = False  # perhaps the llama.cpp fields; once more without them
                    logger.info("model server at %s answered HTTP 400 to a request with llama.cpp fields; retrying without them", self.url)
                    continue
                raise GenerationError(f"the model server at {self.url} rejected the request (HTTP 400: {_short(exc)})") from None
            except openai.APIStatusError as exc:
                if exc.status_code in (401, 403):
                    raise GenerationError(
                        f"the model server at {self.url} refused the API key (HTTP {exc.status_code}); check NEWSBOT_OPENAI_API_KEY"
                    ) from None
                if exc.status_code == 404:
                    raise GenerationError(
                        f"the model server at {self.url} answered HTTP 404; check NEWSBOT_OPENAI_BASE_URL (usually ends in /v1) "
                        f"and NEWSBOT_OPENAI_MODEL={self.settings.openai_model!r}"
                    ) from None
                if exc.status_code not in (408, 409, 429) and exc.status_code < 500:
                    raise GenerationError(f"the model server at {self.url} answered HTTP {exc.status_code} ({_short(exc)})") from None
                problem = f"HTTP {exc.status_code}"
            except openai.APITimeoutError as exc:
                if not isinstance(exc.__cause__, _connect_errors()):
                    raise GenerationError(
                        f"the model server at {self.url} sent nothing for {self.settings.openai_timeout_s:.0f} s "
                        f"(NEWSBOT_OPENAI_TIMEOUT_S); it may be overloaded"
                    ) from None
                problem = "connect timeout"
            except openai.APIConnectionError as exc:
                problem = type(exc.__cause__).__name__ if exc.__cause__ is not None else "connection error"
            except openai.APIError as exc:  # an error event inside the stream
                raise GenerationError(f"the model server at {self.url} reported an error: {_short(exc)}") from None
            except _StreamCut:
                problem = "the stream ended before the answer did"
            if parts:
                raise GenerationError(
                    f"the connection to the model server at {self.url} broke off mid-answer ({problem}); ask again"
                ) from None
            if retries >= self.settings.openai_max_retries:
                tried = f", {retries} retries" if retries else ""
                if problem.startswith("HTTP"):
                    raise GenerationError(f"the model server at {self.url} keeps failing ({problem}{tried}); see its log") from None
                raise GenerationError(
                    f"the model server at {self.url} is not reachable ({problem}{tried}); start it or check NEWSBOT_OPENAI_BASE_URL"
                ) from None
            delay = min(self.MAX_BACKOFF_S, self.BACKOFF_S * 2 ** retries)
            retries += 1
            logger.warning("model server at %s: %s; retry %d/%d in %.1f s", self.url, problem, retries,
                           self.settings.openai_max_retries, delay)
            if cancel is not None:
                if cancel.wait(delay):
                    total = time.perf_counter() - started
                    return Completion("", 0, 0, 0, total, total, cancelled=True)
            else:
                time.sleep(delay)

    def _stream(self, request: dict, extra: dict | None, started: float, parts: list[str], on_token, cancel,
                after_plain_retry: bool) -> Completion:
        stream = self.client.chat.completions.create(**request, extra_body=extra)
        first = 0.0
        generated = 0
        prompt_tokens = 0
        cancelled = False
        finished = False
        try:
            for chunk in stream:
                if cancel is not None and cancel.is_set():
                    cancelled = True
                    break
                usage = getattr(chunk, "usage", None)
                if usage is not None:
                    prompt_tokens = usage.prompt_tokens or prompt_tokens
                    generated = usage.completion_tokens or generated
                if not chunk.choices:
                    continue
                finished = finished or chunk.choices[0].finish_reason is not None
                delta = chunk.choices[0].delta
                piece = (delta.content if delta is not None else None) or ""
                if piece:
                    first = first or time.perf_counter() - started
                    parts.append(piece)
                    if on_token:
                        on_token(piece)
        finally:
            stream.close()
        if not cancelled and not finished:
            raise _StreamCut()
        if after_plain_retry and extra is None and self._extras_ok:
            self._extras_ok = False
            logger.warning(
                "the model server at %s rejects llama.cpp's request fields (grammar, repeat_penalty); answering without "
                "them from now on (citations are still verified and repaired)", self.url,
            )
        total = time.perf_counter() - started
        generated = max(generated, len(parts))
        return Completion("".join(parts), prompt_tokens, prompt_tokens, generated, first or total, total, cancelled)


class _StreamCut(Exception):
    """The stream ended without a finish_reason: the server went away mid-answer."""


def _connect_errors() -> tuple[type[BaseException], ...]:
    import httpx

    errors: list[type[BaseException]] = [httpx.ConnectTimeout, httpx.ConnectError]
    try:
        import httpx2

        errors += [httpx2.ConnectTimeout, httpx2.ConnectError]
    except ImportError:
        pass
    return tuple(errors)


def _short(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return " ".join(str(message).split())[:200]


class _ServerTokenCounter:
    """Exact token counts from the model server's tokenize endpoint where it has one.

    llama-cpp-python's server has POST /extras/tokenize/count, llama.cpp's llama-server and vLLM
    POST /tokenize. The first count probes them; a server with neither (or a failing request)
    gets the character estimate, as the in-process backend does before its model is loaded.
    """

    def __init__(self, settings: Settings, url: str) -> None:
        root = settings.openai_base_url.rstrip("/")
        self.root = root[:-3] if root.endswith("/v1") else root
        self.url = url
        self.model = settings.openai_model
        self.timeout = min(10.0, settings.openai_timeout_s)
        self.headers = {"Authorization": f"Bearer {settings.openai_api_key.get_secret_value()}"}
        self.mode: str | None = None  # "extras", "tokenize" or "estimate"
        self._cache: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()
        self._client = None

    def count(self, text: str) -> int:
        from rag.text import approx_tokens

        with self._lock:
            cached = self._cache.get(text)
            if cached is not None:
                self._cache.move_to_end(text)
                return cached
            if self.mode == "estimate":
                return approx_tokens(text)
            try:
                n = self._ask(text)
            except Exception as exc:  # noqa: BLE001 - counting must never break answering
                logger.debug("token count from %s failed (%s); estimating", self.url, type(exc).__name__)
                return approx_tokens(text)
            if n is None:
                return approx_tokens(text)
            self._cache[text] = n
            if len(self._cache) > TOKEN_COUNT_CACHE_ENTRIES:
                self._cache.popitem(last=False)
            return n

    def _ask(self, text: str) -> int | None:
        import httpx

        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout, headers=self.headers)
        modes = [self.mode] if self.mode else ["extras", "tokenize"]
        for mode in modes:
            if mode == "extras":
                response = self._client.post(f"{self.root}/extras/tokenize/count", json={"input": text, "model": self.model})
            else:
                response = self._client.post(f"{self.root}/tokenize", json={
                    "content": text, "prompt": text, "model": self.model, "add_special": False, "add_special_tokens": False,
                })
            if response.status_code in (404, 405, 422, 400):
                continue
            response.raise_for_status()
            data = response.json()
            n = data.get("count") if isinstance(data.get("count"), int) else len(data["tokens"]) if isinstance(data.get("tokens"), list) else None
            if n is None:
                continue
            if self.mode is None:
                self.mode = mode
                logger.info("token counts from the model server's %s endpoint", "/extras/tokenize/count" if mode == "extras" else "/tokenize")
            return n
        if self.mode is None:
            self.mode = "estimate"
            logger.info("the model server at %s has no tokenize endpoint; estimating token counts", self.url)
        return None
