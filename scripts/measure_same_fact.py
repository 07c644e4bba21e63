"""The same-fact threshold of rag/answering/agreement.py, measured on benchmarks/same_fact/pairs.jsonl.

Usage: .venv/bin/python scripts/measure_same_fact.py [PAIRS.jsonl]
Embeds both sentences of every pair with the project's default embedder (passage vectors, as the
service's sentence vectors are), and prints the cosine threshold that best separates same-fact pairs
(a conflicting figure or name, or a restatement) from different facts of one topic, its accuracy,
each kind's similarity range, and how often the token comparison (`conflict`) flags each kind.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rag.answering.agreement import SAME_FACT_THRESHOLD, conflict, cosine  # noqa: E402
from rag.index.embeddings import make_embeddings  # noqa: E402
from rag.settings import Settings  # noqa: E402


def best_threshold(similarities: list[float], same: list[bool]) -> tuple[float, int]:
    """The midpoint between neighbouring similarities that classifies the most pairs right."""
    values = sorted(set(similarities))
    cuts = [values[0] - 1e-3] + [(a + b) / 2 for a, b in zip(values, values[1:])] + [values[-1] + 1e-3]
    scored = [(sum((s >= cut) == label for s, label in zip(similarities, same)), cut) for cut in cuts]
    right, cut = max(scored, key=lambda pair: (pair[0], -abs(pair[1] - 0.9)))
    return cut, right


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else REPO / "benchmarks/same_fact/pairs.jsonl"
    pairs = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    name = Settings.model_fields["embedding_model"].default
    embeddings = make_embeddings(name)
    vectors = np.asarray(embeddings.embed_documents([t for p in pairs for t in (p["a"], p["b"])]), dtype=np.float32)
    similarities = [cosine(vectors[2 * i], vectors[2 * i + 1]) for i in range(len(pairs))]
    same = [bool(p["same_fact"]) for p in pairs]
    cut, right = best_threshold(similarities, same)
    print(f"{len(pairs)} pairs, embedder {name}")
    for kind in dict.fromkeys(p["kind"] for p in pairs):
        sims = [s for s, p in zip(similarities, pairs) if p["kind"] == kind]
        flagged = sum(bool(conflict(p["a"], p["b"])) for p in pairs if p["kind"] == kind)
        print(f"  {kind:10s} n={len(sims):2d}  cosine {min(sims):.3f}..{max(sims):.3f} (median {np.median(sims):.3f})  "
              f"token conflict {flagged}/{len(sims)}")
    print(f"best threshold {cut:.3f}: accuracy {right / len(pairs):.3f} ({right}/{len(pairs)})")
    current = sum((s >= SAME_FACT_THRESHOLD) == label for s, label in zip(similarities, same))
    print(f"SAME_FACT_THRESHOLD {SAME_FACT_THRESHOLD}: accuracy {current / len(pairs):.3f} ({current}/{len(pairs)})")
    shown = [(s >= SAME_FACT_THRESHOLD and bool(conflict(p["a"], p["b"]))) == (p["kind"] == "conflict")
             for s, p in zip(similarities, pairs)]
    print(f"disagreement shown (same fact and token conflict) right for {sum(shown)}/{len(pairs)} pairs")
    for ok, s, p in zip(shown, similarities, pairs):
        if not ok:
            print(f"  wrong: {p['kind']} {s:.3f}  {p['a'][:60]!r} / {p['b'][:60]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
