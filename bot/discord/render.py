"""Pure rendering for Discord: message splitting, source embeds, escaping and the bot's phrases.

Kept free of I/O so that the limits Discord enforces (2000 characters per message, the embed
limits) can be unit- and property-tested without a client or a server.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import discord
from discord.utils import escape_markdown, escape_mentions

from rag.answer import Answer, Citation

from .i18n import Lang, t

# Discord's documented limits (https://discord.com/developers/docs/resources/message).
MESSAGE_LIMIT = 2000
EMBEDS_PER_MESSAGE = 10
EMBED_TOTAL_LIMIT = 6000  # over all embeds of one message
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
EMBED_FIELDS_LIMIT = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
THREAD_NAME_LIMIT = 100

QUOTE_PREVIEW_CHARS = 300  # per source in the compact embed under an answer
SOURCES_COLOUR = discord.Colour.blue()

# --- phrases shown to Discord users (German by default, like the articles; see i18n) ----------

WORKING = t("working")
PLACEHOLDER = t("placeholder")
BUSY = t("busy")
NOT_ALLOWED = t("not_allowed")
NO_SOURCES = t("no_sources")
RESET = t("reset")
FAILED = t("failed")
EMPTY_ANSWER = t("empty_answer")


def queue_text(position: int, lang: Lang = "de") -> str:
    """Shown while a question waits; position 1 means it is next."""
    return t("queue_one", lang) if position == 1 else t("queue_many", lang, n=position)


def cooldown_text(seconds: float, lang: Lang = "de") -> str:
    return t("cooldown", lang, s=max(1, math.ceil(seconds)))


def help_text(bot_mention: str, lang: Lang = "de") -> str:
    return t("help", lang, mention=bot_mention)


def thread_name(question: str) -> str:
    """A thread title from the question (Discord allows 1..100 characters)."""
    name = " ".join(question.split()) or "Frage"
    return truncate(name, THREAD_NAME_LIMIT)


# --- text helpers ------------------------------------------------------------------------------

def truncate(text: str, limit: int) -> str:
    """Cut to at most `limit` characters, marking the cut with an ellipsis."""
    if len(text) <= limit:
        return text
    # A cut right after an escaping backslash would escape the ellipsis instead.
    return text[: limit - 1].rstrip().rstrip("\\") + "…"


def escape_article_text(text: str) -> str:
    """Article text is quoted verbatim: neutralise its Markdown and its mentions. escape_markdown
    leaves a masked link live when another bracket precedes it on the line ("[1] … [hier](url)"),
    so every "](" is broken too; Discord shows "\\(" as "(" (issue 17.5)."""
    return escape_mentions(escape_markdown(text).replace("](", "]\\("))


_ESCAPED_MARKER = re.compile(r"\\\[(\d{1,3})\]")


def escape_answer(text: str) -> str:
    """An answer quotes article sentences, so its text is escaped like any article text (issue
    17.5). The bot's own [n] markers stay plain: escaping them would change nothing visible, and
    with every "](" broken no marker can start a link."""
    return _ESCAPED_MARKER.sub(r"[\1]", escape_article_text(text))


def blockquote(text: str) -> str:
    return "\n".join("> " + line for line in text.splitlines() or [""])


def strip_mentions_of(content: str, user_id: int) -> str:
    """The question in a message that @mentions the bot, without the mention itself."""
    return " ".join(re.sub(rf"<@!?{user_id}>", " ", content).split())


# --- splitting ---------------------------------------------------------------------------------

# Places to cut, best first; each pattern matches what stays at the end of the earlier part.
_SENTENCE_END = re.compile(r"[.!?…](?:[\"'»«“”„’)\]]|\[\d+\])*\s+")
_CUTS: tuple[re.Pattern[str], ...] = (re.compile(r"\n\s*\n\s*"), _SENTENCE_END, re.compile(r"\n+"), re.compile(r"\s+"))


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split text into parts of at most `limit` characters whose concatenation is exactly `text`.

    Cuts prefer paragraph breaks, then sentence ends, then line breaks, then spaces, and only
    cut a word when a part would otherwise be less than half full.
    """
    if limit < 2:
        raise ValueError("limit must be at least 2")
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = _best_cut(rest, limit)
        parts.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        parts.append(rest)
    return parts


