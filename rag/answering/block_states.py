"""Model states of every first context block, computed at ingest (NEWSBOT_BLOCK_STATES_MB).

Every answer prompt starts with the system prompt and the first context block, which depends
only on the question's best sentence: that sentence with its neighbours (`first_block_text`).
So the state after system prompt + that block can be computed ahead for every sentence the
selector could put first, and a question evaluates only the rest of its context and itself
(~150 instead of ~270 tokens, ~2 s less on two cores).

Kept in sync with the store like the keyword index: `sync` runs after each ingest, computes what
is missing and deletes what no sentence needs any more (file names hash the tokens, so a changed
article, system prompt or context budget simply names other files). Within the disk budget the
articles' first sentences come first, then the second ones, and so on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from rag.answering.context import first_block_text
from rag.llm.base import Message

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (what, done, total)


@dataclass
class BlockSummary:
    needed: int = 0  # distinct first blocks the store can produce
    computed: int = 0
    kept: int = 0
    removed: int = 0
    over_budget: int = 0  # blocks left without a state by NEWSBOT_BLOCK_STATES_MB
    tokens: int = 0  # tokens evaluated
    disk_mb: float = 0.0
    seconds: float = 0.0

    def as_json(self) -> dict[str, float]:
        return dict(self.__dict__)


def block_messages(prompts, prefix_text: str) -> tuple[list[Message], str]:
    """The answer prompt as `rag.answering.select.choose` sends it, for a context that starts with
    this block (the rest of the user message does not matter: only the head is evaluated)."""
    prefix = "<artikel>\n" + prefix_text
    user = prompts.render("answer.user", context=prefix_text + "[9] …", question="…", instruction="…")
    return [Message("system", prompts.raw("answer.system")), Message("user", user)], prefix


def first_blocks(service) -> list[str]:
    """Every first block the context selector can produce, the articles' early sentences first."""
    service.keywords.ensure_current(service.store)
    corpus = service.corpus
    sources = corpus.sources()
    counts = {source: len(corpus.sentences(source)) for source in sources}
    texts: dict[str, None] = {}
    for index in range(max(counts.values(), default=0)):
        for source in sources:
            if index < counts[source]:
                text = first_block_text(corpus, source, index, service.settings.context_tokens, service.count_tokens)
                if text:
                    texts.setdefault(text, None)
    return list(texts)


def _fingerprint(settings, store, prompts) -> str:
    """What the block states depend on, known without loading the model (to skip a sync)."""
    parts = [store.generation(), settings.reading_model, settings.block_states_mb, settings.context_tokens, settings.n_ctx,
             prompts.raw("answer.system"), prompts.raw("answer.user")]
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()


def _marker(settings):
    return settings.data_dir / "kv" / "blocks" / f"synced-{hashlib.sha1(settings.reading_model.encode()).hexdigest()[:12]}.json"


def up_to_date(settings, store, prompts) -> bool:
    """True when nothing the block states depend on changed since the last complete sync."""
    if not settings.block_states_mb or settings.llm_backend != "llama":
        return True
    try:
        return json.loads(_marker(settings).read_text())["fingerprint"] == _fingerprint(settings, store, prompts)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def sync(service, progress: Progress | None = None) -> BlockSummary:
    """Bring the block states in line with the store and the budget (a no-op without a block store)."""
    summary = BlockSummary()
    budget = service.settings.block_states_mb * 1024 * 1024
    if not budget or service.settings.llm_backend != "llama":
        return summary
    if not service.reads:  # the fitted reading skip decides every question: no context is ever read
        logger.info("block states not computed: the reader reads no context (NEWSBOT_SKIP_READING, decisions.json)")
        return summary
    fingerprint = _fingerprint(service.settings, service.store, service.prompts)
    started = time.perf_counter()
    llm = service.reader  # the model that reads the context
    blocks = getattr(llm, "blocks", None)
    if blocks is None:
        return summary
    service.warm_up()  # the system prompt's state is the base of every delta
    plans = []
    for text in first_blocks(service):
        messages, prefix = block_messages(service.prompts, text)
        if not messages[-1].content.startswith(prefix):
            logger.warning("the answer prompt does not start with the context; no block states")
            return summary
        plans.append((llm.prefix_state_name(messages, prefix), messages, prefix))
    summary.needed = len(plans)
    present = blocks.files()
    wanted = {name for name, _, _ in plans}
    for name in set(present) - wanted:
        blocks.remove(name)
        summary.removed += 1
    used = 0
    average = 0.0  # bytes per state so far: a state that would not fit is not computed
    for done, (name, messages, prefix) in enumerate(plans):
        if progress:
            progress("model states", done, len(plans))
        size = present.get(name)
        if size is None:
            if used + average > budget:
                summary.over_budget += 1
                continue
            evaluated, size = llm.save_prefix_state(messages, prefix)
            summary.computed += 1
            summary.tokens += evaluated
        else:
            summary.kept += 1
        if used + size > budget:
            blocks.remove(name)
            summary.over_budget += 1
            summary.kept -= name in present
            summary.computed -= name not in present
            continue
        used += size
        average = used / (summary.kept + summary.computed)
    if progress:
        progress("model states", len(plans), len(plans))
    summary.disk_mb = round(used / 1e6, 1)
    summary.seconds = round(time.perf_counter() - started, 1)
    marker = _marker(service.settings)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"fingerprint": fingerprint, **summary.as_json()}))
    logger.info("block states: %s", summary.as_json())
    return summary
