"""Rendering for Discord, without Discord: splitting, embeds within limits, escaping."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.discord import render
from bot.discord.memory import Conversations, Cooldown
from rag.answer import Answer, Citation

# --- splitting -----------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=9000),
       st.integers(min_value=2, max_value=2500))
def test_split_loses_nothing_and_respects_the_limit(text: str, limit: int) -> None:
    parts = render.split_message(text, limit)
    assert "".join(parts) == text
    assert all(0 < len(part) <= limit for part in parts)


sentence = st.builds(
    lambda words, end: " ".join(words) + end,
    st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyzäöüß", min_size=1, max_size=12), min_size=1, max_size=40),
    st.sampled_from([".", "!", "?", " [1].", ".[2]", "…", ".“"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(sentence, min_size=1, max_size=200))
def test_split_cuts_at_sentence_ends_when_sentences_fit(sentences: list[str]) -> None:
    text = " ".join(sentences)
    parts = render.split_message(text)
    assert "".join(parts) == text
    ends = re.compile(r"[.!?…](?:[“]|\[\d+\])*\s+$")
    for part in parts[:-1]:
        assert ends.search(part), f"cut inside a sentence: ...{part[-40:]!r}"


def test_split_prefers_paragraphs_and_keeps_short_text_whole() -> None:
    assert render.split_message("Kurz.") == ["Kurz."]
    assert render.split_message("") == []
    text = "A" * 1200 + ".\n\n" + "B" * 1200 + ". Noch ein Satz."
    parts = render.split_message(text)
    assert parts[0] == "A" * 1200 + ".\n\n"


def test_a_word_longer_than_a_message_is_cut_hard() -> None:
    parts = render.split_message("x" * 4500)
    assert [len(p) for p in parts] == [2000, 2000, 500]


# --- embeds ----------------------------------------------------------------------------------------

def citation(n: int, source: str, title: str = "Titel", quote: str = "Zitat", date: str = "2025-08-16") -> Citation:
    return Citation(n, source, title, date, quote, 0, len(quote))


def answer_with(citations: list[Citation], text: str = "Antwort [1].") -> Answer:
    return Answer(question="Frage?", text=text, refused=False, citations=citations, model="qwen2.5")


def check_embed_limits(embed) -> None:
    data = embed.to_dict()
    assert len(data.get("title", "")) <= 256
    assert len(data.get("description", "")) <= 4096
    assert len(data.get("fields", [])) <= 25
    for f in data.get("fields", []):
        assert 1 <= len(f["name"]) <= 256 and 1 <= len(f["value"]) <= 1024
    assert len(data.get("footer", {}).get("text", "")) <= 2048
    assert len(embed) <= 6000


text_st = st.text(max_size=6000)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(text_st, text_st, st.text(max_size=40)), min_size=1, max_size=40))
def test_source_embeds_always_fit(items: list[tuple[str, str, str]]) -> None:
    citations = [citation(i + 1, f"src{i % 30}", title, quote, date) for i, (title, quote, date) in enumerate(items)]
    answer = answer_with(citations)
    embed = render.sources_embed(answer)
    assert embed is not None
    check_embed_limits(embed)
    pages = render.pack_embeds(render.source_embeds(answer))
    assert sum(len(page) for page in pages) == len({c.source for c in citations})
    for page in pages:
        assert 1 <= len(page) <= 10 and sum(len(e) for e in page) <= 6000
        for embed in page:
            check_embed_limits(embed)


def test_sources_embed_groups_markers_and_escapes_article_text() -> None:
    answer = answer_with([
        citation(1, "a", "Gipfel **in** Alaska", "Trump sagte @everyone <@123456789012345678>: _zehn_ von zehn"),
        citation(2, "b", "Zweiter Artikel", "Ein Zitat"),
        citation(3, "a", "Gipfel **in** Alaska", "Noch ein Zitat"),
    ])
    embed = render.sources_embed(answer)
    assert embed is not None
    names = [f.name for f in embed.fields]
    assert names == ["[1][3] Gipfel \\*\\*in\\*\\* Alaska", "[2] Zweiter Artikel"]
    value = embed.fields[0].value
    assert "@\u200beveryone" in value and "<@\u200b123456789012345678>" in value and "\\_zehn\\_" in value
    assert value.splitlines()[0] == "2025-08-16" and value.splitlines()[1].startswith("> ")
    full = render.source_embeds(answer)
    assert [e.title for e in full] == ["Gipfel \\*\\*in\\*\\* Alaska", "Zweiter Artikel"]
    assert "**[1]**" in full[0].description and "**[3]**" in full[0].description


def test_answer_messages_put_the_embed_under_the_last_part_and_escape_mentions() -> None:
    text = "@everyone " + "Ein Satz [1]. " * 300
    parts = render.answer_messages(answer_with([citation(1, "a")], text))
    assert len(parts) > 1 and all(len(p.content) <= 2000 for p in parts)
    assert "".join(p.content for p in parts) == text.strip().replace("@everyone", "@\u200beveryone")
    assert [bool(p.embeds) for p in parts] == [False] * (len(parts) - 1) + [True]
    refused = Answer(question="?", text="Dazu steht nichts in den Artikeln.", refused=True)
    assert [(p.content, p.embeds) for p in render.answer_messages(refused)] == [("Dazu steht nichts in den Artikeln.", [])]


def test_small_texts() -> None:
    assert render.preview("") == render.WORKING
    assert len(render.preview("x" * 5000)) <= 2000
    assert render.thread_name("  Was   geschah\nin Alaska? ") == "Was geschah in Alaska?"
    assert len(render.thread_name("x" * 300)) == 100
    assert render.strip_mentions_of("<@42> Was ist <@!42> los?", 42) == "Was ist los?"
    assert "Platz 3" in render.queue_text(3)
    assert render.cooldown_text(0.2) == "Bitte warte noch 1 s bis zur nächsten Frage."


# --- memory -------------------------------------------------------------------------------------

def test_conversations_remember_history_and_reset_per_channel() -> None:
    conversations = Conversations(history_turns=2)
    thread = conversations.open_thread(10)
    for i in range(3):
        conversations.remember(thread, f"F{i}", answer_with([], f"A{i}"), [100 + i])
    assert [t.question for t in conversations.history(thread)] == ["F1", "F2"]
    assert conversations.replying_to(101) is thread and conversations.last_answer(10).text == "A2"
    conversations.reset(10)
    assert conversations.history(conversations.in_thread(10)) == ()
    assert conversations.replying_to(101) is None and conversations.last_answer(10) is None


def test_cooldown_counts_from_the_accepted_question() -> None:
    now = [100.0]
    cooldown = Cooldown(5.0, clock=lambda: now[0])
    assert cooldown.remaining(1) == 0
    cooldown.start(1)
    now[0] += 2
    assert cooldown.remaining(1) == 3.0 and cooldown.remaining(2) == 0
    now[0] += 3
    assert cooldown.remaining(1) == 0


# --- text sources, restored sources, languages ------------------------------------------------------

def test_sources_as_text_escape_article_text_and_fit() -> None:
    answer = answer_with([citation(1, "a", "Gipfel **in** Alaska", "Trump sagte @everyone: _zehn_"),
                          citation(2, "b", "Zweiter", "x" * 2000)])
    parts = render.answer_messages(answer, embeds=False, embeds_missing="-# Hinweis")
    assert all(not p.embeds and len(p.content) <= 2000 for p in parts)
    listing = "".join(p.content for p in parts[1:])
    assert listing.startswith("-# Hinweis\n**Quellen**\n[1] Gipfel \\*\\*in\\*\\* Alaska – 2025-08-16\n> ")
    assert "@\u200beveryone" in listing and "\\_zehn\\_" in listing
    assert "x" * 300 not in listing  # quotes are previews, as in the embed
    assert render.answer_messages(answer_with([]), embeds=False)[-1].content == "Antwort [1]."


def test_sources_are_restored_from_the_embed_under_an_answer() -> None:
    answer = answer_with([citation(1, "a", "Erster", "Zitat eins"), citation(2, "b", "Zweiter", "Zitat zwei")])
    embed = render.sources_embed(answer)
    assert embed is not None
    restored = render.embeds_from_message([embed])
    assert [e.title for e in restored] == ["[1] Erster", "[2] Zweiter"]
    assert "Zitat zwei" in (restored[1].description or "")
    for e in restored:
        check_embed_limits(e)
    assert render.embeds_from_message([]) == []


def test_languages() -> None:
    import discord

    from bot.discord.i18n import COMMAND_TEXTS, TEXTS, lang_of, permission_names, t

    assert [lang_of(x) for x in (None, "de", discord.Locale.german, "en-US", discord.Locale.french)] == \
        ["de", "de", "de", "en", "en"]
    assert all(set(v) == {"de", "en"} and all(v.values()) for v in [*TEXTS.values(), *COMMAND_TEXTS.values()])
    assert render.queue_text(2, "en") == "⏳ Your question is in the queue: place 2 (2 questions ahead of you)."
    assert render.queue_text(1) == "⏳ Deine Frage ist in der Warteschlange: Platz 1 (1 Frage vor dir)."
    assert t("sources", "en") == "Sources" and render.preview("", "en") == t("working", "en")
    assert permission_names(["embed_links", "send_messages"], "de") == "„Links einbetten“, „Nachrichten senden“"
    embed = render.sources_embed(answer_with([citation(1, "a")]), lang="en")
    assert embed is not None and embed.title == "Sources"


async def test_translator_localises_command_texts_for_german_and_english_only() -> None:
    import discord
    from discord import app_commands

    from bot.discord.i18n import Translator

    translator = Translator()
    context = app_commands.TranslationContext(app_commands.TranslationContextLocation.command_name, None)
    name = app_commands.locale_str("quellen")
    assert await translator.translate(name, discord.Locale.german, context) == "quellen"
    assert await translator.translate(name, discord.Locale.british_english, context) == "sources"
    assert await translator.translate(name, discord.Locale.french, context) is None
    assert await translator.translate(app_commands.locale_str("unbekannt"), discord.Locale.german, context) is None


def test_reset_keeps_a_floor_for_conversations_read_back() -> None:
    conversations = Conversations(history_turns=2)
    assert conversations.floor(10) == 0
    conversations.reset(10, since=12345)
    assert conversations.floor(10) == 12345 and conversations.floor(11) == 0
    user_answer, other = answer_with([], "mine"), answer_with([], "theirs")
    conversation = conversations.new(10)
    conversations.remember(conversation, "F", user_answer, [1], user_id=7, key=99)
    conversations.remember(conversation, "G", other, [2], user_id=8, key=100)
    assert conversations.last_answer(10, 7) is user_answer and conversations.last_answer(10, 9) is other
    assert conversations.answer(99) is user_answer and conversations.answer(1) is None