def _best_cut(text: str, limit: int) -> int:
    window = text[:limit]
    for pattern in _CUTS:
        ends = [m.end() for m in pattern.finditer(window)]
        # A match that reaches the window's edge may continue beyond it; it still cuts cleanly.
        good = [end for end in ends if end >= limit // 2]
        if good:
            return good[-1]
    return limit


def preview(streamed: str, lang: Lang = "de") -> str:
    """The answer so far, while it streams; always within one message."""
    text = escape_answer(streamed.strip())
    if not text:
        return t("working", lang)
    return truncate(text, MESSAGE_LIMIT - 2) + " ▌"


# --- answers -----------------------------------------------------------------------------------

@dataclass
class MessagePart:
    content: str
    embeds: list[discord.Embed] = field(default_factory=list)


def answer_messages(answer: Answer, lang: Lang = "de", *, embeds: bool = True,
                    embeds_missing: str = "") -> list[MessagePart]:
    """The final answer as one or more messages; the source embed goes under the last one.

    Without `embeds` (a channel where the bot lacks Embed Links) the sources follow as text
    messages, headed by `embeds_missing` (which says why).
    """
    text = escape_answer(answer.text.strip()) or (t("failed", lang) if answer.error else t("empty_answer", lang))
    parts = [MessagePart(part) for part in split_message(escape_mentions(text))]
    if embeds:
        embed = sources_embed(answer, lang=lang)
        if embed is not None:
            parts[-1].embeds.append(embed)
    elif answer.citations:
        listing = sources_text(answer, lang)
        if embeds_missing:
            listing = embeds_missing + "\n" + listing
        parts.extend(MessagePart(part) for part in split_message(listing))
    return parts


def sources_text(answer: Answer, lang: Lang = "de") -> str:
    """The compact sources as plain Markdown, for channels where embeds would be dropped."""
    lines = [f"**{t('sources', lang)}**"]
    for first, group in _by_source(answer.citations):
        date = escape_article_text(first.date.strip())
        lines.append(f"{_markers(group)} {_title(first)}" + (f" – {date}" if date else ""))
        quote = truncate(escape_article_text(" ".join(first.quote.split())), QUOTE_PREVIEW_CHARS)
        if quote:
            lines.append(blockquote(quote))
    return escape_mentions("\n".join(lines))


def _by_source(citations: Iterable[Citation]) -> list[tuple[Citation, list[Citation]]]:
    """Citations grouped by article, first use first."""
    groups: dict[str, list[Citation]] = {}
    for citation in citations:
        groups.setdefault(citation.source, []).append(citation)
    return [(group[0], group) for group in groups.values()]


def _markers(group: list[Citation]) -> str:
    return "".join(f"[{n}]" for n in sorted({c.n for c in group}))


def _link(citation: Citation) -> str:
    """A Markdown link to a web source's page (empty for local files)."""
    if not citation.url:
        return ""
    label = escape_article_text(citation.outlet.strip() or "Artikel").replace("[", "(").replace("]", ")")
    return f"[{label}]({citation.url.replace(')', '%29').replace(' ', '%20')})"


def _also(citation: Citation) -> str:
    """Agency copies: "auch bei: Outlet B, Outlet C"."""
    names = list(dict.fromkeys((a.get("outlet") or a.get("url") or "").strip() for a in citation.also))
    return escape_article_text("auch bei: " + ", ".join(n for n in names if n)) if any(names) else ""


def _title(citation: Citation) -> str:
    return escape_article_text(citation.title.strip() or citation.source)


def sources_embed(answer: Answer, footer: str | None = None, lang: Lang = "de") -> discord.Embed | None:
    """A compact embed under an answer: one field per cited article with a short quote."""
    groups = _by_source(answer.citations)[:EMBED_FIELDS_LIMIT]
    if not groups:
        return None
    footer = truncate(footer if footer is not None else answer.model, FOOTER_LIMIT)
    quote_chars = QUOTE_PREVIEW_CHARS
    while True:
        embed = discord.Embed(title=t("sources", lang), colour=SOURCES_COLOUR)
        for first, group in groups:
            name = truncate(f"{_markers(group)} {_title(first)}", FIELD_NAME_LIMIT)
            quote = truncate(escape_article_text(" ".join(first.quote.split())), quote_chars)
            date = escape_article_text(first.date.strip())
            link = _link(first)
            value = "\n".join(line for line in (" · ".join(x for x in (date, link) if x), blockquote(quote) if quote else "",
                                                _also(first)) if line)
            embed.add_field(name=name, value=truncate(value or "–", FIELD_VALUE_LIMIT), inline=False)
        if footer:
            embed.set_footer(text=footer)
        if len(embed) <= EMBED_TOTAL_LIMIT or quote_chars <= 20:
            break
        quote_chars = quote_chars * 2 // 3
    while len(embed) > EMBED_TOTAL_LIMIT:  # long titles alone can still be too much
        embed.remove_field(len(embed.fields) - 1)
    return embed


def source_embeds(answer: Answer) -> list[discord.Embed]:
    """The full sources (`/quellen`): one embed per article with every quote cited from it."""
    embeds = []
    for first, group in _by_source(answer.citations):
        quotes = "\n\n".join(f"**[{c.n}]**\n{blockquote(escape_article_text(c.quote.strip()))}" for c in group)
        embed = discord.Embed(
            title=truncate(_title(first), EMBED_TITLE_LIMIT),
            description=truncate(quotes, EMBED_DESCRIPTION_LIMIT),
            colour=SOURCES_COLOUR,
            url=first.url or None,  # web sources: the title links to the page
        )
        if first.also:
            embed.add_field(name="auch bei", value=truncate(_also(first).removeprefix("auch bei: "), FIELD_VALUE_LIMIT))
        footer = " · ".join(x for x in (first.date.strip(), first.source) if x)
        embed.set_footer(text=truncate(escape_mentions(footer), EMBED_TITLE_LIMIT))  # footers show no Markdown
        embeds.append(embed)
    return embeds


def embeds_from_message(embeds: list[discord.Embed]) -> list[discord.Embed]:
    """Full-source embeds rebuilt from the compact embed under an answer (after a restart)."""
    restored = []
    for embed in embeds:
        for shown in embed.fields:
            restored.append(discord.Embed(title=truncate(shown.name or "–", EMBED_TITLE_LIMIT),
                                          description=truncate(shown.value or "–", EMBED_DESCRIPTION_LIMIT),
                                          colour=SOURCES_COLOUR))
    return restored


def notice(key: str, missing: list[str], lang: Lang = "de", **values: object) -> str:
    """A short message naming the permissions the bot lacks."""
    from .i18n import permission_names

    return t(key, lang, missing=permission_names(missing, lang), **values)


def pack_embeds(embeds: list[discord.Embed]) -> list[list[discord.Embed]]:
    """Group embeds into messages of at most 10 embeds and 6000 characters each."""
    pages: list[list[discord.Embed]] = []
    size = 0
    for embed in embeds:
        if not pages or len(pages[-1]) == EMBEDS_PER_MESSAGE or size + len(embed) > EMBED_TOTAL_LIMIT:
            pages.append([])
            size = 0
        pages[-1].append(embed)
        size += len(embed)
    return pages
