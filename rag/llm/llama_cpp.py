"""The in-process backend: one GGUF model through llama-cpp-python (the default).

llama-cpp-python is called directly rather than through LangChain's wrapper: we need the
model's next-token probabilities (which numbered sentence it would cite, see `choose`), GBNF
grammars (output formats a small model cannot break) and control of its KV cache (the system
prompt and the first context block are evaluated once and their states restored, so each
question only pays for the rest of its context and itself).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np

from rag.errors import GenerationError
from rag.llm.base import Choice, Completion, Message
from rag.llm.kv_cache import BlockStore, KVState, KVStateCache, state_name
from rag.llm.template import template_pieces
from rag.settings import Settings

logger = logging.getLogger(__name__)


class LlamaCppLLM:
    """One llama.cpp model behind a lock; prefix KV states cached per system prompt."""

    supports_choice = True  # next-token probabilities in process (`choose` returns None for odd tokenizers)
    can_stream = True

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
        self._grammars: dict[str, object] = {}
        self._evaluated = 0
        size = model_path.stat().st_size
        # what a saved state depends on besides its tokens: the same file name only for the same model and layout
        self.identity = f"{name}|{size}|llama-cpp-python {_llama_version()}|n_ctx {settings.n_ctx}|flash {settings.n_gpu_layers != 0}"
        self.blocks = BlockStore(settings.data_dir / "kv" / "blocks" / f"{name}-{size}", self.identity) if settings.block_states_mb else None
        state_dir = settings.data_dir / "kv" / f"{name}-{size}" if settings.kv_cache_mb else None
        self.states = KVStateCache(state_dir, settings.kv_cache_mb, self.identity, self.blocks)
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

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        """Tokens of `text`; `special` only for the chat template's own markup, never for message
        contents (an article's "<|im_end|>" must stay plain text, not close the fence)."""
        return self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _grammar(self, gbnf: str):
        from llama_cpp import LlamaGrammar

        if gbnf not in self._grammars:
            self._grammars[gbnf] = LlamaGrammar.from_string(gbnf, verbose=False)
        return self._grammars[gbnf]

    def _snapshot(self) -> KVState:
        """The KV cache as bytes; llama-cpp's save_state also copies a logits matrix of up to
        n_batch x vocab floats (hundreds of MB), which we never need since a suffix always follows."""
        import ctypes

        import llama_cpp

        ctx = self.llama._ctx.ctx
        size = llama_cpp.llama_state_get_size(ctx)
        buffer = (ctypes.c_uint8 * int(size))()
        written = llama_cpp.llama_state_get_data(ctx, buffer, size)
        return KVState(bytes(buffer[: int(written)]), [int(t) for t in self.llama._input_ids])

    def _restore(self, state: KVState) -> bool:
        """Load a state into the model; False (and an empty cache) when llama.cpp refuses it."""
        import ctypes

        import llama_cpp

        data = (ctypes.c_uint8 * len(state.data)).from_buffer_copy(state.data)
        if llama_cpp.llama_state_set_data(self.llama._ctx.ctx, data, len(state.data)) != len(state.data):
            logger.warning("a cached model state could not be restored; evaluating instead")
            self.llama.reset()
            self.llama._ctx.kv_cache_clear()
            return False
        n = len(state.tokens)
        self.llama.input_ids[:n] = state.tokens
        self.llama.n_tokens = n
        self.llama._requires_eval = True
        return True

    def forget_states(self) -> None:
        """Drop every cached chunk state (RAM, and disk for this process) but the system prompts'."""
        self.states.forget()

    def _ensure_prefix(self, tokens: list[int], persist: bool = False) -> None:
        """Make the KV cache start with `tokens`, from the live cache, a snapshot, or by evaluating."""
        current = list(self.llama._input_ids)
        if len(current) >= len(tokens) and current[: len(tokens)] == tokens:
            return
        key = tuple(tokens)
        state = self.states.get(key)
        if state is not None and self._restore(state):
            return
        current = list(self.llama._input_ids)
        # the longest cached snapshot that is a prefix of what we need (e.g. the system prompt)
        best = self.states.longest_prefix(tokens)
        live = _common_prefix(current, tokens)
        if best is not None and len(best.tokens) > live and self._restore(best):
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
        self.states.put(key, self._snapshot(), persist)

    def _split(self, messages: list[Message], prefix: str | None) -> tuple[list[int], list[int]]:
        """Tokens of the cacheable head (system prompt + `prefix` of the last message) and the rest.

        The two parts are tokenized separately and concatenated, so the head's tokens are the
        same for every question that shares it, whatever follows."""
        last = messages[-1]
        if prefix is None or not last.content.startswith(prefix):
            prefix = ""
        pieces = template_pieces(self.render, messages)
        head = [t for text, special in pieces[:-2] for t in self.tokenize(text, special)]
        head += self.tokenize(prefix)
        tail = self.tokenize(last.content[len(prefix):]) + self.tokenize(pieces[-1][0], special=True)
        return head, tail

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
        system_head = self._split(messages[:1] + [Message(messages[-1].role, "")], "")[0]
        if _common_prefix(system_head, head) == len(system_head) and len(system_head) < len(head):
            self._ensure_prefix(system_head)
            self.states.keep(tuple(system_head))
        self._ensure_prefix(head, persist=bool(prefix))
        if not prefix:
            self.states.keep(tuple(head))

    def prefix_state_name(self, messages: list[Message], prefix: str) -> str:
        """The file name the state after the cacheable head (system prompt + `prefix`) has on disk."""
        return state_name(self.identity, self._split(messages, prefix)[0])

    def save_prefix_state(self, messages: list[Message], prefix: str) -> tuple[int, int]:
        """Evaluate the cacheable head (from the system prompt's state) and store its state in the
        block store: (tokens evaluated, bytes written). The RAM cache is left as it was."""
        assert self.blocks is not None
        head, _ = self._split(messages, prefix)
        with self._lock:
            system_head = self._split(messages, "")[0]
            self._ensure_prefix(system_head)
            self.states.keep(tuple(system_head))
            base = self.states.get(tuple(system_head)) or self._snapshot()
            live = _common_prefix(list(self.llama._input_ids), head)
            self.llama._ctx.kv_cache_seq_rm(-1, live, -1)
            self.llama.n_tokens = live
            self.llama.eval(head[live:])
            return len(head) - live, self.blocks.write(base, self._snapshot())

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


def _llama_version() -> str:
    import llama_cpp

    return getattr(llama_cpp, "__version__", "?")


def _physical_cores() -> int:
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)
