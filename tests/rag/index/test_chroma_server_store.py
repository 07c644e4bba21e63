"""Chroma-server settings without a real server: errors name host:port and never the auth
headers; keyword indexes of several processes sharing one data dir do not trip over each other.
(The real `chroma run` is exercised in test_model_and_store_servers.py.)"""

from __future__ import annotations

import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rag.index.keyword import KeywordIndex
from rag.index.store import StoreError, open_client
from rag.settings import Settings

TOKEN = "Bearer proxy-token-never-shown"


def server_settings(port: int, **overrides) -> Settings:
    return Settings(_env_file=None, chroma_host="127.0.0.1", chroma_port=port, **overrides)  # type: ignore[call-arg]


def test_unreachable_chroma_server_names_host_and_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreError) as err:
        open_client(server_settings(port))
    assert f"127.0.0.1:{port}" in str(err.value) and "chroma run" in str(err.value)


def test_proxy_refusing_the_headers_is_reported_without_them():
    seen: list[str | None] = []

    class Proxy(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            body = b"<html><title>401 Authorization Required</title></html>"
            self.send_response(401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        settings = server_settings(httpd.server_address[1], chroma_headers={"Authorization": TOKEN})
        with pytest.raises(StoreError) as err:
            open_client(settings)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert seen and seen[0] == TOKEN  # the configured header reaches the proxy
    message = str(err.value)
    assert f"127.0.0.1:{httpd.server_address[1]}" in message and "NEWSBOT_CHROMA_HEADERS" in message
    assert "proxy-token" not in message
    assert settings.chroma_headers == {"Authorization": TOKEN}  # chromadb did not add its own headers to ours


class _FakeStore:
    def __init__(self, texts: list[str], generation: str) -> None:
        self.texts = texts
        self.gen = generation

    def generation(self) -> str:
        return self.gen

    def iter_chunks(self):
        for i, text in enumerate(self.texts):
            yield f"c{i}", text, {"source": f"s{i}", "start": 0, "end": len(text), "date_ord": 0}


def test_keyword_index_losing_the_swap_race_keeps_working(tmp_path, monkeypatch):
    directory = tmp_path / "keyword"
    store = _FakeStore(["Peskow wollte nichts bestätigen", "Die Waffenruhe gilt für Energieanlagen"], "g1")
    KeywordIndex(directory).ensure_current(store)  # another process saved its index first

    real_replace = os.replace

    def racing_replace(src, dst):
        if str(src).endswith(f".tmp-{os.getpid()}"):
            raise OSError(39, "Directory not empty")  # a third process swapped its own index in meanwhile
        return real_replace(src, dst)

    store.gen = "g2"
    store.texts.append("Selenskyj traf Trump in Washington")
    index = KeywordIndex(directory)
    monkeypatch.setattr(os, "replace", racing_replace)
    index.ensure_current(store)
    monkeypatch.setattr(os, "replace", real_replace)
    assert index.generation == "g2" and len(index) == 3
    assert [h.chunk_id for h in index.search(["selenskyj"], 3)] == ["c2"]
    assert not list(tmp_path.glob("keyword.tmp-*"))  # nothing left behind


def test_keyword_index_from_another_process_is_reloaded_or_rebuilt(tmp_path):
    directory = tmp_path / "keyword"
    store = _FakeStore(["Peskow wollte nichts bestätigen"], "g1")
    first = KeywordIndex(directory)
    first.ensure_current(store)
    second = KeywordIndex(directory)  # another process: loads what the first one saved
    second.ensure_current(store)
    assert second.ids == first.ids and second.generation == "g1"
    store.texts.append("Die Waffenruhe gilt für Energieanlagen")
    store.gen = "g2"  # a third process wrote to the shared store
    second.ensure_current(store)
    assert len(second) == 2 and second.generation == "g2"
    first.ensure_current(store)  # loads the index the second process saved for g2
    assert len(first) == 2
