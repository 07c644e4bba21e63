"""`newsbot bench`: per-stage timings, cold and warm, against the naive LangChain-tutorial pipeline.

Cold: no cached model states (only the system prompt is evaluated once at load).
Warm: the same questions again: each question's first context block (its best sentence and
neighbours) is now in the model-state cache, as for any question about a passage asked before.
`--retrieval-scale N`: a synthetic store of recombined corpus sentences at 1k/10k/100k chunks.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rag.quality.stats import percentile
from rag.settings import Settings

logger = logging.getLogger(__name__)


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p95": None}
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 3), "p95": percentile(ordered, 0.95)}


def run_newsbot(service, questions: list[dict[str, Any]]) -> dict[str, Any]:
    rows = []
    for item in questions:
        answer = service.answer(item["question"])
        t = answer.timings
        # no streaming rate for an answer whose generation all came before its first character
        gen_s = t.get("total_s", 0) - t.get("first_token_s", 0)
        rows.append({
            "id": item.get("id"), "retrieve_s": t.get("retrieve_s", 0.0), "first_token_s": t.get("first_token_s", 0.0),
            "total_s": t.get("total_s", 0.0), "prompt_tokens": answer.prompt_tokens, "prefill_tokens": t.get("prefill_tokens", 0),
            "generated_tokens": answer.generated_tokens, "gen_tok_s": answer.generated_tokens / gen_s if answer.generated_tokens and gen_s > 0.01 else None,
            "refused": answer.refused, "correct": _correct(item, answer.text, answer.refused),
        })
    return _table(rows)


def _correct(item: dict[str, Any], text: str, refused: bool = False) -> bool | None:
    """Answer correctness as `newsbot eval` counts it, so speed is never bought with quality."""
    from rag.quality.evaluate import answer_correct

    return answer_correct(item, text) and not refused if item.get("expect") else None


def _table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("retrieve_s", "first_token_s", "total_s", "prompt_tokens", "prefill_tokens", "generated_tokens", "gen_tok_s")
    graded = [r["correct"] for r in rows if r.get("correct") is not None]
    return {"n": len(rows), **{k: _stats([r[k] for r in rows if r.get(k) is not None]) for k in keys},
            "answer_correct": round(sum(graded) / len(graded), 4) if graded else None, "rows": rows}


# The tutorial pipeline as people build it: the English MiniLM (extra `minilm`), whatever newsbot uses.
NAIVE_EMBEDDER = "all-MiniLM-L6-v2"


def run_naive(settings: Settings, questions: list[dict[str, Any]], llama) -> dict[str, Any]:
    """The LangChain tutorial RAG: recursive splitter 1000/200, MiniLM + Chroma, k=4, one stuff prompt."""
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from rag.index.embeddings import make_embeddings

    tmp = Path(tempfile.mkdtemp(prefix="newsbot-naive-"))
    try:
        docs = [Document(page_content=p.read_text(encoding="utf-8"), metadata={"source": p.stem})
                for p in sorted(settings.seeds_dir.glob("*.txt"))]
        splits = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        client = chromadb.PersistentClient(path=str(tmp), settings=ChromaSettings(anonymized_telemetry=False))
        store = Chroma(collection_name="naive", embedding_function=make_embeddings(NAIVE_EMBEDDER), client=client)
        store.add_documents(splits)
        retriever = store.as_retriever(search_kwargs={"k": 4})
        prompt = ChatPromptTemplate.from_messages([
            ("system", "You are an assistant for question-answering tasks. Use the following pieces of retrieved context to "
                       "answer the question. If you don't know the answer, say that you don't know. Use three sentences "
                       "maximum and keep the answer concise. Cite the pieces you used as [n].\n\n{context}"),
            ("human", "{question}"),
        ])
        rows = []
        for item in questions:
            started = time.perf_counter()
            found = retriever.invoke(item["question"])
            retrieve_s = time.perf_counter() - started
            context = "\n\n".join(f"[{i}] {d.page_content}" for i, d in enumerate(found, 1))
            messages = prompt.invoke({"context": context, "question": item["question"]}).to_messages()
            chat = [{"role": "system" if m.type == "system" else "user", "content": m.content} for m in messages]
            first = None
            generated = 0
            pieces: list[str] = []
            for chunk in llama.create_chat_completion(messages=chat, max_tokens=settings.max_answer_tokens, temperature=0.0, stream=True):
                if chunk["choices"][0]["delta"].get("content"):
                    pieces.append(chunk["choices"][0]["delta"]["content"])
                    generated += 1
                    first = first or time.perf_counter() - started
            total = time.perf_counter() - started
            prompt_tokens = len(llama.tokenize(json.dumps(chat).encode()))
            rows.append({"id": item.get("id"), "retrieve_s": retrieve_s, "first_token_s": first or total, "total_s": total,
                         "prompt_tokens": prompt_tokens, "prefill_tokens": None, "generated_tokens": generated,
                         "gen_tok_s": generated / max(1e-6, total - (first or total)) if generated else None,
                         "correct": _correct(item, "".join(pieces))})
        return _table(rows)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def retrieval_scale(settings: Settings, max_chunks: int) -> list[dict[str, Any]]:
    """Synthetic stores of recombined corpus sentences; embeddings are averages of sentence vectors,
    so building 100k chunks measures the store and index, not 100k MiniLM passes on a laptop."""
    import numpy as np

    from rag.answering.retrieve import HybridSearch
    from rag.index.documents import read_document
    from rag.index.embeddings import make_embeddings
    from rag.index.keyword import KeywordIndex
    from rag.index.store import Store
    from rag.text import sentence_spans

    sentences: list[str] = []
    for path in sorted(settings.seeds_dir.glob("*.txt")):
        doc = read_document(path)
        for block in doc.blocks:
            sentences += [doc.text[s.start:s.end] for s in sentence_spans(doc.text, block.start, block.end) if len(doc.text[s.start:s.end]) > 30]
    embeddings = make_embeddings(settings.embedding_model)
    vectors = np.asarray(embeddings.embed_documents(sentences), dtype=np.float32)
    rng = random.Random(0)
    queries = [s[:80] for s in rng.sample(sentences, 20)]
    results = []
    for size in [n for n in (1_000, 10_000, 100_000) if n <= max_chunks] or [max_chunks]:
        tmp = Path(tempfile.mkdtemp(prefix=f"newsbot-scale-{size}-"))
        try:
            local = settings.model_copy(update={"data_dir": tmp, "chroma_host": None})
            store = Store(local, embeddings)
            started = time.perf_counter()
            for offset in range(0, size, 2000):
                ids, texts, metas, vecs = [], [], [], []
                for i in range(offset, min(size, offset + 2000)):
                    picks = rng.sample(range(len(sentences)), 3)
                    ids.append(f"syn{i:07d}#00000")
                    texts.append(" ".join(sentences[p] for p in picks))
                    vec = vectors[picks].mean(axis=0)
                    vecs.append((vec / np.linalg.norm(vec)).tolist())
                    metas.append({"source": f"syn{i:07d}", "title": "", "date": "", "date_ord": 0, "start": 0, "end": len(texts[-1])})
                store.chunks.add(ids=ids, documents=texts, metadatas=metas, embeddings=vecs)
            store.bump_generation()
            keywords = KeywordIndex(local.keyword_dir)
            keywords.ensure_current(store)
            build_s = time.perf_counter() - started
            search = HybridSearch(store, keywords, local.bm25_weight, local.dense_weight, local.top_k, local.rrf_k)
            search.search([queries[0]])  # load everything once
            latencies = []
            for query in queries * 3:
                t0 = time.perf_counter()
                search.search([query])
                latencies.append(time.perf_counter() - t0)
            lat = sorted(latencies)
            results.append({"chunks": size, "build_s": round(build_s, 1), "chunks_per_s": round(size / build_s),
                            "query_p50_ms": round(1000 * statistics.median(lat), 1),
                            "query_p95_ms": percentile([1000 * x for x in lat], 0.95, digits=1)})
            logger.info("scale %s", results[-1])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return results


def run_bench(settings: Settings, service, questions: list[dict[str, Any]], baseline: str | None = None) -> dict[str, Any]:
    """Cold and warm runs of the service over the questions (and the naive baseline): the report."""
    report: dict[str, Any] = {"machine": _machine(), "model": settings.model,
                              "reader": service.reader.name if service.reads else None}
    t0 = time.perf_counter()
    service.warm_up()
    service.search.search(["Aufwärmen"])
    report["load_s"] = round(time.perf_counter() - t0, 2)
    forget_states(service)  # cold: no chunk state from earlier runs, in RAM or on disk
    report["newsbot_cold"] = run_newsbot(service, questions)
    blocks = getattr(service.reader, "blocks", None) if service.reads else None
    if blocks is not None:  # the states `newsbot ingest` computes, here for these questions' first blocks only
        report["block_states"] = _block_states(service, questions)
        forget_states(service)
        service.reader.states.blocks = blocks
        report["newsbot_blocks"] = run_newsbot(service, questions)
    report["newsbot_warm"] = run_newsbot(service, questions)
    if baseline == "naive":
        report["naive"] = run_naive(settings, questions, service.llm.llama)
        cold = report["newsbot_cold"]
        report["ratio_first_token_cold"] = _ratio(cold, report["naive"], "first_token_s")
        report["ratio_total_cold"] = _ratio(cold, report["naive"], "total_s")
        report["ratio_first_token_warm"] = _ratio(report["newsbot_warm"], report["naive"], "first_token_s")
        report["ratio_total_warm"] = _ratio(report["newsbot_warm"], report["naive"], "total_s")
        if "newsbot_blocks" in report:
            report["ratio_first_token_blocks"] = _ratio(report["newsbot_blocks"], report["naive"], "first_token_s")
    return report


def forget_states(service) -> None:
    for model in service.models:
        model.forget_states()


def _block_states(service, questions: list[dict[str, Any]]) -> dict[str, Any]:
    """Compute the first-block states of these questions as ingest would; cost per state, and the
    estimate for all the store's first blocks."""
    from rag.answering.block_states import block_messages, first_blocks

    llm = service.reader
    seconds, tokens, sizes = [], [], []
    for item in questions:
        _, _, context = service.retrieve(item["question"])
        if not context.prefix_text:
            continue
        messages, prefix = block_messages(service.prompts, context.prefix_text)
        started = time.perf_counter()
        evaluated, written = llm.save_prefix_state(messages, prefix)
        if evaluated:
            seconds.append(time.perf_counter() - started)
            tokens.append(evaluated)
            sizes.append(written)
    every = len(first_blocks(service))
    per_s = statistics.mean(seconds) if seconds else 0.0
    return {"computed": len(seconds), "all_first_blocks": every, "s_per_state": round(per_s, 2),
            "tokens_per_state": round(statistics.mean(tokens), 1) if tokens else None,
            "mb_per_state": round(statistics.mean(sizes) / 1e6, 2) if sizes else None,
            "ingest_s_all": round(per_s * every), "disk_mb_all": round(statistics.mean(sizes) * every / 1e6) if sizes else None}


def scale_report(settings: Settings, max_chunks: int) -> dict[str, Any]:
    """`--retrieval-scale N`: the report of synthetic stores up to N chunks."""
    return {"machine": _machine(), "model": settings.model, "retrieval_scale": retrieval_scale(settings, max_chunks)}


def _ratio(ours: dict, base: dict, key: str) -> float | None:
    a, b = ours[key]["median"], base[key]["median"]
    return round(a / b, 3) if a and b else None


def _machine() -> str:
    import os
    import platform

    return f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, {platform.python_version()}"

