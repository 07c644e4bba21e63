"""Model backends: llama.cpp in-process (default) or an OpenAI-compatible server.

llama-cpp-python is called directly rather than through LangChain's wrapper: we need the
model's next-token probabilities (which numbered sentence it would cite, see `choose`), GBNF
grammars (output formats a small model cannot break) and control of its KV cache (the system
prompt and the first context block are evaluated once and their states restored, so each
question only pays for the rest of its context and itself).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from rag.settings import Settings

logger = logging.getLogger(__name__)

OnToken = Callable[[str], None]


class GenerationError(Exception):
    """The model could not produce an answer; the message is safe to show."""


@dataclass
class Message:
    role: str
    content: str


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    prefill_tokens: int = 0  # prompt tokens actually evaluated (the rest came from the KV cache)
    generated_tokens: int = 0
    first_token_s: float = 0.0
    total_s: float = 0.0
    cancelled: bool = False


@dataclass
class Choice:
    """The model's preference among numbered context sentences, read from its next-token
    distribution: log-probabilities of citing [1]..[k], and how much more likely it is to write
    the refusal token than to cite anything (log P(refusal) - log P("["))."""

    logprobs: dict[int, float]
    refusal_margin: float
    prompt_tokens: int = 0
    prefill_tokens: int = 0
    total_s: float = 0.0
    generated_tokens: int = 0  # a greedy pick's tokens, where the backend had to generate one


class LLM(Protocol):
    name: str

    def count_tokens(self, text: str) -> int: ...

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        grammar: str | None = None,
        prefix: str | None = None,
        stop: list[str] | None = None,
        on_token: OnToken | None = None,
        cancel: threading.Event | None = None,
    ) -> Completion: ...


class LlamaCppLLM:
    """One llama.cpp model behind a lock; prefix KV states cached per system prompt."""

    def __init__(self, model_path: Path, settings: Settings, name: str) -> None:
        from llama_cpp import Llama

        self.name = name
        self.settings = settings
        threads = settings.n_threads or _physical_cores()
        try:
            self.llama = Llama(
                model_path=str(model_path), n_ctx=settings.n_ctx, n_threads=threads, n_threads_batch=threads,
                n_batch=settings.n_batch, n_ubatch=settings.n_batch, n_gpu_layers=settings.n_gpu_layers,
                seed=settings.seed, verbose=False, flash_attn=settings.n_gpu_layers != 0,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise GenerationError(
                f"llama.cpp could not load {model_path} ({exc}); the file may be corrupt or not a supported GGUF. "
                f"Delete it and run `newsbot models --path` to assemble it again, or point NEWSBOT_MODEL at another .gguf"
            ) from None
        self._lock = threading.Lock()
        self._states: OrderedDict[tuple[int, ...], _KVState] = OrderedDict()
        self._grammars: dict[str, object] = {}
        self._evaluated = 0
        self._system_keys: set[tuple[int, ...]] = set()
        self.state_dir: Path | None = settings.data_dir / "kv" / f"{name}-{model_path.stat().st_size}" if settings.kv_cache_mb else None
        self._formatter = self._make_formatter()

    def _make_formatter(self):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llama.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        eos = self.llama._model.token_get_text(self.llama.token_eos()) if self.llama.token_eos() >= 0 else ""
        bos = self.llama._model.token_get_text(self.llama.token_bos()) if self.llama.token_bos() >= 0 else ""
        return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos, add_generation_prompt=True)

    def render(self, messages: list[Message]) -> str:
        if self._formatter is None:  # a model without a chat template: plain ChatML
            body = "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in messages)
            return body + "<|im_start|>assistant\n"
        return self._formatter(messages=[{"role": m.role, "content": m.content} for m in messages]).prompt

    def tokenize(self, text: str) -> list[int]:
        return self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _grammar(self, gbnf: str):
        from llama_cpp import LlamaGrammar

        if gbnf not in self._grammars:
            self._grammars[gbnf] = LlamaGrammar.from_string(gbnf, verbose=False)
        return self._grammars[gbnf]

    def _snapshot(self) -> "_KVState":
        """The KV cache as bytes; llama-cpp's save_state also copies a logits matrix of up to
        n_batch x vocab floats (hundreds of MB), which we never need since a suffix always follows."""
        import ctypes

        import llama_cpp

        ctx = self.llama._ctx.ctx
        size = llama_cpp.llama_state_get_size(ctx)
        buffer = (ctypes.c_uint8 * int(size))()
        written = llama_cpp.llama_state_get_data(ctx, buffer, size)
        return _KVState(bytes(buffer[: int(written)]), list(self.llama._input_ids))

    def _restore(self, state: "_KVState") -> None:
        import ctypes

        import llama_cpp

        data = (ctypes.c_uint8 * len(state.data)).from_buffer_copy(state.data)
        if llama_cpp.llama_state_set_data(self.llama._ctx.ctx, data, len(state.data)) != len(state.data):
            raise GenerationError("could not restore a cached model state")
        n = len(state.tokens)
        self.llama.input_ids[:n] = state.tokens
        self.llama.n_tokens = n
        self.llama._requires_eval = True

    def _disk_path(self, key: tuple[int, ...]) -> Path | None:
        if self.state_dir is None:
            return None
        digest = hashlib.sha1(repr(key).encode()).hexdigest()
        return self.state_dir / f"{digest}.kv"

    def _load_disk(self, key: tuple[int, ...]) -> "_KVState | None":
        path = self._disk_path(key)
        if path is None or not path.is_file():
            return None
        try:
            raw = path.read_bytes()
            n = int.from_bytes(raw[:4], "little")
            tokens = list(np.frombuffer(raw[4:4 + 4 * n], dtype=np.int32))
            if tuple(tokens) != key:
                return None
            os.utime(path)
            return _KVState(raw[4 + 4 * n:], [int(t) for t in tokens])
        except (OSError, ValueError):
            return None

    def _save_disk(self, state: "_KVState") -> None:
        path = self._disk_path(tuple(state.tokens))
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(len(state.tokens).to_bytes(4, "little") + np.asarray(state.tokens, dtype=np.int32).tobytes() + state.data)
            os.replace(tmp, path)
            files = sorted(self.state_dir.glob("*.kv"), key=lambda p: p.stat().st_mtime)
            budget = self.settings.kv_cache_mb * 1024 * 1024
            total = sum(p.stat().st_size for p in files)
            while files and total > budget:
                oldest = files.pop(0)
                total -= oldest.stat().st_size
                oldest.unlink(missing_ok=True)
        except OSError as exc:  # a full disk must not break answering
            logger.warning("could not persist a model state: %s", exc)

    def forget_states(self) -> None:
        """Drop every cached chunk state (RAM, and disk for this process) but the system prompts'."""
        self._states = OrderedDict((k, v) for k, v in self._states.items() if k in self._system_keys)
        self.state_dir = None

    def _ensure_prefix(self, tokens: list[int], persist: bool = False) -> None:
        """Make the KV cache start with `tokens`, from the live cache, a snapshot, or by evaluating."""
        current = list(self.llama._input_ids)
        if len(current) >= len(tokens) and current[: len(tokens)] == tokens:
            return
        key = tuple(tokens)
        state = self._states.get(key) or self._load_disk(key)
        if state is not None:
            self._states[key] = state
            self._states.move_to_end(key)
            self._restore(state)
            return
        # the longest cached snapshot that is a prefix of what we need (e.g. the system prompt)
        best: _KVState | None = None
        for snapshot_key, snapshot in self._states.items():
            n = len(snapshot_key)
            if n < len(tokens) and tokens[:n] == list(snapshot_key) and (best is None or n > len(best.tokens)):
                best = snapshot
        live = _common_prefix(current, tokens)
        if best is not None and len(best.tokens) > live:
            self._restore(best)
            live = len(best.tokens)
        if live == 0:
            self.llama.reset()
        else:
            self.llama._ctx.kv_cache_seq_rm(-1, live, -1)
            self.llama.n_tokens = live
        self.llama.eval(tokens[live:])
        self._evaluated += len(tokens) - live
        self._remember(key, persist)

    def _remember(self, key: tuple[int, ...], persist: bool = False) -> None:
        state = self._snapshot()
        self._states[key] = state
        if persist:
            self._save_disk(state)
        budget = self.settings.kv_cache_mb * 1024 * 1024
        while len(self._states) > 1 and sum(len(s.data) for s in self._states.values()) > budget:
            self._states.popitem(last=False)

    def _split(self, messages: list[Message], prefix: str | None) -> tuple[list[int], list[int]]:
        """Tokens of the cacheable head (system prompt + `prefix` of the last message) and the rest.

        The two parts are tokenized separately and concatenated, so the head's tokens are the
        same for every question that shares it, whatever follows."""
        last = messages[-1]
        if prefix is None or not last.content.startswith(prefix):
            prefix = ""
        marked = messages[:-1] + [Message(last.role, prefix + _SENTINEL + last.content[len(prefix):])]
        head, tail = self.render(marked).split(_SENTINEL, 1)
        return self.tokenize(head), self.tokenize(tail)

    def _fitting(self, messages: list[Message], prefix: str | None, room: int) -> tuple[list[int], list[int]]:
        """The cacheable head and all prompt tokens, checked to leave `room` tokens in the window."""
        head, tail = self._split(messages, prefix)
        tokens = head + tail
        if len(tokens) + room > self.settings.n_ctx:
            raise GenerationError(
                f"the prompt needs {len(tokens) + room} tokens but the context window is {self.settings.n_ctx}; "
                f"lower NEWSBOT_CONTEXT_TOKENS or raise NEWSBOT_N_CTX"
            )
        return head, tokens

    def complete(self, messages, *, max_tokens, grammar=None, prefix=None, stop=None, on_token=None, cancel=None) -> Completion:
        head, tokens = self._fitting(messages, prefix, max_tokens)
        with self._lock:
            started = time.perf_counter()
            self._prepare(messages, prefix, head)
            prefill = self._evaluated + len(tokens) - _common_prefix(list(self.llama._input_ids), tokens)
            stream = self.llama.create_completion(
                prompt=tokens, max_tokens=max_tokens, temperature=self.settings.temperature,
                top_k=1 if self.settings.temperature == 0 else 40, seed=self.settings.seed, stop=stop or [], stream=True,
                grammar=self._grammar(grammar) if grammar else None,
            )
            return _consume(stream, started, len(tokens), prefill, on_token, cancel)


    def _prepare(self, messages: list[Message], prefix: str | None, head: list[int]) -> None:
        """Bring the KV cache to the cacheable head: system prompt state, then the prefix state."""
        self._evaluated = 0
        if prefix is None or not head:
            return
        system_head = self.tokenize(self.render(messages[:1] + [Message(messages[-1].role, _SENTINEL)]).split(_SENTINEL, 1)[0])
        if _common_prefix(system_head, head) == len(system_head) and len(system_head) < len(head):
            self._ensure_prefix(system_head)
            self._system_keys.add(tuple(system_head))
        self._ensure_prefix(head, persist=bool(prefix))
        if not prefix:
            self._system_keys.add(tuple(head))

    def _option_tokens(self) -> tuple[int, list[int]] | None:
        """The "[" token and the digit tokens 1..9, if this tokenizer writes "[n]" as "[" + digit."""
        if not hasattr(self, "_options"):
            bracket = self.tokenize("[")
            digits = [self.tokenize(f"[{n}") for n in range(1, 10)]
            ok = len(bracket) == 1 and all(len(d) == 2 and d[0] == bracket[0] for d in digits)
            self._options = (bracket[0], [d[1] for d in digits]) if ok else None
        return self._options

    def choose(self, messages: list[Message], *, prefix: str | None, options: int, refusal: str) -> Choice | None:
        """Which numbered sentence the model would cite, as probabilities rather than one greedy pick.

        One prompt evaluation (from the cached prefix) plus one token: the logits before "[" give
        the refusal margin, those after it the distribution over [1]..[options]. None when the
        tokenizer does not write the markers as "[" + one digit."""
        markers = self._option_tokens()
        if markers is None or not 1 <= options <= 9:
            return None
        bracket, digits = markers
        head, tokens = self._fitting(messages, prefix, 2)
        with self._lock:
            started = time.perf_counter()
            self._prepare(messages, prefix, head)
            live = min(_common_prefix(list(self.llama._input_ids), tokens), len(tokens) - 1)  # the last token's logits are needed
            self.llama.n_tokens = live
            self.llama.eval(tokens[live:])
            before = self._logprobs()
            self.llama.eval([bracket])
            after = self._logprobs()
            refusal_token = self.tokenize(refusal)[0]
            return Choice(
                {n: float(after[digits[n - 1]]) for n in range(1, options + 1)},
                float(before[refusal_token] - before[bracket]),
                len(tokens), self._evaluated + len(tokens) - live, time.perf_counter() - started,
            )

    def _logprobs(self) -> np.ndarray:
        logits = np.ctypeslib.as_array(self.llama._ctx.get_logits(), shape=(self.llama.n_vocab(),)).astype(np.float64)
        return logits - np.logaddexp.reduce(logits)


