"""A real HTTP server on 127.0.0.1 for the feed tests: routes, ETags, a request log.

Each route is (status, headers, body) or a callable(handler) -> that tuple; GETs with a matching
If-None-Match get 304. `requests` records (path, headers) of every request received."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Route = tuple[int, dict[str, str], bytes]


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route | Callable[[BaseHTTPRequestHandler], Route]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.release = threading.Event()  # slow routes wait on this; set at shutdown
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server.requests.append((self.path, dict(self.headers.items())))
                route = server.routes.get(self.path)
                if route is None:
                    status, headers, body = 404, {"Content-Type": "text/plain"}, b"not found"
                else:
                    status, headers, body = route(self) if callable(route) else route
                headers = dict(headers)
                if status == 200 and "ETag" not in headers and headers.get("X-No-ETag") is None:
                    headers["ETag"] = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
                headers.pop("X-No-ETag", None)
                if status == 200 and self.headers.get("If-None-Match") == headers.get("ETag"):
                    status, body = 304, b""
                self.send_response(status)
                chunked = headers.pop("X-Chunked", None) is not None
                for key, value in headers.items():
                    self.send_header(key, value)
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for start in range(0, len(body), 65536):
                        piece = body[start:start + 65536]
                        try:
                            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                        except OSError:
                            return
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def html(self, path: str, body: str, **headers: str) -> None:
        self.routes[path] = (200, {"Content-Type": "text/html; charset=utf-8", **headers}, body.encode("utf-8"))

    def paths_requested(self) -> list[str]:
        return [path for path, _ in self.requests]

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
