"""Retracting and managing stored sources (issue 17 item 8): a deleted file named again leaves,
a same-named file elsewhere is a conflict instead of silently replacing a seed, `newsbot forget`
retracts for good, `newsbot sources` lists what is stored. Real Chroma store, real CLI."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import SEEDS, make_settings

SEED = "000_24974ad38bb207f4"
ARTICLE = ("Radwege in Freiburg\n2025-09-02\nDer Gemeinderat von Freiburg hat am Dienstag 48 Kilometer neue Radwege "
           "beschlossen. Die Kosten liegen bei rund 62 Millionen Euro, das Land trägt etwa die Hälfte.\n")


@pytest.fixture
def env(tmp_path, monkeypatch, embeddings):
    monkeypatch.setenv("NEWSBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no .env from the repo
    import rag.index.embeddings

    monkeypatch.setattr(rag.index.embeddings, "make_embeddings", lambda name: embeddings)
    return make_settings(tmp_path / "data")


def newsbot(capsys, *argv: str) -> tuple[int, str, str]:
    from bot.cli import main

    capsys.readouterr()
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def ingest(capsys, *paths) -> dict:
    status, out, err = newsbot(capsys, "ingest", "--json", *map(str, paths))
    summary = json.loads(out)
    assert (status == 0) == (not summary["errors"]), err
    return summary


def stored(env, embeddings) -> dict:
    from rag.index.store import Store

    return Store(env, embeddings).manifest()


def served(env, embeddings) -> set[str]:
    from rag.index.store import Store

    return {meta["source"] for _, _, meta in Store(env, embeddings).iter_chunks()}


def test_a_file_ingested_on_its_own_and_deleted_leaves_when_named_again(tmp_path, env, capsys, embeddings):
    loose = tmp_path / "einzeln" / "radwege.txt"
    loose.parent.mkdir()
    loose.write_text(ARTICLE, encoding="utf-8")
    assert ingest(capsys, loose)["added"] == 1
    assert "radwege" in served(env, embeddings)
    loose.unlink()
    summary = ingest(capsys, loose)  # before: "no such file", and the article stayed served
    assert (summary["removed"], summary["errors"]) == (1, [])
    assert "radwege" not in stored(env, embeddings) and "radwege" not in served(env, embeddings)


def test_a_same_named_file_elsewhere_is_a_conflict_not_a_silent_replacement(tmp_path, env, capsys, embeddings):
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    assert ingest(capsys, seeds)["added"] == 5
    seed_before = stored(env, embeddings)[SEED]
    other = tmp_path / "other"
    other.mkdir()
    (other / f"{SEED}.md").write_text(ARTICLE, encoding="utf-8")
    status, out, err = newsbot(capsys, "ingest", "--json", str(other))
    summary = json.loads(out)
    assert status == 1 and (summary["added"], summary["updated"]) == (0, 0)
    (error,) = summary["errors"]
    assert f"{SEED}.md" in error and "already taken" in error and str(seeds / f"{SEED}.txt") in error
    assert f"newsbot forget {SEED}" in error
    after = stored(env, embeddings)[SEED]
    assert (after.path, after.content_hash) == (seed_before.path, seed_before.content_hash)  # the seed is untouched

    # a file that moved (its old path is gone) keeps its id: that is no conflict
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.move(str(seeds / f"{SEED}.txt"), moved / f"{SEED}.txt")
    summary = ingest(capsys, moved)
    assert summary["errors"] == [] and stored(env, embeddings)[SEED].path == str((moved / f"{SEED}.txt").resolve())
    assert ingest(capsys, seeds)["removed"] == 0 and SEED in served(env, embeddings)  # the old folder's sync keeps it


def test_forget_retracts_a_local_file_for_good_until_it_is_named_again(tmp_path, env, capsys, embeddings):
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    assert ingest(capsys, seeds)["added"] == 5
    status, out, err = newsbot(capsys, "forget", SEED)
    assert status == 0 and SEED in out, err
    assert SEED not in stored(env, embeddings) and SEED not in served(env, embeddings)
    summary = ingest(capsys, seeds)  # the folder's next ingest does not bring it back
    assert summary["added"] == 0 and SEED not in stored(env, embeddings)

    # by path, too
    other = "001_d0d0cfa9444d8be7"
    status, out, _ = newsbot(capsys, "forget", str(seeds / f"{other}.txt"))
    assert status == 0 and other in out and other not in stored(env, embeddings)

    # naming the file ingests it again
    assert ingest(capsys, seeds / f"{SEED}.txt")["added"] == 1
    assert SEED in served(env, embeddings)
    assert ingest(capsys, seeds)["added"] == 0 and other not in stored(env, embeddings)

    status, _, err = newsbot(capsys, "forget", "gibt-es-nicht")
    assert status == 1 and "gibt-es-nicht: no such source" in err and "newsbot sources" in err


def test_sources_lists_what_is_stored_and_which_files_are_gone(tmp_path, env, capsys, embeddings):
    loose = tmp_path / "radwege.txt"
    loose.write_text(ARTICLE, encoding="utf-8")
    assert ingest(capsys, SEEDS, loose)["added"] == 6
    status, out, _ = newsbot(capsys, "sources", "--json")
    rows = {r["source"]: r for r in json.loads(out)}
    assert status == 0 and set(rows) == {p.stem for p in SEEDS.iterdir()} | {"radwege"}
    assert rows["radwege"]["kind"] == "file" and rows["radwege"]["status"] == "ok"
    assert rows["radwege"]["where"] == str(loose.resolve()) and rows["radwege"]["title"] == "Radwege in Freiburg"
    assert rows["radwege"]["date"] == "2025-09-02" and rows["radwege"]["chunks"] >= 1
    loose.unlink()
    status, out, _ = newsbot(capsys, "sources")
    assert status == 0 and "radwege  2025-09-02  Radwege in Freiburg  [missing]" in out
    assert f"{SEED}  " in out
