"""The answer service: one object that the CLI, the console chat and the Discord bot share.

Orchestration and timings only: each stage lives in its own module (question, followup,
translate, retrieve, context, select, refusal, cite). The service receives its components through
the constructor (store, hybrid search, corpus, model, prompts), so adapters stay thin and tests
can swap any part; `rag.wiring.build_service` builds the real ones.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence

from rag.answer import Answer, RetrievedPassage, Turn
from rag.answering import followup
from rag.answering.cite import verify
from rag.answering.context import Context, Corpus, select_context
from rag.answering.question import clean_question
from rag.answering.refusal import RefusalPolicy
from rag.answering.retrieve import HybridSearch, RetrievalFilter
from rag.answering.select import choose, cited_text, combine, with_neighbours
from rag.answering.translate import render_english, translate, translation_hints
from rag.index.keyword import KeywordIndex
from rag.index.lexicon import Lexicon
from rag.index.store import Store
from rag.llm.base import LLM, Message, OnToken
from rag.prompts import PromptLibrary
from rag.settings import Settings
from rag.text import approx_tokens, detect_language, tokenize

logger = logging.getLogger(__name__)


class AnswerService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        keywords: KeywordIndex,
        search: HybridSearch,
        corpus: Corpus,
        prompts: PromptLibrary,
        llm_factory: Callable[[], LLM],
        lexicon: Lexicon | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.keywords = keywords
        self.search = search
        self.corpus = corpus
        self.prompts = prompts
        self._llm_factory = llm_factory
        self.lexicon = lexicon
        self._llm: LLM | None = None
        self._llm_lock = threading.Lock()
        self._worker_lock = threading.Lock()

    # ---- components -----------------------------------------------------------------------------
    @property
    def llm(self) -> LLM:
        with self._llm_lock:
            if self._llm is None:
                self._llm = self._llm_factory()
            return self._llm

    @property
    def refusal(self) -> RefusalPolicy:
        """The refusal policy, read from the settings as they are now."""
        return RefusalPolicy.from_settings(self.settings)

    @property
    def model_name(self) -> str:
        return self._llm.name if self._llm is not None else self.settings.model

    def count_tokens(self, text: str) -> int:
        return self._llm.count_tokens(text) if self._llm is not None else approx_tokens(text)

    def warm_up(self) -> None:
        """Load the model and evaluate the fixed prompt heads once, before the first question: the
        answer's system prompt, and the follow-up rewrite's and the translation's system prompt with
        their few-shot turns (their states are kept, so those calls evaluate only the question)."""
        llm = self.llm
        llm.complete([Message("system", self.prompts.raw("answer.system")), Message("user", "Hallo")],
                     max_tokens=1, prefix="")
        for task, used in (("rewrite", self.settings.history_turns), ("translate", self.settings.translate_queries)):
            if used:
                llm.complete(followup.few_shot(self.prompts, task, "Hallo"), max_tokens=1, prefix="")

    # ---- the pipeline ---------------------------------------------------------------------------
    def check_question(self, question: str) -> str:
        return clean_question(question, self.settings.max_question_chars)

    def answer(
        self,
        question: str,
        history: Sequence[Turn] = (),
        on_token: OnToken | None = None,
        cancel: threading.Event | None = None,
        filters: RetrievalFilter | None = None,
        on_status: Callable[[str, str], None] | None = None,
    ) -> Answer:
        """Answer one question (blocking). Raises QuestionError for unusable questions."""
        with self._worker_lock:
            return self._answer(question, history, on_token, cancel, filters, on_status)

    async def answer_async(self, question: str, history: Sequence[Turn] = (), on_token: OnToken | None = None,
                           cancel: threading.Event | None = None, filters: RetrievalFilter | None = None) -> Answer:
        """For async callers: the model runs in a worker thread, the event loop keeps flowing."""
        return await asyncio.to_thread(self.answer, question, history, on_token, cancel, filters)

    def retrieve(self, question: str, history: Sequence[Turn] = (), filters: RetrievalFilter | None = None,
                 on_status: Callable[[str, str], None] | None = None) -> tuple[str, list[str], Context]:
        """Standalone question, search queries and the context the model would be given."""
        language = detect_language(question)
        standalone = question
        if history and followup.needs_rewrite(question):
            standalone = self.rewrite(question, history)
            if on_status and standalone != question:
                on_status("rewritten", standalone)
        queries = [standalone]
        if standalone != question and not standalone.startswith(question):
            # the model's rewrite may have dropped a name; the keyword form keeps the earlier topic
            queries.append(followup.with_earlier_terms(question, history[-1].question))
        if language != "de" and self.settings.translate_queries:
            translated = self.translate(standalone)
            if translated and translated.casefold() != standalone.casefold():
                queries.append(translated)
        hits = self.search.search(queries, self.settings.top_k, filters)
        terms = self._question_terms(queries)
        context = select_context(terms, hits, self.corpus, self.settings.context_tokens, self.count_tokens)
        return standalone, queries, context

    def _answer(self, question, history, on_token, cancel, filters, on_status) -> Answer:
        started = time.perf_counter()
        question = self.check_question(question)
        language = detect_language(question)
        timings: dict[str, float] = {}
        standalone, queries, context = self.retrieve(question, history, filters, on_status)
        timings["retrieve_s"] = time.perf_counter() - started
        answer = Answer(question=question, text="", refused=True, model=self.model_name, language=language,
                        standalone_question=standalone if standalone != question else None, search_queries=queries,
                        retrieved=self._passages(context), context_tokens=context.tokens)
        if self.refusal.weak_evidence(context):
            return self._refuse(answer, timings, started, reason="weak retrieval evidence")

        messages = [
            Message("system", self.prompts.raw("answer.system")),
            Message("user", self.prompts.render("answer.user", context=context.text, question=standalone,
                                                instruction=self.prompts.raw(f"instruction.{language}"))),
        ]
        llm_started = time.perf_counter()
        choice = choose(self.llm, messages, context)
        answer.model = self.model_name
        answer.prompt_tokens = choice.prompt_tokens
        answer.generated_tokens = choice.generated_tokens
        timings["prefill_tokens"] = choice.prefill_tokens
        timings["choose_s"] = choice.total_s
        logger.info("choice: refusal margin %.2f, %s", choice.refusal_margin, {n: round(v, 2) for n, v in choice.logprobs.items()})
        if cancel is not None and cancel.is_set():
            return self._cancelled(answer, timings, started)
        reason = self.refusal.model_refusal(choice, context, self._unknown_names(standalone))
        if reason is not None:
            return self._refuse(answer, timings, started, reason=reason)
        best = combine(choice, context, self.settings.selection_lexical_weight)
        if best is None:
            return self._refuse(answer, timings, started, reason="no sentence to cite")
        picked = with_neighbours(best, context, self.corpus, self._question_terms(queries))
        source_texts = {s: self.corpus.record(s).text for s in context.sources if self.corpus.record(s)}
        streamed = ""
        if language == "en":
            english = render_english(self.llm, self.prompts, picked, standalone, self.settings.max_answer_tokens,
                                     on_token, cancel)
            answer.generated_tokens += english.generated_tokens
            timings["first_token_s"] = llm_started - started + choice.total_s + english.first_token_s
            if english.cancelled:
                answer.text = english.text
                return self._cancelled(answer, timings, started)
            streamed = " ".join(english.text.split())
            raw = f"{streamed} " + "".join(f"[{s.number}]" for s in picked)
        else:
            raw = cited_text(picked)
        verified = verify(raw, context, source_texts, same_language=(language != "en"), question=standalone,
                          vocabulary=self.keywords.doc_freq)
        if not verified.citations:
            return self._refuse(answer, timings, started, reason=f"no citation survived verification: {raw[:200]!r}")
        if on_token is not None:  # the rest of the verified text (all of it for an extractive answer)
            on_token(verified.text[len(streamed):] if verified.text.startswith(streamed) else "")
        timings.setdefault("first_token_s", time.perf_counter() - started)
        answer.text = verified.text
        answer.citations = verified.citations
        answer.refused = False
        answer.grounded = verified.grounded
        timings["total_s"] = time.perf_counter() - started
        answer.timings = timings
        logger.info("answered in %.2fs (%d prompt tokens, %d evaluated, %d dropped claims)",
                    timings["total_s"], choice.prompt_tokens, choice.prefill_tokens, len(verified.dropped_claims))
        return answer

    def _cancelled(self, answer: Answer, timings: dict[str, float], started: float) -> Answer:
        answer.error = "cancelled"
        timings["total_s"] = time.perf_counter() - started
        answer.timings = timings
        return answer

    # ---- helpers --------------------------------------------------------------------------------
    def _question_terms(self, queries: list[str]) -> dict[str, float]:
        terms: dict[str, float] = {}
        for query in queries:
            for term in set(tokenize(query, query=True)) | set(self.keywords.expand(tokenize(query, query=True))):
                terms[term] = self.keywords.idf(term)
        return terms

    def _unknown_names(self, question: str) -> set[str]:
        return self.refusal.unknown_names(question, self.keywords)

    def _refuse(self, answer: Answer, timings: dict[str, float], started: float, reason: str) -> Answer:
        answer.text = self.prompts.raw(f"refusal.{answer.language}")
        answer.refused = True
        answer.citations = []
        answer.grounded = False
        now = time.perf_counter() - started
        timings.setdefault("first_token_s", now)
        timings["total_s"] = now
        answer.timings = timings
        logger.info("refused (%s)", reason)
        return answer

    def _passages(self, context: Context) -> list[RetrievedPassage]:
        passages = []
        for source, group in context.groups:
            info = context.sources[source]
            for sentence in group:
                passages.append(RetrievedPassage(source, sentence.text, round(sentence.score, 4), info.title, info.date,
                                                 sentence.start, sentence.end))
        return passages

    def rewrite(self, question: str, history: Sequence[Turn]) -> str:
        """The follow-up as a standalone question, checked; a keyword fallback when the model fails."""
        return followup.rewrite(self.llm, self.prompts, question, history, self.settings.history_turns)

    def translate(self, question: str) -> str:
        """The question in German, worded with the articles' own vocabulary where the lexicon has it."""
        return translate(self.llm, self.prompts, question, translation_hints(self.lexicon, self.store, question))
