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

import numpy as np

from rag.answer import Answer, RetrievedPassage, Turn
from rag.answering import followup
from rag.answering.agreement import disagreement_text, disagreements
from rag.answering.cite import VerifiedAnswer, verify
from rag.answering.context import Context, Corpus, Sentence, asks_for_latest, select_context
from rag.answering.decide import Candidate, Evidence, decide, decide_unread, with_reading
from rag.answering.fitted import DEFAULT_PATH, DecisionModels
from rag.answering.question import clean_question
from rag.answering.refusal import RefusalPolicy
from rag.answering.retrieve import HybridSearch, RetrievalFilter
from rag.answering.select import choose, cited_text
from rag.answering.translate import prepare_lexicon, render_english, translate, translation_hints
from rag.errors import EmbeddingError
from rag.index.keyword import KeywordIndex
from rag.index.lexicon import Lexicon
from rag.index.sentence_vectors import SentenceVectors
from rag.index.store import Store
from rag.llm.base import LLM, Message, OnToken
from rag.prompts import PromptLibrary
from rag.settings import Settings
from rag.text import approx_tokens, content_terms, detect_language

logger = logging.getLogger(__name__)

# Sentences embedded per step (and per save of the vector cache) when preparing the corpus.
SENTENCE_BATCH = 64
# At most this many new sentences are embedded at start-up (E5 embeds ~21 a second on two cores:
# 252 seed sentences took 12 s, so this is ~4 min); a larger store embeds them as questions need them.
PREPARE_MAX_SENTENCES = 5000


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
        decisions: DecisionModels | None = None,
        sentence_vectors: SentenceVectors | None = None,
        reader_factory: Callable[[], LLM] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.keywords = keywords
        self.search = search
        self.corpus = corpus
        self.prompts = prompts
        self._llm_factory = llm_factory
        self.lexicon = lexicon
        self.decisions = decisions or DecisionModels.load(settings.decisions_path or DEFAULT_PATH)
        self.sentence_vectors = sentence_vectors
        self._llm: LLM | None = None
        self._reader_factory = reader_factory
        self._reader: LLM | None = None
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
    def reader(self) -> LLM:
        """The model that reads the context for the answer decisions (`choose`): NEWSBOT_READER_MODEL,
        a smaller and faster one than the chat model that generates; the chat model where none is set."""
        if self._reader_factory is None:
            return self.llm
        with self._llm_lock:
            if self._reader is None:
                self._reader = self._reader_factory()
            return self._reader

    @property
    def models(self) -> list[LLM]:
        """The distinct models loaded so far (for dropping their cached states)."""
        return [m for m in dict.fromkeys([self._llm, self._reader]) if m is not None]

    @property
    def refusal(self) -> RefusalPolicy:
        """The refusal policy, read from the settings as they are now."""
        return RefusalPolicy.from_settings(self.settings)

    @property
    def model_name(self) -> str:
        return self._llm.name if self._llm is not None else self.settings.model

    def count_tokens(self, text: str) -> int:
        """In the reader's tokens (the budget is what it reads), else the chat model's (the bundled 0.5B
        and 1.5B tokenise the seeds identically), else approximately."""
        model = self._reader if self._reader is not None else self._llm
        return model.count_tokens(text) if model is not None else approx_tokens(text)

    @property
    def reads(self) -> bool:
        """Whether any question can need the reader (not when the fitted skip decides every one)."""
        skip = self.decisions.skip
        return not (self.settings.skip_reading and skip is not None and skip.always)

    def warm_up(self) -> None:
        """Load the models and evaluate the fixed prompt heads once, before the first question: the
        answer's system prompt (on the reader, where one can be needed), and the follow-up rewrite's
        and the translation's system prompt with their few-shot turns (their states are kept, so
        those calls evaluate only the question)."""
        if self.reads:
            self.reader.complete([Message("system", self.prompts.raw("answer.system")), Message("user", "Hallo")],
                                 max_tokens=1, prefix="")
        llm = self.llm
        for task, used in (("rewrite", self.settings.history_turns), ("translate", self.settings.translate_queries)):
            if used:
                llm.complete(followup.few_shot(self.prompts, task, "Hallo"), max_tokens=1, prefix="")
        self.prepare_corpus()

    def prepare_corpus(self) -> int:
        """What every question would otherwise compute on first sight, done once ahead (and kept on
        disk): the vector of every content sentence (the answer decisions compare the question with
        15-25 of them: 2-3 s of E5 on two cores while none is cached) and the translation lexicon.
        Returns how many sentences were embedded."""
        if self.settings.translate_queries:
            prepare_lexicon(self.lexicon, self.store)
        if self.sentence_vectors is None:
            return 0
        self.keywords.ensure_current(self.store)
        texts = [text for source in self.corpus.sources() for text in self.corpus.sentence_texts(source)]
        missing = self.sentence_vectors.missing(texts)
        if len(missing) > PREPARE_MAX_SENTENCES:
            logger.info("%d sentences without vectors: more than start-up embeds (%d); questions embed theirs",
                        len(missing), PREPARE_MAX_SENTENCES)
            return 0
        try:
            for done in range(0, len(missing), SENTENCE_BATCH):
                self.sentence_vectors.vectors(missing[done:done + SENTENCE_BATCH])
        except EmbeddingError as exc:  # each question then embeds what it needs, or goes without
            logger.warning("sentence vectors not computed ahead: %s", exc)
        if missing:
            logger.info("embedded %d sentences ahead of the questions", len(missing))
        return len(missing)

    # ---- the pipeline ---------------------------------------------------------------------------
    @staticmethod
    def language(question: str) -> str:
        return detect_language(question)

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
        terms = self.keywords.question_terms(queries)
        context = select_context(terms, hits, self.corpus, self.settings.context_tokens, self.count_tokens,
                                 prefer_recent=asks_for_latest(standalone), scorer=self.decisions.context,
                                 similarity=lambda texts: self._dense([standalone, *queries[1:]], texts),
                                 english=language == "en")
        return standalone, queries, context

    def _answer(self, question, history, on_token, cancel, filters, on_status) -> Answer:
        answer = self._answer_core(question, history, on_token, cancel, filters, on_status)
        from rag.index.feeds import annotate_answer

        annotate_answer(answer, self.corpus.record, self.store)  # URL, outlet, agency copies ("auch bei")
        return answer

    def _answer_core(self, question, history, on_token, cancel, filters, on_status) -> Answer:
        started = time.perf_counter()
        question = self.check_question(question)
        language = detect_language(question)
        timings: dict[str, float] = {}
        if language == "other":  # no German or English answer could be checked for a third language
            answer = Answer(question=question, text="", refused=True, model=self.model_name, language=language)
            return self._refuse(answer, timings, started, reason="question in a language other than German or English")
        standalone, queries, context = self.retrieve(question, history, filters, on_status)
        timings["retrieve_s"] = time.perf_counter() - started
        answer = Answer(question=question, text="", refused=True, model=self.model_name, language=language,
                        standalone_question=standalone if standalone != question else None, search_queries=queries,
                        retrieved=self._passages(context), context_tokens=context.tokens)
        if self.refusal.weak_evidence(context):
            return self._refuse(answer, timings, started, reason="weak retrieval evidence")

        evidence = self.measure(standalone, queries, context, language)
        decision = decide_unread(self.decisions, evidence) if self.settings.skip_reading else None
        read = decision is None
        if read:
            choice = choose(self.reader, self.prompt(context, standalone, language), context)
            answer.model = self.model_name
            answer.prompt_tokens = choice.prompt_tokens
            answer.generated_tokens = choice.generated_tokens
            timings["prefill_tokens"] = choice.prefill_tokens
            timings["choose_s"] = choice.total_s
            logger.info("choice: refusal margin %.2f, %s", choice.refusal_margin, {n: round(v, 2) for n, v in choice.logprobs.items()})
            if cancel is not None and cancel.is_set():
                return self._cancelled(answer, timings, started)
            decision = decide(self.decisions, with_reading(evidence, choice.logprobs, choice.refusal_margin))
        else:
            logger.info("decided without reading (answer score %.2f)", decision.answer_score)
        answer.decision = {"answer_score": round(decision.answer_score, 4), "pick_score": round(decision.pick_score, 4),
                           "read": read}
        if not decision.answer:
            return self._refuse(answer, timings, started, reason=decision.reason)
        picked = [self._sentence(context, c) for c in decision.sentences]
        source_texts = {s: self.corpus.record(s).text for s in context.sources if self.corpus.record(s)}

        def show(piece: str) -> None:  # only verified text reaches the screen
            timings.setdefault("first_token_s", time.perf_counter() - started)
            if on_token is not None:
                on_token(piece)

        verified = self._disagreeing(context, self._sentence(context, decision.pick), source_texts)
        if verified is not None:  # two articles state the picked fact differently: both quotes, both dates
            text = disagreement_text(verified.citations, self.prompts.raw(f"disagreement.{'en' if language == 'en' else 'de'}"),
                                     language)
            answer.disagreement = [c.n for c in verified.citations]
            show(text)
        else:
            quoted = self._quoted(answer, context, picked, source_texts, language, cancel, show)
            if quoted is None:
                return self._cancelled(answer, timings, started)
            text, verified = quoted
            if not verified.citations:
                return self._refuse(answer, timings, started, reason=f"no citation survived verification: {text[:200]!r}")
        answer.text = text
        answer.citations = verified.citations
        answer.refused = False
        answer.grounded = verified.grounded
        timings["total_s"] = time.perf_counter() - started
        answer.timings = timings
        logger.info("answered in %.2fs (%d prompt tokens, %d evaluated, %d dropped claims)",
                    timings["total_s"], answer.prompt_tokens, timings.get("prefill_tokens", 0), len(verified.dropped_claims))
        return answer

    def _quoted(self, answer: Answer, context: Context, picked: list[Sentence], source_texts: dict[str, str], language: str,
                cancel, show: Callable[[str], None]) -> tuple[str, VerifiedAnswer] | None:
        """The picked sentences verbatim, through the claim check, shown as soon as they are checked; for
        an English question then a faithful English rendering of them, or a note that none could be
        checked. None: cancelled; no citations in the result: nothing survived (the text is then the
        raw answer, nothing shown)."""
        raw = cited_text(picked)
        verified = verify(raw, context, source_texts, same_language=True, vocabulary=self.keywords.doc_freq)
        if not verified.citations:
            return raw, verified
        text = verified.text
        show(text)  # an English reader sees the checked quote while its rendering is written
        if language != "en":
            return text, verified
        english = render_english(self.llm, self.prompts, picked, self.settings.max_answer_tokens, cancel,
                                 self._similarity, self.decisions.rendering_min_similarity)
        answer.generated_tokens += english.completion.generated_tokens
        if english.completion.cancelled:
            return None
        rendered = None
        if english.problems:
            logger.info("English rendering withheld: %s", "; ".join(english.problems))
        else:
            markers = "".join(f"[{s.number}]" for s in picked)
            checked = verify(f"{english.text} {markers}", context, source_texts, same_language=False,
                             vocabulary=self.keywords.doc_freq)
            if checked.citations:
                rendered = checked.text
            else:  # the rendering's names are not all in its quote: the quote stands alone
                logger.info("English rendering not backed by its quote: %r", english.text[:200])
        tail = f"\n\n{self.prompts.raw('rendering.en').strip()} {rendered}" if rendered else \
            f"\n\n{self.prompts.raw('rendering_withheld.en').strip()}"
        show(tail)
        return text + tail, verified

    def _disagreeing(self, context: Context, answering: Sentence, source_texts: dict[str, str]) -> VerifiedAnswer | None:
        """The answering sentence (not one that only joined it) and another article's context sentence on the
        same fact with other numbers or names (rag/answering/agreement.py), oldest first, both through the
        claim check; None if there is none."""
        others = [s for s in context.sentences if s.source != answering.source]
        if self.sentence_vectors is None or not others:
            return None
        try:
            vectors = self.sentence_vectors.vectors([answering.text] + [s.text for s in others])
        except EmbeddingError as exc:
            logger.warning("disagreement check unavailable: %s", exc)
            return None
        found = disagreements([answering.text], [s.text for s in others], vectors)  # most similar first
        if not found:
            return None
        _, j, similarity = found[0]
        pair = sorted([answering, others[j]], key=lambda s: (r.date_ord if (r := self.corpus.record(s.source)) else 0))
        logger.info("sources disagree (similarity %.3f): %r / %r", similarity, pair[0].text[:80], pair[1].text[:80])
        verified = verify(cited_text(pair), context, source_texts, same_language=True, vocabulary=self.keywords.doc_freq)
        return verified if len({c.source for c in verified.citations}) == 2 and not verified.dropped_claims else None

    def prompt(self, context: Context, question: str, language: str) -> list[Message]:
        return [
            Message("system", self.prompts.raw("answer.system")),
            Message("user", self.prompts.render("answer.user", context=context.text, question=question,
                                                instruction=self.prompts.raw(f"instruction.{language}"))),
        ]

    def _cancelled(self, answer: Answer, timings: dict[str, float], started: float) -> Answer:
        answer.error = "cancelled"
        timings["total_s"] = time.perf_counter() - started
        answer.timings = timings
        return answer

    # ---- helpers --------------------------------------------------------------------------------
    def measure(self, question: str, queries: list[str], context: Context, language: str) -> Evidence:
        """The decisions' signals per context sentence and neighbour, unread (see `with_reading`)."""
        terms = self.keywords.question_terms(queries)
        weight = sum(terms.values()) or 1.0
        wanted: dict[tuple[str, int], int] = {}  # (source, sentence index) -> context number (0: neighbour)
        spans_of: dict[str, list] = {}
        for sentence in context.sentences:
            spans = spans_of.setdefault(sentence.source, self.corpus.sentences(sentence.source))
            index = next((i for i, span in enumerate(spans) if span.start == sentence.start), None)
            if index is None:
                continue
            wanted[(sentence.source, index)] = sentence.number
            for near in (index - 1, index + 1):
                if 0 <= near < len(spans):
                    wanted.setdefault((sentence.source, near), 0)
        keys = list(wanted)
        texts = []
        for source, index in keys:
            record = self.corpus.record(source)
            span = spans_of[source][index]
            texts.append(record.text[span.start:span.end] if record else "")
        dense = self._dense([question, *queries[1:]], texts)
        candidates = []
        for (source, index), text, similarity in zip(keys, texts, dense):
            number = wanted[(source, index)]
            span = spans_of[source][index]
            own = content_terms(text)
            sentence = context.by_number(number) if number else None
            candidates.append(Candidate(
                number, source, index, span.start, span.end, text,
                lexical=sentence.score if sentence else 0.0,
                coverage=sum(w for t, w in terms.items() if t in own) / weight,
                dense=float(similarity),
                date_ord=record.date_ord if (record := self.corpus.record(source)) else 0,
            ))
        return Evidence(question, language, 0.0, candidates, context.best_sentence_coverage,
                        context.coverage, self.keywords.unknown_share(queries), terms, latest=asks_for_latest(question))

    def _dense(self, questions: list[str], texts: list[str]) -> list[float]:
        """Each text's best cosine similarity to any phrasing of the question (0 without vectors)."""
        if self.sentence_vectors is None or not texts:
            return [0.0] * len(texts)
        try:
            sentences = self.sentence_vectors.vectors(texts)
            asked = self.sentence_vectors.query(questions)
        except EmbeddingError as exc:
            logger.warning("sentence similarity unavailable: %s", exc)
            return [0.0] * len(texts)
        return list((sentences @ asked.T).max(axis=1))

    def _similarity(self, quote: str, rendering: str) -> float:
        if self.sentence_vectors is None:
            return 1.0
        vectors = self.sentence_vectors.embeddings.embed_documents([quote, rendering])
        a, b = (np.asarray(v, dtype=np.float32) for v in vectors)
        return float(a @ b / ((np.linalg.norm(a) * np.linalg.norm(b)) or 1.0))

    @staticmethod
    def _sentence(context: Context, candidate: Candidate) -> Sentence:
        return context.sentence_at(candidate.source, candidate.start, candidate.end, candidate.text)

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
