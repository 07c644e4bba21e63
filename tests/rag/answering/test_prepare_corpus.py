"""Sentence vectors computed before the first question (issue 18): after `prepare_corpus` no
question embeds an article sentence, and a second process finds them on disk."""

import shutil

from conftest import SEEDS, make_settings
from langchain_core.embeddings import Embeddings

from rag.index.ingest import ingest
from rag.index.store import Store
from rag.wiring import build_service

ARTICLE = "003_abdad34a08e92d8c.txt"


class CountingEmbeddings(Embeddings):
    """The real embedder, counting the passages it is asked to embed."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.documents = 0

    def embed_documents(self, texts):
        self.documents += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)


def no_model():
    raise AssertionError("preparing the corpus must not need the chat model")


def one_article_store(tmp_path, embeddings):
    """A store of one seed article, and its embedder's counter reset after the ingest."""
    articles = tmp_path / "articles"
    articles.mkdir()
    shutil.copy(SEEDS / ARTICLE, articles / ARTICLE)
    settings = make_settings(tmp_path / "data", translate_queries=False)
    counting = CountingEmbeddings(embeddings)
    ingest(Store(settings, counting), [articles], settings.chunk_chars)
    counting.documents = 0
    return settings, counting


def test_prepared_sentences_are_not_embedded_again(tmp_path, embeddings):
    settings, counting = one_article_store(tmp_path, embeddings)

    service = build_service(settings, embeddings=counting, llm_factory=no_model)
    embedded = service.prepare_corpus()
    sentences = [s for source in dict.fromkeys(service.keywords.sources) for s in service.corpus.sentences(source)]
    assert embedded == len({service.corpus.record(ARTICLE[:-4]).text[s.start:s.end] for s in sentences}) > 10
    assert counting.documents == embedded
    assert service.prepare_corpus() == 0

    standalone, queries, context = service.retrieve("Was vereinbarten Trump und Putin am Telefon?")
    assert not context.empty
    before = counting.documents
    texts = [s.text for s in context.sentences]
    similarity = service._dense([standalone, *queries[1:]], texts)
    assert counting.documents == before  # only the question was embedded
    assert max(similarity) > 0.5

    again = build_service(settings, embeddings=counting, llm_factory=no_model)  # a second process, same data dir
    assert again.prepare_corpus() == 0


def test_a_store_too_large_to_prepare_is_left_to_the_questions(tmp_path, embeddings, monkeypatch):
    import rag.answering.service as service_module

    settings, counting = one_article_store(tmp_path, embeddings)
    monkeypatch.setattr(service_module, "PREPARE_MAX_SENTENCES", 5)
    service = build_service(settings, embeddings=counting, llm_factory=no_model)
    assert service.prepare_corpus() == 0
    assert counting.documents == 0
