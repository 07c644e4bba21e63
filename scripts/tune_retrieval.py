"""Evidence in context, per retrieval setting, on the tune half (choose there) and the held-out half (report).

Usage: .venv/bin/python scripts/tune_retrieval.py [--heldout] [--lexical] [-v] [SETTING=VALUE ...]
Translations of non-German questions (the only model call retrieval makes) are computed once with the
bundled model and cached in benchmarks/questions/signals/translations.json, so a grid over the
retrieval settings runs without the model.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rag.quality.fit import _has_evidence  # noqa: E402
from rag.settings import load_settings  # noqa: E402
from rag.wiring import build_service, ensure_store  # noqa: E402

CACHE = REPO / "benchmarks/questions/signals/translations.json"


def retrieval_service(overrides: dict[str, str]):
    """The service on a store of the seeds in a temp dir, its translations read from the cache."""
    data = Path(tempfile.gettempdir()) / "newsbot-tune-retrieval"
    settings = load_settings(data_dir=data, **overrides)
    service = build_service(settings)
    ensure_store(settings, service.store)
    cache = json.loads(CACHE.read_text(encoding="utf-8")) if CACHE.exists() else {}
    real_translate = service.translate

    def translate(question: str) -> str:
        if question not in cache:
            cache[question] = real_translate(question)
            CACHE.write_text(json.dumps(cache, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
        return cache[question]

    service.translate = translate
    return service


def load_split(split: str) -> list[dict]:
    return [json.loads(line) for line in (REPO / f"benchmarks/questions/{split}.jsonl").open(encoding="utf-8")]


def main(argv: list[str]) -> int:
    split = "heldout" if "--heldout" in argv else "tune"
    overrides = dict(a.split("=", 1) for a in argv if "=" in a)
    questions = load_split(split)
    service = retrieval_service(overrides)
    if "--lexical" in argv:  # the unfitted order, for comparison
        service.decisions.context = None
    found: dict[str, list[int]] = {}
    tokens = []
    misses = []
    for item in questions:
        if not item.get("sources") or item["kind"] in ("unanswerable", "injection"):
            continue
        _, queries, context = service.retrieve(service.check_question(item["question"]))
        hit = any(_has_evidence(s.text, item) for s in context.sentences)
        found.setdefault(item["lang"], []).append(int(hit))
        tokens.append(context.tokens)
        if not hit:
            misses.append((item["id"], item["lang"], item["question"], queries[1:]))
    for lang, hits in sorted(found.items()):
        print(f"{split} {lang}: evidence in context {sum(hits)}/{len(hits)}")
    total = [h for hits in found.values() for h in hits]
    print(f"{split} all: {sum(total)}/{len(total)} = {sum(total) / len(total):.1%}, median context tokens {statistics.median(tokens)}")
    if "-v" in argv:
        for miss in misses:
            print("MISS", *miss)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
