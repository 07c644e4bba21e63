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
