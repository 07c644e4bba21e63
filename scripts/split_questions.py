"""Merge the written question files and split them once into tune (60%) and heldout (40%).

Stratified by (kind, lang, style) with a fixed seed, so each half has every kind in proportion.
Run once (benchmarks/questions/ holds the result); re-running with the same inputs reproduces it.
A later batch is split the same way on its own and its halves appended, so no question already
in a half changes sides (batch d, 120 questions written 2026-12-05: 75 tune, 45 held-out).
Usage: python scripts/split_questions.py OUT_DIR a.jsonl b.jsonl c.jsonl
"""

import collections
import json
import pathlib
import random
import sys

SEED = 20261202
TUNE_SHARE = 0.6


def main() -> None:
    out = pathlib.Path(sys.argv[1])
    items = []
    for path in sys.argv[2:]:
        items += [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    strata = collections.defaultdict(list)
    for question in items:
        strata[(question["kind"], question["lang"], question["style"])].append(question)
    rng = random.Random(SEED)
    tune, held = [], []
    for key in sorted(strata):
        group = sorted(strata[key], key=lambda q: q["id"])
        rng.shuffle(group)
        cut = round(len(group) * TUNE_SHARE)
        tune += group[:cut]
        held += group[cut:]
    out.mkdir(parents=True, exist_ok=True)
    for name, part in (("tune", tune), ("heldout", held)):
        part.sort(key=lambda q: q["id"])
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as handle:
            for question in part:
                handle.write(json.dumps(question, ensure_ascii=False) + "\n")
        print(name, len(part), dict(collections.Counter(q["kind"] for q in part)))


if __name__ == "__main__":
    main()