_SENTINEL = "\u0000NEWSBOT-SPLIT\u0000"


@dataclass
class _KVState:
    data: bytes
    tokens: list[int]


def _consume(stream, started: float, prompt_tokens: int, prefill: int, on_token, cancel) -> Completion:
    parts: list[str] = []
    first = 0.0
    generated = 0
    cancelled = False
    try:
        for chunk in stream:
            if cancel is not None and cancel.is_set():
                cancelled = True
                break
            piece = chunk["choices"][0].get("text") or (chunk["choices"][0].get("delta") or {}).get("content") or ""
            generated += 1
            if piece:
                if not first:
                    first = time.perf_counter() - started
                parts.append(piece)
                if on_token:
                    on_token(piece)
    finally:
        close = getattr(stream, "close", None)
        if close:
            close()
    total = time.perf_counter() - started
    return Completion("".join(parts), prompt_tokens, prefill, generated, first or total, total, cancelled)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _physical_cores() -> int:
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


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
    then checked and repaired by rag/cite.py alone). The API key goes only into the
    Authorization header, never into a message or log line.
    """

    BACKOFF_S = 0.5
    MAX_BACKOFF_S = 8.0

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
            if len(self._cache) > 8192:
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


def make_llm(settings: Settings) -> LLM:
    """The backend chosen by NEWSBOT_LLM_BACKEND."""
    if settings.llm_backend == "openai":
        return OpenAICompatibleLLM(settings)
    from rag.models import resolve_model_path

    path = resolve_model_path(settings.model, settings.model_cache_dir)
    return LlamaCppLLM(path, settings, settings.model if not settings.model.endswith(".gguf") else Path(settings.model).name)
