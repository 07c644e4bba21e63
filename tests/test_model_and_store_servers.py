"""Scale-out, tested for real: a `chroma run` server and a `python -m llama_cpp.server` with the
small bundled model, both on free ports of 127.0.0.1, started and stopped by these tests.

What must hold:
- two `newsbot ingest` processes racing against one Chroma server end in the same state as one
  in-process run (no duplicate chunks or sources), and a keyword index in another process follows
  what other processes write to the shared store;
- `newsbot ask` and `newsbot eval` work against both servers, and the answers cite the same
  sources as the in-process path (embedded Chroma + in-process llama.cpp) on the same questions;
- a model server killed while a question is in flight gives that question a clear error (exit 1,
  the URL named, no traceback), and once it is back the next question is answered; the same for
  the Chroma server (restarted on the same --path).

Run only these: pytest -m server tests/test_model_and_store_servers.py
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, SEEDS, make_settings

from rag.errors import GenerationError
from rag.index.ingest import ingest
from rag.index.keyword import KeywordIndex
from rag.index.store import Store, StoreError
from rag.wiring import build_service

pytestmark = pytest.mark.server

BIN = Path(sys.executable).parent
MODEL = "qwen2.5-coder-0.5b"
# Clearly answerable German questions from the dev set (../shared/eval/questions.jsonl).
QUESTIONS = [
    {"id": "d05", "question": "Wer hat laut der Agentur Tass gesagt, dass ein Dreier-Gipfel in Alaska nicht besprochen wurde?",
     "lang": "de", "kind": "fact", "sources": ["000_24974ad38bb207f4"], "evidence": ["Juri Uschakow"],
     "expect": [["Uschakow", "Ushakov"]], "forbid": []},
    {"id": "d16", "question": "Wie reagierte Kreml-Sprecher Peskow auf Trumps Andeutung eines Telefonats mit Putin?",
     "lang": "de", "kind": "fact", "sources": ["003_abdad34a08e92d8c"], "evidence": ["weder bestätigen noch dementieren"],
     "expect": [["weder bestätigen noch dementieren", "weder bestätigt noch dementiert", "neither confirm"]], "forbid": []},
    {"id": "d19", "question": "Worauf ist die teilweise Waffenruhe vom März zunächst begrenzt?",
     "lang": "de", "kind": "fact", "sources": ["004_141f0a1c237ad6c8"],
     "evidence": ["begrenzt auf wechselseitige Angriffe auf Energieanlagen"], "expect": [["Energie", "energy"]], "forbid": []},
]
PESKOW = QUESTIONS[1]


# ---- real server processes ----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """One server subprocess on a fixed port; it can be killed and started again on that port."""

    def __init__(self, name: str, argv: list[str], ready_url: str, log_path: Path, ready_timeout_s: float) -> None:
        self.name = name
        self.argv = argv
        self.ready_url = ready_url
        self.log_path = log_path
        self.ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen | None = None

    def start(self) -> ServerProcess:
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env=_clean_env())
        finally:
            log.close()
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {self.ready_timeout_s:.0f} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """Hard stop (SIGKILL): what a crash or an OOM kill looks like to clients."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def wait_for_log(self, needle: str, offset: int, timeout_s: float, while_running: subprocess.Popen) -> bool:
        """Wait until `needle` appears in the log after `offset` (False if `while_running` ends first)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and while_running.poll() is None:
            with self.log_path.open("rb") as handle:
                handle.seek(offset)
                if needle.encode() in handle.read():
                    return True
            time.sleep(0.05)
        return False


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSBOT_") and k != "DISCORD_TOKEN"}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("scaleout")


@pytest.fixture(scope="module")
def articles(workdir: Path) -> Path:
    """The seed articles at one path that every process ingests (paths are part of the state)."""
    return Path(shutil.copytree(SEEDS, workdir / "articles"))


@pytest.fixture(scope="module")
def chroma(workdir: Path):
    port = free_port()
    server = ServerProcess(
        "chroma run", [str(BIN / "chroma"), "run", "--path", str(workdir / "chroma-server"), "--host", "127.0.0.1",
                       "--port", str(port)],
        f"http://127.0.0.1:{port}/api/v2/heartbeat", workdir / "chroma.log", ready_timeout_s=60,
    )
    server.port = port  # type: ignore[attr-defined]
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def model_server(workdir: Path):
    from rag.llm.models import resolve_model_path

    model_path = resolve_model_path(MODEL, make_settings(workdir / "unused").model_cache_dir)
    port = free_port()
    threads = str(len(os.sched_getaffinity(0)))
    server = ServerProcess(
        "llama_cpp.server", [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--model_alias", MODEL,
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", threads,
                             "--n_threads_batch", threads],
        f"http://127.0.0.1:{port}/v1/models", workdir / "llama-server.log", ready_timeout_s=120,
    )
    server.port = port  # type: ignore[attr-defined]
    server.base_url = f"http://127.0.0.1:{port}/v1"  # type: ignore[attr-defined]
    try:
        yield server.start()
    finally:
        server.stop()


def remote_values(workdir: Path, articles: Path, chroma, model_server) -> dict[str, object]:
    return {
        "chroma_host": "127.0.0.1", "chroma_port": chroma.port, "llm_backend": "openai",
        "openai_base_url": model_server.base_url, "openai_model": MODEL, "openai_max_retries": 2,
        "openai_timeout_s": 120.0, "seeds_dir": articles, "model": MODEL,
    }


@pytest.fixture(scope="module")
def remote_settings(workdir, articles, chroma, model_server):
    return make_settings(workdir / "remote-data", **remote_values(workdir, articles, chroma, model_server))


@pytest.fixture(scope="module")
def remote_env(workdir, articles, chroma, model_server) -> dict[str, str]:
    """The environment of a newsbot process pointed at both servers by settings alone."""
    values = remote_values(workdir, articles, chroma, model_server)
    env = {f"NEWSBOT_{k.upper()}": str(v) for k, v in values.items()}
    env["NEWSBOT_DATA_DIR"] = str(workdir / "cli-data")
    env["NEWSBOT_SKIP_READING"] = "false"  # the server reads every context, as make_settings has the in-process one do
    return _clean_env(**env)


def newsbot(env: dict[str, str], cwd: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    # cwd is a temp dir, so no .env of the checkout is read
    return subprocess.run([str(BIN / "newsbot"), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def newsbot_popen(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "newsbot"), *args], env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def store_state(store: Store):
    got = store.chunks.get(include=["documents", "metadatas"])
    chunks = sorted(zip(got["ids"], got["documents"], [tuple(sorted(m.items())) for m in got["metadatas"]]))
    sources = {sid: (r.content_hash, r.status, r.chunks, r.path) for sid, r in store.manifest().items()}
    return chunks, sources


# ---- the in-process path, for comparison ------------------------------------------------------

@pytest.fixture(scope="module")
def local_service(workdir, articles, embeddings):
    """Embedded Chroma + in-process llama.cpp, ingested by one run."""
    settings = make_settings(workdir / "local-data", model=MODEL, seeds_dir=articles)
    service = build_service(settings, embeddings=embeddings)
    summary = ingest(service.store, [articles], settings.chunk_chars)
    assert summary.added == 5 and not summary.errors
    return service


# ---- shared store: concurrent ingestion ---------------------------------------------------------

@pytest.fixture(scope="module")
def shared_store(workdir, articles, remote_settings, remote_env, embeddings):
    """Two `newsbot ingest` processes started together against the empty shared collection; a
    keyword index in this process was built before (empty) and must follow."""
    store = Store(remote_settings, embeddings)
    observer = KeywordIndex(workdir / "observer-keyword")
    observer.ensure_current(store)
    assert len(observer) == 0 and store.chunk_count() == 0
    procs = [newsbot_popen(remote_env, workdir, "ingest", "--json", str(articles)) for _ in range(2)]
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=900)
            outputs.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return store, observer, outputs


def test_concurrent_ingests_end_like_one_run(shared_store, local_service, articles, remote_settings, workdir, remote_env):
    store, observer, outputs = shared_store
    for code, out, err in outputs:
        assert code == 0, err[-3000:]
        assert "Traceback" not in err
        summary = json.loads(out)
        assert summary["errors"] == [] and summary["added"] + summary["unchanged"] == 5
    expected = store_state(local_service.store)
    chunks, sources = store_state(store)
    assert len({cid for cid, _, _ in chunks}) == len(chunks)  # no duplicate chunk ids
    assert (chunks, sources) == expected  # the same state as one in-process run
    again = ingest(store, [articles], remote_settings.chunk_chars)
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 5)

    # the keyword index of this process picks up what the other processes wrote
    observer.ensure_current(store)
    assert len(observer) == store.chunk_count() == len(expected[0])
    assert set(observer.sources) == set(expected[1])

    # ... and what a later process removes: take one article away, let a CLI ingest notice
    gone = "004_141f0a1c237ad6c8"
    aside = workdir / "aside"
    aside.mkdir()
    shutil.move(articles / f"{gone}.txt", aside / f"{gone}.txt")
    try:
        removed = newsbot(remote_env, workdir, "ingest", "--json", str(articles))
        assert removed.returncode == 0, removed.stderr[-3000:]
        assert json.loads(removed.stdout)["removed"] == 1
        observer.ensure_current(store)
        assert gone not in set(observer.sources) and len(observer) == store.chunk_count()
    finally:
        shutil.move(aside / f"{gone}.txt", articles / f"{gone}.txt")
    back = ingest(store, [articles], remote_settings.chunk_chars)
    assert back.added == 1
    assert store_state(store) == expected
    observer.ensure_current(store)
    assert gone in set(observer.sources)


# ---- answers through both servers ---------------------------------------------------------------

def cited(answer: dict) -> set[str]:
    return {c["source"] for c in answer["citations"]}


def test_answers_through_servers_cite_the_same_sources_as_in_process(shared_store, local_service, workdir, remote_env,
                                                                     model_server):
    questions = workdir / "questions.jsonl"
    questions.write_text("".join(json.dumps({"id": q["id"], "question": q["question"]}, ensure_ascii=False) + "\n"
                                 for q in QUESTIONS), encoding="utf-8")
    result = newsbot(remote_env, workdir, "ask", "--json", "--file", str(questions))
    assert result.returncode == 0, result.stderr[-3000:]
    remote = {a["id"]: a for a in map(json.loads, result.stdout.splitlines())}
    assert set(remote) == {q["id"] for q in QUESTIONS}
    for answer in remote.values():
        assert f"@ {model_server.base_url}" in answer["model"]  # really answered by the server

    local = {q["id"]: local_service.answer(q["question"]).to_json() for q in QUESTIONS}
    report = {qid: (sorted(cited(local[qid])), sorted(cited(remote[qid])), local[qid]["answer"], remote[qid]["answer"])
              for qid in local}
    (workdir / "compare.json").write_text(json.dumps({"local": local, "remote": remote}, ensure_ascii=False, indent=1))
    answered = [qid for qid in local if not local[qid]["refused"]]
    assert answered, f"every question refused in-process, so comparing sources proves nothing: {report}"
    for qid in local:
        assert local[qid]["refused"] == remote[qid]["refused"], report
        # the same answering article; a joined fourth sentence may differ (the server's pick is a
        # grammar-constrained choice, not log-probabilities: the join scores shift a little)
        assert local[qid]["refused"] or cited(local[qid]) & cited(remote[qid]), report


def test_eval_through_servers(shared_store, workdir, remote_env, model_server):
    if not (REPO / "rag" / "quality" / "evaluate.py").exists():
        pytest.skip("rag/quality/evaluate.py is not there yet: `newsbot eval` cannot run")
    questions = workdir / "eval.jsonl"
    questions.write_text(json.dumps(PESKOW, ensure_ascii=False) + "\n", encoding="utf-8")
    out = workdir / "eval-results.jsonl"
    result = newsbot(remote_env, workdir, "eval", str(questions), "--json", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["questions"] == 1 and model_server.base_url in summary["model"]
    assert summary["answer_correct"] is not None and summary["retrieval_hit_rate"] is not None
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [PESKOW["id"]]
    assert all(r["answer"] and r["hit"] is not None for r in rows)


# ---- outages ------------------------------------------------------------------------------------

class _KillAtFirstToken:
    """The server's LLM backend, but the model server is killed as the first token streams in
    (before the service's refusal filter, so it does not matter what the model answers)."""

    def __init__(self, inner, kill) -> None:
        self.inner = inner
        self.kill = kill
        self.armed = True
        self.name = inner.name
        self.supports_choice = inner.supports_choice
        self.can_stream = inner.can_stream

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def complete(self, messages, **kwargs):
        forward = kwargs.get("on_token")

        def on_token(piece: str) -> None:
            if self.armed:
                self.armed = False
                self.kill()
            if forward is not None:
                forward(piece)

        kwargs["on_token"] = on_token
        return self.inner.complete(messages, **kwargs)


def assert_answered_by_servers(answer, model_server) -> None:
    """The pipeline ran end to end: retrieval found the article, the model server generated."""
    assert answer.error is None and answer.generated_tokens > 0, answer
    assert model_server.base_url in answer.model
    assert set(PESKOW["sources"]) <= {p.source for p in answer.retrieved}, answer.retrieved
    if not answer.refused:
        assert answer.citations


def test_model_server_killed_mid_question_then_back(shared_store, workdir, remote_env, remote_settings, model_server,
                                                    embeddings):
    from rag.llm.openai_server import OpenAICompatibleLLM

    # 1. the CLI: the server dies while the question is at the model
    mark = model_server.log_size()
    proc = newsbot_popen(remote_env, workdir, "ask", "--json", PESKOW["question"])
    try:
        in_flight = model_server.wait_for_log('"POST /v1/chat/completions', mark, timeout_s=600, while_running=proc)
        assert in_flight, f"the question never reached the model server: {proc.communicate(timeout=30)}"
        model_server.kill()
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, (out, err[-3000:])
    assert f"127.0.0.1:{model_server.port}" in err and "model server" in err, err[-3000:]
    assert "Traceback" not in err and out == ""

    # 2. a long-running process (a bot): the server is killed as the answer streams in
    model_server.start()
    llm = _KillAtFirstToken(OpenAICompatibleLLM(remote_settings), model_server.kill)
    service = build_service(remote_settings, embeddings=embeddings, llm_factory=lambda: llm)
    with pytest.raises(GenerationError) as failed:
        service.answer(PESKOW["question"])
    assert not llm.armed and model_server.proc.poll() is not None
    assert model_server.base_url in str(failed.value) and "mid-answer" in str(failed.value), failed.value

    # 3. the server is back: the same process answers the next question
    model_server.start()
    assert_answered_by_servers(service.answer(PESKOW["question"]), model_server)


class _KillOnQuery:
    """Embeddings that stop the Chroma server the moment a question is embedded: the very next
    Chroma call of that question (the dense query) finds the server gone."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.on_query = None

    def embed_documents(self, texts):
        return self.inner.embed_documents(texts)

    def embed_query(self, text):
        if self.on_query is not None:
            hook, self.on_query = self.on_query, None
            hook()
        return self.inner.embed_query(text)


def test_chroma_server_killed_mid_question_then_back(shared_store, workdir, remote_env, remote_settings, chroma,
                                                     model_server, embeddings):
    if model_server.proc is None or model_server.proc.poll() is not None:
        model_server.start()  # an earlier test may have left it stopped
    embedder = _KillOnQuery(embeddings)
    service = build_service(remote_settings, embeddings=embedder)
    address = f"127.0.0.1:{chroma.port}"

    # 1. a long-running process: the server dies between the keyword and the dense search
    embedder.on_query = chroma.kill
    with pytest.raises(StoreError) as failed:
        service.answer(PESKOW["question"])
    assert address in str(failed.value) and "Chroma server" in str(failed.value)

    # 2. the CLI while it is down: exit 1, the address, no traceback
    down = newsbot(remote_env, workdir, "ask", "--json", PESKOW["question"], timeout=120)
    assert down.returncode == 1 and address in down.stderr and "Traceback" not in down.stderr, down.stderr[-3000:]

    # 3. restarted on the same --path: the same process answers the next question from the same data
    chroma.start()
    assert_answered_by_servers(service.answer(PESKOW["question"]), model_server)
    assert service.store.chunk_count() == len(store_state(shared_store[0])[0])
