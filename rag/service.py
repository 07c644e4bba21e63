"""The answer service: one object that the CLI, the console chat and the Discord bot share.

It receives its components through the constructor (store, hybrid search, corpus, model,
prompts), so adapters stay thin and tests can swap any part.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import unicodedata
from pathlib import Path
from typing import Callable, Sequence

from rag.answer import Answer, RetrievedPassage, Turn
from rag.cite import verify
from rag.context import Context, Corpus, select_context
from rag.errors import QuestionError
from rag.keyword import KeywordIndex
from rag.llm import LLM, Message, OnToken
from rag.prompts import PromptLibrary
from rag.retrieve import HybridSearch, RetrievalFilter
from rag.settings import Settings
from rag.store import Store
from rag.text import approx_tokens, detect_language, tokenize

logger = logging.getLogger(__name__)

REFUSAL_TOKEN = "NICHT_IN_DEN_ARTIKELN"
LANGUAGE_NAMES = {"de": "Deutsch", "en": "English", "other": "Deutsch"}

# The answer format as a grammar: either the refusal token, or one to three claims, each
# ending in at least one [n] marker. The small model cannot forget to cite.
ANSWER_GRAMMAR_FORCED = r"""
root ::= answer
answer ::= claim (" " claim){0,2}
claim ::= cite " " [^\[\]\n<>]+ [.!?]
cite ::= "[" [1-9] [0-9]? "]"
"""
ANSWER_GRAMMAR = r"""
root ::= refusal | answer
refusal ::= "NICHT_IN_DEN_ARTIKELN"
answer ::= claim (" " claim){0,2}
claim ::= cite " " [^\[\]\n<>]+ [.!?]
cite ::= "[" [1-9] [0-9]? "]"
"""
LINE_GRAMMAR = r"""
root ::= [^\n]{3,300}
"""
_FOLLOW_UP = re.compile(
    r"\b(er|sie|es|ihm|ihr|ihn|dazu|dabei|damit|darauf|darüber|davon|dort|damals|das|dies|diese[rsmn]?|jene[rsmn]?|"
    r"he|she|it|they|him|her|them|that|this|there|then|those)\b",
    re.IGNORECASE,
)


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
    ) -> None:
        self.settings = settings
        self.store = store
        self.keywords = keywords
        self.search = search
        self.corpus = corpus
        self.prompts = prompts
        self._llm_factory = llm_factory
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
    def model_name(self) -> str:
        return self._llm.name if self._llm is not None else self.settings.model

    def count_tokens(self, text: str) -> int:
        return self._llm.count_tokens(text) if self._llm is not None else approx_tokens(text)

    def warm_up(self) -> None:
        """Load the model and evaluate the fixed system prompt once, before the first question."""
        llm = self.llm
        llm.complete([Message("system", self.prompts.raw("answer.system")), Message("user", "Hallo")],
                     max_tokens=1, prefix="")

    def warm_chunks(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Precompute the model state after system prompt + each chunk (what a question about
        that chunk starts from), so answering only evaluates the question and a few extra sentences."""
        from rag.retrieve import ScoredChunk

        llm = self.llm
        if not hasattr(llm, "prime"):
            return 0
        self.keywords.ensure_current(self.store)
        total = len(self.keywords)
        system = Message("system", self.prompts.raw("answer.system"))
        for done, (chunk_id, source, (start, end)) in enumerate(zip(self.keywords.ids, self.keywords.sources, self.keywords.spans), 1):
            context = select_context({}, [ScoredChunk(chunk_id, source, start, end, 1.0)], self.corpus, 0, self.count_tokens)
            prefix = "<artikel>\n" + context.prefix_text
            llm.prime([system, Message("user", prefix + "x")], prefix)
            if progress:
                progress(done, total)
        return total

    # ---- the pipeline ---------------------------------------------------------------------------
    def check_question(self, question: str) -> str:
        cleaned = "".join(ch for ch in unicodedata.normalize("NFC", question or "") if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
        cleaned = " ".join(cleaned.split())
        if not cleaned:
            raise QuestionError("The question is empty: ask something about the news articles, e.g. "
                                "\"Was sagte Trump nach dem Gipfel in Alaska?\"")
        if len(cleaned) > self.settings.max_question_chars:
            raise QuestionError(f"The question is {len(cleaned):,} characters long; the limit is "
                                f"{self.settings.max_question_chars:,} (NEWSBOT_MAX_QUESTION_CHARS). Ask a shorter question.")
        if not any(ch.isalnum() for ch in cleaned):
            raise QuestionError("The question has no words in it: ask something about the news articles in German or English.")
        return cleaned

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
        if history and self._needs_rewrite(question):
            standalone = self.rewrite(question, history)
            if on_status and standalone != question:
                on_status("rewritten", standalone)
        queries = [standalone]
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
        if self._weak_evidence(context):
            return self._refuse(answer, timings, started, reason="weak retrieval evidence")

        messages = [
            Message("system", self.prompts.raw("answer.system")),
            Message("user", self.prompts.render("answer.user", context=context.text, question=standalone,
                                                instruction=self.prompts.raw(f"instruction.{language}"))),
        ]
        stream = _AnswerStream(on_token)
        llm_started = time.perf_counter()
        completion = self.llm.complete(
            messages, max_tokens=self.settings.max_answer_tokens,
            # When a context sentence clearly matches the question, the small model must answer
            # (it over-refuses); verification still drops claims the context does not support.
            grammar=ANSWER_GRAMMAR_FORCED if context.best_sentence_coverage >= self.settings.force_answer_coverage else ANSWER_GRAMMAR,
            prefix="<artikel>\n" + context.prefix_text if context.prefix_text else "", on_token=stream, cancel=cancel,
        )
        stream.finish()
        answer.model = self.model_name
        answer.prompt_tokens = completion.prompt_tokens
        answer.generated_tokens = completion.generated_tokens
        timings["prefill_tokens"] = completion.prefill_tokens
        timings["first_token_s"] = llm_started - started + completion.first_token_s
        timings["generate_s"] = completion.total_s
        if completion.cancelled:
            answer.error = "cancelled"
            answer.text = completion.text
            timings["total_s"] = time.perf_counter() - started
            answer.timings = timings
            return answer
        raw = completion.text.strip()
        logger.debug("model output: %r", raw)
        if raw.startswith(REFUSAL_TOKEN) or not raw:
            return self._refuse(answer, timings, started, reason="model found no answer")
        source_texts = {s: self.corpus.record(s).text for s in context.sources if self.corpus.record(s)}
        verified = verify(raw, context, source_texts, same_language=(language == "de"), question=standalone,
                          vocabulary=self.keywords.doc_freq)
        if not verified.citations:
            return self._refuse(answer, timings, started, reason=f"no citation survived verification: {raw[:200]!r}")
        answer.text = verified.text
        answer.citations = verified.citations
        answer.refused = False
        answer.grounded = verified.grounded
        timings["total_s"] = time.perf_counter() - started
        answer.timings = timings
        logger.info("answered in %.2fs (%d prompt tokens, %d evaluated, %d dropped claims)",
                    timings["total_s"], completion.prompt_tokens, completion.prefill_tokens, len(verified.dropped_claims))
        return answer

    # ---- helpers --------------------------------------------------------------------------------
    def _question_terms(self, queries: list[str]) -> dict[str, float]:
        terms: dict[str, float] = {}
        for query in queries:
            for term in set(tokenize(query)) | set(self.keywords.expand(tokenize(query))):
                terms[term] = self.keywords.idf(term)
        return terms

    def _weak_evidence(self, context: Context) -> bool:
        if context.empty:
            return True
        return context.best_sentence_coverage < self.settings.min_retrieval_score

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

    @staticmethod
    def _needs_rewrite(question: str) -> bool:
        return bool(_FOLLOW_UP.search(question)) or len(question.split()) < 6

    def rewrite(self, question: str, history: Sequence[Turn]) -> str:
        turns = list(history)[-self.settings.history_turns:] if self.settings.history_turns else []
        if not turns:
            return question
        lines = []
        for turn in turns:
            lines.append(f"Frage: {turn.question}")
            lines.append(f"Antwort: {_strip_markers(turn.answer)[:400]}")
        messages = [Message("system", self.prompts.raw("rewrite.system")),
                    Message("user", self.prompts.render("rewrite.user", history="\n".join(lines), question=question))]
        completion = self.llm.complete(messages, max_tokens=60, grammar=LINE_GRAMMAR, prefix="")
        rewritten = " ".join(completion.text.split()).strip("\"'„“ ")
        return rewritten if 3 <= len(rewritten) <= 2 * len(question) + 300 else question

    def translate(self, question: str) -> str:
        messages = [Message("system", self.prompts.raw("translate.system")),
                    Message("user", self.prompts.render("translate.user", question=question))]
        completion = self.llm.complete(messages, max_tokens=90, grammar=LINE_GRAMMAR, prefix="")
        return " ".join(completion.text.split()).strip("\"'„“ ")


def _strip_markers(text: str) -> str:
    return re.sub(r"\s*\[\d+\]", "", text)


class _AnswerStream:
    """Streams answer text as a reader should see it while it is generated.

    Holds output back until it is clearly not the refusal token, and moves the model's leading
    "[n] " evidence markers to the end of their claim ("Claim. [n]"), as the verified answer shows them.
    """

    def __init__(self, on_token: OnToken | None) -> None:
        self.on_token = on_token
        self.buffer = ""
        self.open = False
        self.pending: str | None = None
        self.started_claim = False
        self.last = " "

    def __call__(self, piece: str) -> None:
        if self.on_token is None:
            return
        self.buffer += piece
        if not self.open:
            stripped = self.buffer.lstrip()
            if REFUSAL_TOKEN.startswith(stripped) or stripped.startswith(REFUSAL_TOKEN):
                return
            self.open = True
            self.buffer = stripped
        self._drain()

    def _drain(self) -> None:
        while self.buffer:
            if self.buffer[0] == "[":
                match = re.match(r"\[(\d{1,3})\]\s?", self.buffer)
                if match is None:
                    if re.fullmatch(r"\[\d{0,3}", self.buffer):
                        return  # wait for the rest of the marker
                    self._emit(self.buffer[0])
                    self.buffer = self.buffer[1:]
                    continue
                if match.end() == len(self.buffer) and not self.buffer.endswith(" "):
                    return
                self._close_claim()
                self.pending = match.group(1)
                self.buffer = self.buffer[match.end():]
                continue
            cut = self.buffer.find("[")
            text = self.buffer if cut < 0 else self.buffer[:cut]
            self.buffer = "" if cut < 0 else self.buffer[cut:]
            self._emit(text)

    def _emit(self, text: str) -> None:
        if not text:
            return
        self.started_claim = True
        self.last = text[-1]
        self.on_token(text)

    def _close_claim(self) -> None:
        if self.pending is not None:
            self.on_token(f"{'' if self.last.isspace() else ' '}[{self.pending}] ")
            self.last = " "
            self.pending = None
            self.started_claim = False

    def finish(self) -> None:
        if self.on_token is None or not self.open:
            return
        if self.buffer:
            self.on_token(self.buffer)
            self.buffer = ""
        if self.pending is not None:
            self.on_token(f" [{self.pending}]")
            self.pending = None


def build_service(settings: Settings, *, embeddings=None, llm_factory: Callable[[], LLM] | None = None) -> AnswerService:
    """Wire the real components from settings (the one place that knows the concrete classes)."""
    from rag.embeddings import SentenceTransformerEmbeddings
    from rag.llm import make_llm

    embeddings = embeddings or SentenceTransformerEmbeddings(settings.embedding_model)
    store = Store(settings, embeddings)
    keywords = KeywordIndex(settings.keyword_dir if not settings.uses_chroma_server else _server_keyword_dir(settings))
    search = HybridSearch(store, keywords, settings.bm25_weight, settings.dense_weight, settings.top_k, settings.rrf_k)
    corpus = Corpus(store, keywords)
    prompts = PromptLibrary(settings.prompts_dir)
    return AnswerService(settings, store, keywords, search, corpus, prompts, llm_factory or (lambda: make_llm(settings)))


def _server_keyword_dir(settings: Settings) -> Path:
    """Per-server keyword cache, so an embedded store and a server never share one index."""
    return settings.data_dir / "keyword-server" / f"{settings.chroma_host}_{settings.chroma_port}_{settings.collection}"
