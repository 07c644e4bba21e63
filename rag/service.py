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
from rag.cite import unknown_names, verify
from rag.context import Context, Corpus, select_context
from rag.errors import QuestionError
from rag.embeddings import EmbeddingError
from rag.keyword import KeywordIndex
from rag.lexicon import Lexicon
from rag.extract import cited_text, combine, with_neighbours
from rag.llm import LLM, Choice, Message, OnToken
from rag.prompts import PromptLibrary
from rag.retrieve import HybridSearch, RetrievalFilter
from rag.settings import Settings
from rag.store import Store
from rag.text import approx_tokens, content_terms, detect_language, is_generic_noun, tokenize, words

logger = logging.getLogger(__name__)

REFUSAL_TOKEN = "NICHT_IN_DEN_ARTIKELN"

GREEDY_MARGIN = 20.0  # a greedy pick without probabilities: as sure as the model can be
ENGLISH_GRAMMAR = r"""
root ::= [^\n\[\]<>]{3,500}
"""


def _selection_grammar(options: int) -> str:
    """For backends without token probabilities: the refusal token or one marker [1]..[options]."""
    return f'root ::= "{REFUSAL_TOKEN}" | "[" [1-{max(1, options)}] "]"'


QUESTION_GRAMMAR = r"""
root ::= [^\n:\[\]<>]{3,250} "?"
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
    def model_name(self) -> str:
        return self._llm.name if self._llm is not None else self.settings.model

    def count_tokens(self, text: str) -> int:
        return self._llm.count_tokens(text) if self._llm is not None else approx_tokens(text)

    def warm_up(self) -> None:
        """Load the model and evaluate the fixed system prompt once, before the first question."""
        llm = self.llm
        llm.complete([Message("system", self.prompts.raw("answer.system")), Message("user", "Hallo")],
                     max_tokens=1, prefix="")

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
        if standalone != question and not standalone.startswith(question):
            # the model's rewrite may have dropped a name; the keyword form keeps the earlier topic
            queries.append(with_earlier_terms(question, history[-1].question))
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
        llm_started = time.perf_counter()
        choice = self._choose(messages, context)
        answer.model = self.model_name
        answer.prompt_tokens = choice.prompt_tokens
        answer.generated_tokens = choice.generated_tokens
        timings["prefill_tokens"] = choice.prefill_tokens
        timings["choose_s"] = choice.total_s
        logger.info("choice: refusal margin %.2f, %s", choice.refusal_margin, {n: round(v, 2) for n, v in choice.logprobs.items()})
        if cancel is not None and cancel.is_set():
            return self._cancelled(answer, timings, started)
        # The small model over-refuses: it refuses when it clearly prefers to, or prefers to at all
        # while the question names something no article contains ("Xi Jinping"); never when a
        # context sentence covers most of the question.
        unknown = self._unknown_names(standalone)
        strong = context.best_sentence_coverage >= self.settings.force_answer_coverage and not unknown
        threshold = 0.0 if unknown else self.settings.refusal_margin
        if choice.refusal_margin > threshold and not strong:
            return self._refuse(answer, timings, started, reason=f"model prefers to refuse (margin {choice.refusal_margin:.2f})")
        best = combine(choice, context, self.settings.selection_lexical_weight)
        if best is None:
            return self._refuse(answer, timings, started, reason="no sentence to cite")
        picked = with_neighbours(best, context, self.corpus, self._question_terms(queries))
        source_texts = {s: self.corpus.record(s).text for s in context.sources if self.corpus.record(s)}
        streamed = ""
        if language == "en":
            english = self._answer_in_english(picked, standalone, on_token, cancel)
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

    def _choose(self, messages: list[Message], context: Context) -> Choice:
        """The model's preference among the first nine context sentences (or its refusal).

        Backends that expose next-token probabilities (llama.cpp in-process) give the full
        distribution; others make one greedy, grammar-constrained pick, which then stands alone."""
        options = min(9, len(context.sentences))
        prefix = "<artikel>\n" + context.prefix_text if context.prefix_text else ""
        choose = getattr(self.llm, "choose", None)
        choice = choose(messages, prefix=prefix, options=options, refusal=REFUSAL_TOKEN) if choose else None
        if choice is not None:
            return choice
        completion = self.llm.complete(messages, max_tokens=12, grammar=_selection_grammar(options), prefix=prefix)
        found = re.match(r"\s*\[(\d)\]", completion.text)
        if found is None:
            return Choice({n: 0.0 for n in range(1, options + 1)}, GREEDY_MARGIN, completion.prompt_tokens,
                          completion.prefill_tokens, completion.total_s, completion.generated_tokens)
        picked = int(found.group(1))
        return Choice({n: 0.0 if n == picked else -GREEDY_MARGIN for n in range(1, options + 1)}, -GREEDY_MARGIN,
                      completion.prompt_tokens, completion.prefill_tokens, completion.total_s, completion.generated_tokens)

    def _answer_in_english(self, sentences: list, question: str, on_token: OnToken | None, cancel):
        quote = "\n".join(" ".join(s.text.split()) for s in sentences)
        messages = [Message("system", self.prompts.raw("answer_en.system")),
                    Message("user", self.prompts.render("answer_en.user", quote=quote, question=question))]
        return self.llm.complete(messages, max_tokens=self.settings.max_answer_tokens, grammar=ENGLISH_GRAMMAR, prefix="",
                                 on_token=on_token, cancel=cancel)

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
        """Names in the question that no article contains, not even as part of a compound ("Xi
        Jinping" in a question about the Alaska summit; not "Punkteskala"). German capitalises
        every noun, so generic dictionary nouns ("Stadt", "August") do not count."""
        return {word for word in unknown_names(question, self.keywords.doc_freq)
                if not self.keywords.expand(tokenize(word, compounds=False)) and not is_generic_noun(word)}

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
        """The follow-up as a standalone question, checked; a keyword fallback when the model fails.

        Small models often echo the earlier question or the prompt instead of rewriting, so the
        output is constrained to one question (no ':' to start a "Verlauf:" echo) and kept only
        if it keeps the follow-up's own content words and is not the earlier question again."""
        if not history or not self.settings.history_turns:
            return question
        previous = history[-1].question  # turns keep the standalone form, so one turn resolves a chain
        messages = self._few_shot("rewrite", self.prompts.render("rewrite.user", previous=previous, question=question))
        completion = self.llm.complete(messages, max_tokens=60, grammar=QUESTION_GRAMMAR, prefix="")
        rewritten = " ".join(completion.text.split()).strip("\"'„“ ")
        if _acceptable_rewrite(rewritten, question, previous):
            return rewritten
        logger.info("rewrite %r rejected; adding the earlier question's terms instead", rewritten)
        return with_earlier_terms(question, previous)

    def _few_shot(self, task: str, user: str) -> list[Message]:
        """System prompt, the task's examples as real turns, then the request: prompts/<task>.*.txt."""
        messages = [Message("system", self.prompts.raw(f"{task}.system"))]
        for example, reply in self.prompts.examples(f"{task}.examples"):
            messages += [Message("user", example), Message("assistant", reply)]
        return messages + [Message("user", user)]

    def translate(self, question: str) -> str:
        """The question in German, worded with the articles' own vocabulary where the lexicon has it."""
        messages = self._few_shot("translate", self.prompts.render("translate.user", question=question,
                                                                   hints=self._translation_hints(question) or "-"))
        completion = self.llm.complete(messages, max_tokens=60, grammar=QUESTION_GRAMMAR, prefix="")
        return " ".join(completion.text.split()).strip("\"'„“ ")

    def _translation_hints(self, question: str) -> str:
        if self.lexicon is None:
            return ""
        try:
            self.lexicon.ensure_current(self.store, self.store.generation())
            return self.lexicon.hints(question)
        except EmbeddingError as exc:  # the lexicon's package is missing: translate without hints
            logger.warning("translation hints unavailable: %s", exc)
            return ""


def _acceptable_rewrite(rewritten: str, question: str, previous: str) -> bool:
    folded = rewritten.casefold()
    if not 3 <= len(rewritten) <= 2 * len(question) + 300:
        return False
    if folded in (question.casefold(), previous.casefold()):
        return False  # nothing resolved, or the earlier question echoed
    own = content_terms(question)
    return len(own & content_terms(rewritten)) * 2 >= len(own)


def with_earlier_terms(question: str, previous: str) -> str:
    """The follow-up plus the earlier question's content words: still a good search query."""
    own = content_terms(question)
    extra: list[str] = []
    for word in words(previous):
        terms = content_terms(word)
        if terms and not terms <= own and word not in extra:
            extra.append(word)
    return f"{question} ({', '.join(extra)})" if extra else question


def build_service(settings: Settings, *, embeddings=None, llm_factory: Callable[[], LLM] | None = None) -> AnswerService:
    """Wire the real components from settings (the one place that knows the concrete classes)."""
    from rag.embeddings import make_embeddings
    from rag.llm import make_llm

    embeddings = embeddings or make_embeddings(settings.embedding_model)
    store = Store(settings, embeddings)
    keywords = KeywordIndex(settings.keyword_dir if not settings.uses_chroma_server else _server_keyword_dir(settings))
    search = HybridSearch(store, keywords, settings.bm25_weight, settings.dense_weight, settings.top_k, settings.rrf_k)
    corpus = Corpus(store, keywords)
    prompts = PromptLibrary(settings.prompts_dir)
    lexicon = None
    if settings.translation_hints:
        from rag.embeddings import UniversalSentenceEncoderEmbeddings

        lexicon = Lexicon(keywords.directory.with_name(keywords.directory.name + "-lexicon"), UniversalSentenceEncoderEmbeddings())
    return AnswerService(settings, store, keywords, search, corpus, prompts, llm_factory or (lambda: make_llm(settings)), lexicon)


def _server_keyword_dir(settings: Settings) -> Path:
    """Per-server keyword cache, so an embedded store and a server never share one index."""
    return settings.data_dir / "keyword-server" / f"{settings.chroma_host}_{settings.chroma_port}_{settings.collection}"
