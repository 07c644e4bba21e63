"""The double itself rejects what Discord rejects, and drives the gateway's reconnect opcodes."""

from __future__ import annotations

import aiohttp
import pytest
from doubles.discord_api import DiscordDouble
from doubles.discord_fixtures import double, start_bot  # noqa: F401  (fixtures used by name)
from doubles.service import FakeService, default_text

QUESTION = "Was geschah beim Gipfel in Alaska?"


async def post(double: DiscordDouble, path: str, body: dict) -> tuple[int, dict]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {double.token}"}) as http:
        async with http.post(double.api_base + path, json=body) as r:
            return r.status, await r.json()


@pytest.mark.parametrize("body", [{"content": "   \n\t "}, {"content": ""}, {}])
async def test_whitespace_only_content_is_an_empty_message(double: DiscordDouble, body: dict) -> None:
    status, answer = await post(double, f"/channels/{double.channel_id}/messages", body)
    assert (status, answer["code"]) == (400, 50006)


@pytest.mark.parametrize("field", [{"name": " ", "value": "x"}, {"name": "x", "value": "\n"}])
async def test_whitespace_only_embed_fields_are_rejected(double: DiscordDouble, field: dict) -> None:
    status, answer = await post(double, f"/channels/{double.channel_id}/messages",
                                {"embeds": [{"title": "Quellen", "fields": [field]}]})
    assert (status, answer["code"]) == (400, 50035)
    assert any(key.startswith("embeds.0.fields.0.") for key in answer["errors"])


@pytest.mark.parametrize(("minutes", "status"), [(60, 201), (1440, 201), (4320, 201), (10080, 201), (100, 400),
                                                 (0, 400)])
async def test_thread_archive_durations(double: DiscordDouble, minutes: int, status: int) -> None:
    message = await double.user_message(double.make_user("anna"), "Hallo")
    got, answer = await post(double, f"/channels/{double.channel_id}/messages/{message['id']}/threads",
                             {"name": "Faden", "auto_archive_duration": minutes})
    assert got == status
    if status == 201:
        assert answer["thread_metadata"]["auto_archive_duration"] == minutes


async def test_resume_gateway_url_differs_from_the_first(double: DiscordDouble, start_bot) -> None:
    await start_bot(FakeService())
    assert double.resume_gateway_url != double.gateway_url
    await double.drop_gateway()
    await double.wait_for(lambda: double.resumes == 1, what="RESUME")
    assert double.gateway_paths == [("/gateway", "identify"), ("/resume-gateway", "resume")]


async def test_op7_reconnect_resumes_and_keeps_answering(double: DiscordDouble, start_bot) -> None:
    service = FakeService()
    await start_bot(service)
    await double.send_reconnect()
    await double.wait_for(lambda: double.resumes == 1, what="RESUME after op 7")
    assert double.identifies == 1 and double.gateway_paths[-1] == ("/resume-gateway", "resume")
    ask = await double.slash(double.make_user("anna"), "ask", frage=QUESTION)
    await double.wait_for(lambda: any(m["content"] == default_text(QUESTION, ()) for m in double.answer_messages(ask)),
                          what="an answer after the reconnect")


async def test_op9_resumable_invalid_session_resumes(double: DiscordDouble, start_bot) -> None:
    await start_bot(FakeService())
    await double.invalidate_session(resumable=True)
    await double.wait_for(lambda: double.resumes == 1, what="RESUME after op 9 (resumable)")
    assert double.identifies == 1


async def test_op9_not_resumable_identifies_again_on_the_first_url(double: DiscordDouble, start_bot) -> None:
    service = FakeService()
    await start_bot(service)
    await double.invalidate_session(resumable=False)
    await double.wait_for(lambda: double.identifies == 2, timeout=20, what="a new IDENTIFY after op 9")
    assert double.gateway_paths[-1] == ("/gateway", "identify") and double.resumes == 0
    await double.user_message(double.make_user("anna"), QUESTION, mention_bot=True)
    await double.wait_for(lambda: len(service.calls) == 1, what="answering on the new session")


@pytest.mark.parametrize("privileged", [False, True])
async def test_rest_reads_strip_content_without_the_privilege(double: DiscordDouble, privileged: bool) -> None:
    double.allow_message_content = privileged
    anna = double.make_user("anna")
    plain = await double.user_message(anna, "Ohne Erwähnung")
    mention = await double.user_message(anna, "Mit Erwähnung", mention_bot=True)
    dm = await double.user_message(anna, "Im DM", double.dm_channel(anna))
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {double.token}"}) as http:
        async with http.get(f"{double.api_base}/channels/{double.channel_id}/messages") as r:
            seen = {m["id"]: m["content"] for m in await r.json()}
        async with http.get(f"{double.api_base}/channels/{dm['channel_id']}/messages/{dm['id']}") as r:
            assert (await r.json())["content"] == "Im DM"  # DMs always carry content
    assert seen[plain["id"]] == ("Ohne Erwähnung" if privileged else "")
    assert seen[mention["id"]].endswith("Mit Erwähnung")
