"""Rate limits per route, as Discord buckets them, with discord.py's own throttling running.

The double answers every REST call with X-RateLimit-* headers for its bucket (route + channel,
or route + webhook id + token); a request beyond a bucket the headers announced as empty counts
in `over_limit`, which discord.py's throttling must keep at zero.
"""

from __future__ import annotations

import asyncio
import threading

import aiohttp
import pytest
from doubles.discord_api import DiscordDouble
from doubles.discord_fixtures import double, start_bot  # noqa: F401  (fixtures used by name)
from doubles.service import FakeService, default_text

from rag.settings import Settings

QUESTION = "Was geschah beim Gipfel in Alaska?"


@pytest.fixture(autouse=True)
def no_violations(double: DiscordDouble):
    yield
    assert double.violations == [], "the bot did what Discord rejects"


def final(double: DiscordDouble, message_id: int | None) -> str:
    return double.contents(message_id)[-1] if double.contents(message_id) else ""


async def test_every_response_carries_its_buckets_headers(double: DiscordDouble) -> None:
    headers = {"Authorization": f"Bot {double.token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        seen = {}
        for channel_id in (double.channel_id, double.other_channel_id):
            for method, path in (("GET", ""), ("GET", "/messages")):
                async with http.request(method, f"{double.api_base}/channels/{channel_id}{path}") as r:
                    assert r.status == 200
                    seen[(channel_id, path)] = dict(r.headers)
        async with http.get(f"{double.api_base}/users/@me") as r:
            assert "X-RateLimit-Bucket" in r.headers
        async with http.get(f"{double.api_base}/channels/1") as r:  # errors too
            assert r.status == 404 and "X-RateLimit-Remaining" in r.headers
    for got in seen.values():
        assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Reset-After",
                "X-RateLimit-Bucket"} <= set(got)
        assert got["X-RateLimit-Remaining"] == str(double.bucket_limit - 1)  # one bucket per channel
    bucket = {k: v["X-RateLimit-Bucket"] for k, v in seen.items()}
    assert bucket[(double.channel_id, "")] == bucket[(double.other_channel_id, "")]  # same route, same hash
    assert bucket[(double.channel_id, "")] != bucket[(double.channel_id, "/messages")]


async def test_a_bucket_is_enforced_with_429(double: DiscordDouble) -> None:
    double.bucket_limit, double.bucket_window_s = 2, 60.0
    headers = {"Authorization": f"Bot {double.token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        statuses = []
        for _ in range(3):
            async with http.get(f"{double.api_base}/channels/{double.channel_id}") as r:
                statuses.append(r.status)
                body = await r.json()
        assert statuses == [200, 200, 429] and body["retry_after"] > 50 and r.headers["Via"]
        async with http.get(f"{double.api_base}/channels/{double.other_channel_id}") as r:
            assert r.status == 200  # another channel, another bucket
    assert double.over_limit == 1


async def test_discord_py_throttles_itself_from_the_headers(double: DiscordDouble, start_bot) -> None:
    # A long answer in a thread: many posts to one channel bucket of 2 per 0.3 s.
    double.bucket_limit, double.bucket_window_s = 2, 0.3
    text = " ".join(f"Satz Nummer {i} erklärt ein weiteres Detail des Gipfels [1]." for i in range(200))
    await start_bot(FakeService(text=lambda q, h: text))
    question = await double.user_message(double.make_user("anna"), QUESTION, mention_bot=True)
    thread_id = int(question["id"])
    await double.wait_for(lambda: any(m["embeds"] for m in double.bot_messages(thread_id)), timeout=30,
                          what="the last part")
    parts = [m for m in double.bot_messages(thread_id) if not m["content"].startswith("ℹ️")]
    assert "".join(m["content"] for m in parts) == text and len(parts) >= 6
    assert double.over_limit == 0, "discord.py waited for its buckets instead of running into them"


async def test_a_429_storm_on_one_route_leaves_the_others_alone(double: DiscordDouble, start_bot) -> None:
    service = FakeService(token_delay_s=0.03)
    await start_bot(service)
    stormed = await double.slash(double.make_user("anna"), "ask", frage="Eins?")
    double.storm(12, route=stormed.token)  # only this interaction's webhook bucket
    calm = await double.slash(double.make_user("ben"), "ask", frage="Zwei?")
    await double.wait_for(lambda: final(double, calm.original_id) == default_text("Zwei?", ()), timeout=30,
                          what="the unaffected answer")
    await double.wait_for(lambda: final(double, stormed.original_id) == default_text("Eins?", ()), timeout=30,
                          what="the stormed answer")
    limited = [path for method, path, status in double.requests if status == 429]
    assert len(limited) >= 12 and all(stormed.token in path for path in limited)
    assert double.over_limit == 0


async def test_queue_positions_share_one_global_cadence(double: DiscordDouble, start_bot) -> None:
    gate = threading.Event()
    service = FakeService(gate=gate)
    await start_bot(service, discord_queue_edit_interval_s=10.0)  # on the double's clock
    await double.slash(double.make_user("anna"), "ask", frage="Eins?")
    assert await asyncio.to_thread(service.started.wait, 10)
    waiting = [await double.slash(double.make_user(f"u{i}"), "ask", frage=f"Frage {i}?") for i in range(4)]

    def placed() -> int:
        return sum("Platz " in final(double, w.original_id) for w in waiting)

    for expected in range(1, len(waiting) + 1):
        await double.wait_for(lambda e=expected: placed() >= e, what=f"{expected} queue positions shown")
        assert placed() == expected, "queue-position edits went out together"
        double.clock.advance(10.0)
    gate.set()
    for i, w in enumerate(waiting):
        await double.wait_for(lambda w=w, i=i: final(double, w.original_id) == default_text(f"Frage {i}?", ()),
                              what="every answer")


def test_the_default_edit_cadence_is_at_least_a_second() -> None:
    settings = Settings(_env_file=None)
    assert settings.discord_edit_interval_s >= 1.0
    assert settings.discord_queue_edit_interval_s > 0


async def test_the_bots_own_logs_carry_no_interaction_token(double: DiscordDouble, start_bot, caplog) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    await start_bot(FakeService(token_delay_s=0.02))
    ask = await double.slash(double.make_user("anna"), "ask", frage=QUESTION)
    double.storm(12, route=ask.token)  # retries and skipped edits get logged
    await double.wait_for(lambda: final(double, ask.original_id) == default_text(QUESTION, ()), timeout=30,
                          what="the answer")
    ours = [r.getMessage() for r in caplog.records if r.name.startswith(("bot", "discord_double"))]
    assert any("429" in m for m in ours)
    assert not any(ask.token in m or double.token in m for m in ours)
