"""Model backends: llama.cpp in-process (default) or an OpenAI-compatible server.

llama-cpp-python is called directly rather than through LangChain's wrapper: we need its
GBNF grammars (citation markers as a format the model cannot skip) and control of its KV cache
(the fixed system prompt is evaluated once and its state restored, so each question only pays
for its own context and question tokens).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

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

    def _ensure_prefix(self, tokens: list[int]) -> None:
        """Make the KV cache start with `tokens`, from the live cache, a snapshot, or by evaluating."""
        current = list(self.llama._input_ids)
        if len(current) >= len(tokens) and current[: len(tokens)] == tokens:
            return
        key = tuple(tokens)
        state = self._states.get(key)
        if state is not None:
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
        self._remember(key)

    def _remember(self, key: tuple[int, ...]) -> None:
        state = self._snapshot()
        self._states[key] = state
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

    def complete(self, messages, *, max_tokens, grammar=None, prefix=None, stop=None, on_token=None, cancel=None) -> Completion:
        head, tail = self._split(messages, prefix)
        tokens = head + tail
        if len(tokens) + max_tokens > self.settings.n_ctx:
            raise GenerationError(
                f"the prompt needs {len(tokens) + max_tokens} tokens but the context window is {self.settings.n_ctx}; "
                f"lower NEWSBOT_CONTEXT_TOKENS or raise NEWSBOT_N_CTX"
            )
        with self._lock:
            started = time.perf_counter()
            self._evaluated = 0
            if prefix is not None and head:
                system_head = self.tokenize(self.render(messages[:1] + [Message(messages[-1].role, _SENTINEL)]).split(_SENTINEL, 1)[0])
                if _common_prefix(system_head, head) == len(system_head) and len(system_head) < len(head):
                    self._ensure_prefix(system_head)
                self._ensure_prefix(head)
            prefill = self._evaluated + len(tokens) - _common_prefix(list(self.llama._input_ids), tokens)
            stream = self.llama.create_completion(
                prompt=tokens, max_tokens=max_tokens, temperature=self.settings.temperature,
                top_k=1 if self.settings.temperature == 0 else 40, seed=self.settings.seed, stop=stop or [], stream=True,
                grammar=self._grammar(grammar) if grammar else None,
            )
            return _consume(stream, started, len(tokens), prefill, on_token, cancel)


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


class OpenAICompatibleLLM:
    """A model behind an OpenAI-compatible server (llama.cpp server, vLLM, ...)."""

    def __init__(self, settings: Settings) -> None:
        from openai import OpenAI

        self.settings = settings
        self.name = f"{settings.openai_model} @ {settings.openai_base_url}"
        self.client = OpenAI(
            base_url=settings.openai_base_url, api_key=settings.openai_api_key.get_secret_value(),
            timeout=settings.openai_timeout_s, max_retries=settings.openai_max_retries,
        )

    def count_tokens(self, text: str) -> int:
        from rag.text import approx_tokens

        return approx_tokens(text)

    def complete(self, messages, *, max_tokens, grammar=None, prefix=None, stop=None, on_token=None, cancel=None) -> Completion:
        import openai

        started = time.perf_counter()
        extra = {"grammar": grammar} if grammar else {}
        try:
            stream = self.client.chat.completions.create(
                model=self.settings.openai_model, messages=[{"role": m.role, "content": m.content} for m in messages],
                max_tokens=max_tokens, temperature=self.settings.temperature, seed=self.settings.seed, stop=stop or None,
                stream=True, extra_body=extra,
            )
            parts: list[str] = []
            first = 0.0
            generated = 0
            cancelled = False
            for chunk in stream:
                if cancel is not None and cancel.is_set():
                    cancelled = True
                    break
                if not chunk.choices:
                    continue
                piece = chunk.choices[0].delta.content or ""
                if piece:
                    generated += 1
                    first = first or time.perf_counter() - started
                    parts.append(piece)
                    if on_token:
                        on_token(piece)
            stream.close()
        except openai.APIConnectionError as exc:
            raise GenerationError(
                f"the model server at {self.settings.openai_base_url} is not reachable ({type(exc).__name__}); "
                f"start it or check NEWSBOT_OPENAI_BASE_URL"
            ) from None
        except openai.APITimeoutError:
            raise GenerationError(f"the model server at {self.settings.openai_base_url} timed out after {self.settings.openai_timeout_s:.0f} s") from None
        except openai.APIStatusError as exc:
            raise GenerationError(f"the model server answered HTTP {exc.status_code}; check NEWSBOT_OPENAI_MODEL and the server log") from None
        total = time.perf_counter() - started
        return Completion("".join(parts), 0, 0, generated, first or total, total, cancelled)


def make_llm(settings: Settings) -> LLM:
    """The backend chosen by NEWSBOT_LLM_BACKEND."""
    if settings.llm_backend == "openai":
        return OpenAICompatibleLLM(settings)
    from rag.models import resolve_model_path

    path = resolve_model_path(settings.model, settings.model_cache_dir)
    return LlamaCppLLM(path, settings, settings.model if not settings.model.endswith(".gguf") else Path(settings.model).name)
