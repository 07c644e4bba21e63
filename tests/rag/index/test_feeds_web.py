"""Fetch guards against a real HTTP server on 127.0.0.1 (rag/index/web.py)."""

from __future__ import annotations

import pytest
from doubles.feeds_server import FeedServer

from rag.index.web import AddressRefused, Fetcher, FetchError, check_address, is_url, normalise_url

ROBOTS = b"User-agent: newsbot\nDisallow: /privat/\n\nUser-agent: *\nDisallow:\n"


@pytest.fixture
def server():
    with FeedServer() as srv:
        srv.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, ROBOTS)
        srv.html("/artikel", "<html><body><p>Hallo Welt</p></body></html>")
        yield srv


def fetcher(**overrides) -> Fetcher:
    options = {"timeout_s": 5.0, "max_bytes": 100_000, "max_redirects": 3, "allow_private": True}
    options.update(overrides)
    return Fetcher(**options)


def test_fetches_with_a_user_agent_naming_newsbot(server):
    with fetcher() as f:
        result = f.fetch(server.url("/artikel"))
    assert result.status == 200 and b"Hallo Welt" in result.body
    assert result.etag
    agents = {headers.get("User-Agent", "") for path, headers in server.requests}
    assert agents and all("newsbot" in agent for agent in agents)


def test_conditional_get_answers_not_modified(server):
    with fetcher() as f:
        first = f.fetch(server.url("/artikel"))
        second = f.fetch(server.url("/artikel"), etag=first.etag)
    assert second.not_modified and second.body == b""


def test_private_address_refused_by_default_and_nothing_is_sent(server):
    url = server.url("/artikel")
    with fetcher(allow_private=False) as f, pytest.raises(FetchError) as caught:
        f.fetch(url)
    message = str(caught.value)
    assert message.startswith(url) and "loopback" in message and "NEWSBOT_FETCH_ALLOW_PRIVATE" in message
    assert server.requests == []  # refused before connecting: not even robots.txt was asked for


def test_a_host_name_resolving_to_loopback_is_refused(server):
    url = f"http://localhost:{server.port}/artikel"
    with fetcher(allow_private=False) as f, pytest.raises(FetchError, match="loopback"):
        f.fetch(url)
    assert server.requests == []


@pytest.mark.parametrize("address", ["10.1.2.3", "192.168.0.1", "172.16.5.5", "169.254.169.254", "127.0.0.1",
                                     "::1", "fe80::1", "::ffff:10.0.0.1", "100.64.0.1", "0.0.0.0", "fc00::1"])
def test_non_public_addresses_are_refused(address):
    with pytest.raises(AddressRefused):
        check_address(address, allow_private=False)
    check_address(address, allow_private=True)


def test_public_addresses_pass():
    check_address("93.184.216.34", allow_private=False)
    check_address("2606:4700::1111", allow_private=False)


def test_every_redirect_hop_is_checked(server):
    server.routes["/weiter"] = (302, {"Location": "file:///etc/passwd"}, b"")
    with fetcher() as f, pytest.raises(FetchError) as caught:
        f.fetch(server.url("/weiter"))
    assert "only http and https" in str(caught.value) and "file:///etc/passwd" in str(caught.value)


def test_redirects_are_bounded(server):
    for n in range(10):
        server.routes[f"/r{n}"] = (302, {"Location": f"/r{n + 1}"}, b"")
    with fetcher(max_redirects=3) as f, pytest.raises(FetchError, match="more than 3 redirects"):
        f.fetch(server.url("/r0"))
    assert "/r4" not in server.paths_requested()


def test_redirects_within_the_bound_are_followed(server):
    server.routes["/alt"] = (301, {"Location": "/artikel"}, b"")
    with fetcher() as f:
        result = f.fetch(server.url("/alt"))
    assert result.final_url.endswith("/artikel") and b"Hallo Welt" in result.body


@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_page_is_refused(server, chunked):
    headers = {"Content-Type": "text/html"}
    if chunked:  # no Content-Length: the cap is enforced while reading
        headers["X-Chunked"] = "1"
    server.routes["/gross"] = (200, headers, b"<p>" + b"x" * 400_000 + b"</p>")
    url = server.url("/gross")
    with fetcher(max_bytes=100_000) as f, pytest.raises(FetchError) as caught:
        f.fetch(url)
    assert str(caught.value).startswith(url) and "100,000-byte limit" in str(caught.value)


def test_timeout(server):
    def slow(handler):
        server.release.wait(30)
        return 200, {"Content-Type": "text/html"}, b"<p>zu spaet</p>"

    server.routes["/langsam"] = slow
    url = server.url("/langsam")
    with fetcher(timeout_s=0.3) as f, pytest.raises(FetchError) as caught:
        f.fetch(url)
    assert str(caught.value).startswith(url) and "no answer within 0.3 s" in str(caught.value)


def test_robots_txt_disallow_is_respected(server):
    server.html("/privat/geheim", "<p>geheim</p>")
    url = server.url("/privat/geheim")
    with fetcher() as f:
        with pytest.raises(FetchError) as caught:
            f.fetch(url)
        assert f.fetch(server.url("/artikel")).status == 200  # other paths of the origin are fine
    assert str(caught.value).startswith(url) and "robots.txt" in str(caught.value) and "disallows" in str(caught.value)
    assert "/privat/geheim" not in server.paths_requested()
    assert server.paths_requested().count("/robots.txt") == 1  # read once per origin


def test_missing_robots_txt_allows_and_a_failing_one_forbids(server):
    del server.routes["/robots.txt"]
    with fetcher() as f:
        assert f.fetch(server.url("/artikel")).status == 200
    server.routes["/robots.txt"] = (503, {"Content-Type": "text/plain"}, b"busy")
    with fetcher() as f, pytest.raises(FetchError, match="robots.txt .* HTTP 503"):
        f.fetch(server.url("/artikel"))



def test_a_redirected_robots_txt_is_followed(server):
    """RFC 9309: robots.txt redirects are followed (this raised NameError before the port)."""
    server.routes["/robots.txt"] = (301, {"Location": "/regeln/robots.txt"}, b"")
    server.routes["/regeln/robots.txt"] = (200, {"Content-Type": "text/plain"}, ROBOTS)
    server.html("/privat/geheim", "<p>geheim</p>")
    with fetcher() as f:
        assert f.fetch(server.url("/artikel")).status == 200
        with pytest.raises(FetchError, match="disallows"):
            f.fetch(server.url("/privat/geheim"))
    assert "/regeln/robots.txt" in server.paths_requested()

@pytest.mark.parametrize("url", ["ftp://example.org/feed.xml", "file:///etc/passwd", "gopher://example.org/",
                                 "javascript:alert(1)"])
def test_non_http_schemes_are_refused(url):
    with fetcher() as f, pytest.raises(FetchError) as caught:
        f.fetch(url)
    assert str(caught.value).startswith(url) and "only http and https" in str(caught.value)


def test_http_errors_name_the_url(server):
    url = server.url("/gibtsnicht")
    with fetcher() as f, pytest.raises(FetchError) as caught:
        f.fetch(url)
    assert str(caught.value) == f"{url}: HTTP 404"


def test_url_helpers():
    assert is_url("https://example.org/x") and is_url("ftp://x") and is_url("file:///etc")
    assert not is_url("seeds/") and not is_url("C:\\articles") and not is_url("/tmp/a.txt")
    assert normalise_url("HTTPS://WWW.Example.org:443/a?b=1#frag") == "https://www.example.org/a?b=1"
    assert normalise_url("http://example.org") == "http://example.org/"
