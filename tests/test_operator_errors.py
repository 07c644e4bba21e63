"""Issue 17.10: an operator's mistake ends in one clear message, never a traceback and never
silence. The CLI runs as a subprocess (what an operator sees on stderr) or through
`bot.cli.main(argv)`, always on real temp data folders, real files and real sockets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import REPO, SEEDS

from rag.errors import SettingsError


def cli(tmp_path, *argv: str, timeout: float = 240, **env: str) -> subprocess.CompletedProcess:
    """`newsbot ARGV` in tmp_path (no .env from the repo), data under tmp_path/data, no NEWSBOT_* from the caller."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("NEWSBOT_") and k != "DISCORD_TOKEN"}
    base.update({"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "NEWSBOT_DATA_DIR": str(tmp_path / "data"), **env})
    return subprocess.run([sys.executable, "-m", "bot.cli", *argv], cwd=tmp_path, env=base, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def env(tmp_path, monkeypatch, embeddings):
    """In-process CLI: data under tmp_path, the session's embedder, no .env."""
    for name in [n for n in os.environ if n.startswith("NEWSBOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("NEWSBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    import rag.index.embeddings

    monkeypatch.setattr(rag.index.embeddings, "make_embeddings", lambda name: embeddings)
    return tmp_path


def newsbot(capsys, *argv: str) -> tuple[int, str, str]:
    from bot.cli import main

    capsys.readouterr()
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# ---- settings ------------------------------------------------------------------------------------

def test_an_unknown_newsbot_variable_is_warned_with_the_nearest_setting(tmp_path):
    (tmp_path / ".env").write_text("NEWSBOT_DATADIR=/tmp/x\n", encoding="utf-8")
    result = cli(tmp_path, "models", NEWSBOT_TOPK="3", NEWSBOT_QQQXYZ="1", NEWSBOT_TEST_CHAT_MODEL="x")
    assert result.returncode == 0, result.stderr
    assert "NEWSBOT_TOPK (in the environment) is not a newsbot setting and is ignored; did you mean NEWSBOT_TOP_K?" in result.stderr
    assert "NEWSBOT_DATADIR (in .env) is not a newsbot setting and is ignored; did you mean NEWSBOT_DATA_DIR?" in result.stderr
    assert "NEWSBOT_QQQXYZ" in result.stderr and "see .env.example" in result.stderr  # nothing close: no made-up name
    assert "NEWSBOT_TEST_CHAT_MODEL" not in result.stderr and "NEWSBOT_DATA_DIR (" not in result.stderr


def test_nan_and_inf_are_refused_for_every_float_setting(tmp_path, monkeypatch):
    from rag.settings import Settings, load_settings

    monkeypatch.chdir(tmp_path)
    floats = [name for name, field in Settings.model_fields.items() if field.annotation in (float, float | None)]
    assert len(floats) >= 10  # temperature, weights, timeouts, intervals, thresholds
    for name in floats:
        for value in ("nan", "inf", "-inf", "NaN", "Infinity"):
            monkeypatch.setenv(f"NEWSBOT_{name.upper()}", value)
            with pytest.raises(SettingsError) as caught:
                load_settings()
            assert f"NEWSBOT_{name.upper()}" in str(caught.value) and "finite" in str(caught.value), (name, value)
        monkeypatch.delenv(f"NEWSBOT_{name.upper()}")
    result = cli(tmp_path, "models", NEWSBOT_OPENAI_TIMEOUT_S="inf")
    assert result.returncode == 2 and "NEWSBOT_OPENAI_TIMEOUT_S: Input should be a finite number" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_dotenv_syntax_error_is_named_with_its_line_and_stops(tmp_path):
    (tmp_path / ".env").write_text('NEWSBOT_TOP_K=3\n\n# a comment\nDISCORD_TOKEN="abc.secret-canary\nNEWSBOT_SEED=1\n',
                                   encoding="utf-8")
    result = cli(tmp_path, "models")
    assert result.returncode == 2, result.stderr
    assert ".env, line 4: cannot be parsed" in result.stderr and "close every quote" in result.stderr
    assert "secret-canary" not in result.stderr and "Traceback" not in result.stderr
    (tmp_path / ".env").write_text("NEWSBOT_TOP_K=3\nthis is not an assignment\n", encoding="utf-8")
    assert ".env, line 2: cannot be parsed" in cli(tmp_path, "models").stderr


@pytest.mark.parametrize("setting, expected", [
    ({"NEWSBOT_EMBEDDING_MODEL": "/nonexistent/embedder"}, "newsbot: Cannot load embedding model '/nonexistent/embedder'"),
    ({"NEWSBOT_PROMPTS_DIR": "/nonexistent/prompts"}, "newsbot: prompt directory /nonexistent/prompts does not exist"),
])
def test_embedding_and_prompt_errors_are_one_line_and_exit_1(tmp_path, setting, expected):
    result = cli(tmp_path, "ask", "Was beschloss der Gemeinderat?", **setting)
    assert result.returncode == 1 and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_data_dir_that_is_a_file_or_inside_one_is_named(tmp_path):
    (tmp_path / "afile").write_text("x")
    for target, message in ((tmp_path / "afile", "is a file, not a folder"), (tmp_path / "afile" / "sub", "which is a file")):
        result = cli(tmp_path, "sources", NEWSBOT_DATA_DIR=str(target))
        assert result.returncode == 2 and "NEWSBOT_DATA_DIR" in result.stderr and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


# ---- ingest and ask ------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["{not json", "[]", '{"version": 7, "generation": "x", "ids": "oops"}', ""])
def test_a_damaged_keyword_index_is_rebuilt_by_a_plain_ingest(env, capsys, damage, tmp_path, embeddings):
    from conftest import make_settings

    articles = tmp_path / "articles"
    articles.mkdir()
    for seed in sorted(SEEDS.iterdir())[:2]:
        (articles / seed.name).write_bytes(seed.read_bytes())
    assert newsbot(capsys, "ingest", str(articles))[0] == 0
    settings = make_settings(tmp_path / "data")
    chunks_json = settings.keyword_dir / "chunks.json"
    chunks_json.write_text(damage)
    status, out, err = newsbot(capsys, "ingest", str(articles))
    assert status == 0 and "unchanged 2" in out, err
    meta = json.loads(chunks_json.read_text())
    from rag.index.store import Store

    assert len(meta["ids"]) == Store(settings, embeddings).chunk_count() > 0


def test_paths_with_rich_markup_are_printed_as_they_are(env, capsys, tmp_path):
    folder = tmp_path / "articles" / "a["
    folder.mkdir(parents=True)
    (folder / "].txt").write_bytes(b"\x00\x01 not text")
    (tmp_path / "articles" / "[red]x.txt").write_bytes(b"\x00\x01 not text either")
    (tmp_path / "articles" / "ok.txt").write_bytes(sorted(SEEDS.iterdir())[0].read_bytes())
    status, out, err = newsbot(capsys, "ingest", str(tmp_path / "articles"))
    assert status == 1 and "added 1" in out
    assert "a[/].txt: looks like a binary file" in err and "[red]x.txt: looks like a binary file" in err, err


def test_the_first_ask_reports_seed_errors_instead_of_answering_from_an_empty_store(env, capsys, tmp_path, monkeypatch):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "broken.txt").write_bytes(b"\x00\x01\x02 binary")
    (seeds / "empty.md").write_text("")
    monkeypatch.setenv("NEWSBOT_SEEDS_DIR", str(seeds))
    status, out, err = newsbot(capsys, "ask", "Was beschloss der Gemeinderat in Freiburg?")
    assert status == 1 and out == "", out
    assert "broken.txt: looks like a binary file" in err and "empty.md: file is empty" in err
    assert "the store is still empty" in err and "2 file(s) skipped" in err and "newsbot ingest" in err


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32", "utf-32-be"])
def test_utf16_and_utf32_articles_with_a_bom_are_read(env, capsys, tmp_path, codec, embeddings):
    import codecs

    from conftest import make_settings

    from rag.index.store import Store

    seed = sorted(SEEDS.iterdir())[0]
    text = seed.read_text(encoding="utf-8")
    bom = {"utf-16-be": codecs.BOM_UTF16_BE, "utf-32-be": codecs.BOM_UTF32_BE}.get(codec, b"")
    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "wide.txt").write_bytes(bom + text.encode(codec))
    (articles / "binary.txt").write_bytes(b"\xff\xfe\x00\x00" + b"\x00\xd8\x00\x00" * 4)  # a UTF-32 BOM, then no valid text
    status, out, err = newsbot(capsys, "ingest", str(articles))
    assert "added 1" in out and status == 1 and "binary.txt" in err and "wide.txt" not in err, err
    stored = Store(make_settings(tmp_path / "data"), embeddings).source_records()["wide"].text
    sentence = next(line for line in text.splitlines() if len(line) > 80)
    assert sentence[:80] in stored


def test_no_debug_lines_at_the_default_log_level(env, capsys, tmp_path):
    import shutil

    from conftest import make_settings

    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "a.txt").write_bytes(sorted(SEEDS.iterdir())[0].read_bytes())
    assert newsbot(capsys, "ingest", str(articles))[0] == 0
    shutil.rmtree(make_settings(tmp_path / "data").keyword_dir)  # the subprocess builds it (bm25s logs at DEBUG)
    quiet = {"NEWSBOT_TRANSLATE_QUERIES": "false", "NEWSBOT_TRANSLATION_HINTS": "false", "NEWSBOT_MIN_RETRIEVAL_SCORE": "0.99"}
    result = cli(tmp_path, "ask", "--json", "Wie backt man einen Apfelkuchen mit Zimt?", **quiet)
    assert result.returncode == 0, result.stderr
    assert "DEBUG" not in result.stderr and "INFO" not in result.stderr, result.stderr
    shutil.rmtree(make_settings(tmp_path / "data").keyword_dir)
    loud = cli(tmp_path, "-vv", "ask", "--json", "Wie backt man einen Apfelkuchen mit Zimt?", **quiet)
    assert "INFO rag.index.keyword: keyword index rebuilt" in loud.stderr  # the subprocess built it; -vv shows its lines


# ---- Discord -------------------------------------------------------------------------------------

class _Answers:
    """A real HTTP server on 127.0.0.1 that answers each path with a fixed (content type, body)."""

    def __init__(self, routes: dict[str, tuple[str, bytes]]) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                ctype, body = outer.routes.get(self.path, ("text/plain", b"no route"))
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.routes = routes
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/v10"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


USER = {"id": "1", "username": "newsbot", "discriminator": "0", "avatar": None, "bot": True}
APPLICATION = {"id": "1", "name": "newsbot", "icon": None, "description": "", "summary": "", "rpc_origins": [],
               "bot_public": True, "bot_require_code_grant": False, "verify_key": "0" * 64, "team": None, "flags": 0,
               "owner": {"id": "2", "username": "owner", "discriminator": "0", "avatar": None}}


@pytest.mark.parametrize("routes, answered", [
    ({"/api/v10/users/@me": ("text/html", b"<html><h1>Welcome to nginx!</h1></html>")}, "answered text, not JSON"),
    ({"/api/v10/users/@me": ("application/json", b"[1, 2, 3]")}, "answered JSON that is not Discord's"),
    ({"/api/v10/users/@me": ("application/json", b'{"id": "1", "user')}, "answered invalid JSON"),
    ({"/api/v10/users/@me": ("application/json", json.dumps(USER).encode()),
      "/api/v10/oauth2/applications/@me": ("application/json", b'{"id": "1"}')}, "answered JSON that is not Discord's (KeyError"),
    ({"/api/v10/users/@me": ("application/json", json.dumps(USER).encode()),
      "/api/v10/oauth2/applications/@me": ("application/json", json.dumps(APPLICATION).encode()),
      "/api/v10/gateway/bot": ("text/html", b"<html>maintenance</html>")}, "answered GET /gateway/bot without a gateway URL"),
])
def test_a_discord_api_base_that_does_not_answer_like_discord_is_named(tmp_path, routes, answered):
    server = _Answers({path: (ctype, body) for path, (ctype, body) in routes.items()})
    try:
        result = cli(tmp_path, "discord", timeout=120, DISCORD_TOKEN="canary.token.value", NEWSBOT_DISCORD_API_BASE=server.base)
    finally:
        server.close()
    assert result.returncode == 1, result.stderr
    assert f"The Discord API at {server.base} {answered}" in result.stderr, result.stderr
    assert "NEWSBOT_DISCORD_API_BASE" in result.stderr and "Traceback" not in result.stderr
    assert "canary.token.value" not in result.stderr
