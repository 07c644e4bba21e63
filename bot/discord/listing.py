"""`/neu` (en `/new`): the web articles added since a date, or the last N, privately to the asker.

The list comes from `rag.index.feeds.new_articles` (what `newsbot feeds new` prints), read on a
worker thread: the store is blocking."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord

from rag.errors import UserError

from . import render
from .i18n import Lang, lang_of, t

_log = logging.getLogger(__name__)

DEFAULT_LAST = 10  # neither a date nor a count given
MAX_LAST = render.EMBED_FIELDS_LIMIT  # one field per article, one embed


def new_articles_embed(rows: list[Any], lang: Lang = "de") -> discord.Embed:
    """One field per article: the title, then outlet · date · a link to the page."""
    embed = discord.Embed(title=t("new_title", lang), colour=render.SOURCES_COLOUR)
    for row in rows[:MAX_LAST]:
        title = render.escape_article_text((row.title or row.url).strip())
        link = f"[{t('new_link', lang)}]({row.url.replace(')', '%29').replace(' ', '%20')})" if row.url else ""
        value = " · ".join(x for x in (render.escape_article_text(row.outlet.strip()), row.date or t("undated", lang), link) if x)
        embed.add_field(name=render.truncate(title, render.FIELD_NAME_LIMIT), value=render.truncate(value, render.FIELD_VALUE_LIMIT),
                        inline=False)
    return embed


async def show_new(bot: Any, interaction: discord.Interaction, since: str | None, last: int | None) -> None:
    """The /neu command of the NewsBot `bot`."""
    from rag.index.feeds import new_articles

    lang = lang_of(interaction.locale)
    if await bot._refused(interaction, lang):
        return
    store = getattr(bot.service, "store", None)
    since = (since or "").strip() or None
    last = min(last, MAX_LAST) if last else (None if since else DEFAULT_LAST)
    try:
        rows = await asyncio.to_thread(new_articles, store, since=since, last=last or MAX_LAST)
    except UserError as exc:  # a date that is none: the message says what to write
        await interaction.response.send_message(t("new_bad_date", lang, value=since or "", detail=str(exc)), ephemeral=True)
        return
    except Exception as exc:  # the store is unreachable: the asker hears so, the log has the cause
        _log.warning("/neu failed: %s", type(exc).__name__)
        await interaction.response.send_message(t("failed", lang), ephemeral=True)
        return
    if not rows:
        key = "new_none_since" if since else "new_none"
        await interaction.response.send_message(t(key, lang, since=since or ""), ephemeral=True)
        return
    await interaction.response.send_message(embed=new_articles_embed(rows, lang), ephemeral=True)
