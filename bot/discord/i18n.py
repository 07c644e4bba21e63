"""Two languages on Discord: German (the articles' language, the default) and English.

UI strings follow the user's locale (an interaction's `locale`; a server's preferred locale for
mentions); slash-command names, descriptions and option names are localised through
`Translator`, which discord.py asks for every locale when it syncs the commands.
"""

from __future__ import annotations

from typing import Literal

import discord
from discord import app_commands

Lang = Literal["de", "en"]

# Base strings (what Discord shows for every other locale) -> their German and English forms.
COMMAND_TEXTS: dict[str, dict[Lang, str]] = {
    "ask": {"de": "frage", "en": "ask"},
    "Stell eine Frage zu den Nachrichtenartikeln": {"de": "Stell eine Frage zu den Nachrichtenartikeln",
                                                    "en": "Ask a question about the news articles"},
    "frage": {"de": "frage", "en": "question"},
    "Deine Frage, z. B. Worum ging es beim Gipfel in Alaska?": {
        "de": "Deine Frage, z. B. Worum ging es beim Gipfel in Alaska?",
        "en": "Your question, e.g. What was the summit in Alaska about?"},
    "quellen": {"de": "quellen", "en": "sources"},
    "Alle Quellen deiner letzten Antwort hier": {"de": "Alle Quellen deiner letzten Antwort hier",
                                                 "en": "All sources of your last answer here"},
    "reset": {"de": "zurücksetzen", "en": "reset"},
    "Den Gesprächsverlauf hier vergessen": {"de": "Den Gesprächsverlauf hier vergessen",
                                           "en": "Forget the conversation here"},
    "Frage an newsbot": {"de": "Frage an newsbot", "en": "Ask newsbot"},
    "neu": {"de": "neu", "en": "new"},
    "Neu aufgenommene Artikel: seit einem Datum oder die letzten N": {
        "de": "Neu aufgenommene Artikel: seit einem Datum oder die letzten N",
        "en": "Newly added articles: since a date or the last N"},
    "seit": {"de": "seit", "en": "since"},
    "Datum, z. B. 2025-09-01 (aufgenommen ab diesem Tag, UTC)": {
        "de": "Datum, z. B. 2025-09-01 (aufgenommen ab diesem Tag, UTC)",
        "en": "A date, e.g. 2025-09-01 (added on or after that day, UTC)"},
    "anzahl": {"de": "anzahl", "en": "count"},
    "Höchstens so viele, die neuesten zuerst": {"de": "Höchstens so viele, die neuesten zuerst",
                                                 "en": "At most this many, newest first"},
}

_ENGLISH = {discord.Locale.american_english, discord.Locale.british_english}


class Translator(app_commands.Translator):
    """Command names, descriptions and option names in German and English."""

    async def translate(self, string: app_commands.locale_str, locale: discord.Locale,
                        context: app_commands.TranslationContextTypes) -> str | None:
        texts = COMMAND_TEXTS.get(string.message)
        if texts is None:
            return None
        if locale == discord.Locale.german:
            return texts["de"]
        if locale in _ENGLISH:
            return texts["en"]
        return None


def lang_of(locale: object) -> Lang:
    """German for German locales and where none is known, English for every other locale."""
    if locale is None:
        return "de"
    value = getattr(locale, "value", locale)
    return "de" if str(value).lower().startswith("de") else "en"


# --- UI strings -----------------------------------------------------------------------------------

TEXTS: dict[str, dict[Lang, str]] = {
    "working": {"de": "🔎 Ich suche in den Artikeln …", "en": "🔎 Searching the articles …"},
    "placeholder": {"de": "⏳ Einen Moment …", "en": "⏳ One moment …"},
    "busy": {"de": "Gerade sind sehr viele Fragen offen – bitte versuch es in ein paar Minuten noch einmal. "
                   "Danke für deine Geduld! 🙏",
             "en": "There are a lot of open questions right now – please try again in a few minutes. "
                   "Thanks for your patience! 🙏"},
    "not_allowed": {"de": "Hier bin ich nicht freigeschaltet.", "en": "I am not enabled here."},
    "no_sources": {"de": "Hier gibt es noch keine Antwort mit Quellen. Stell zuerst eine Frage mit `/ask`.",
                   "en": "There is no answer with sources here yet. Ask a question with `/ask` first."},
    "reset": {"de": "Verlauf vergessen – die nächste Frage beginnt ein neues Gespräch.",
              "en": "Conversation forgotten – the next question starts a new one."},
    "failed": {"de": "Entschuldigung, beim Beantworten ist ein Fehler aufgetreten. Bitte versuch es später noch einmal.",
               "en": "Sorry, something went wrong while answering. Please try again later."},
    "empty_answer": {"de": "Dazu habe ich leider keine Antwort gefunden.",
                     "en": "Sorry, I found no answer to that."},
    "sources": {"de": "Quellen", "en": "Sources"},
    "queue_one": {"de": "⏳ Deine Frage ist in der Warteschlange: Platz 1 (1 Frage vor dir).",
                  "en": "⏳ Your question is in the queue: place 1 (1 question ahead of you)."},
    "queue_many": {"de": "⏳ Deine Frage ist in der Warteschlange: Platz {n} ({n} Fragen vor dir).",
                   "en": "⏳ Your question is in the queue: place {n} ({n} questions ahead of you)."},
    "cooldown": {"de": "Bitte warte noch {s} s bis zur nächsten Frage.",
                 "en": "Please wait {s} s before your next question."},
    "help": {"de": "Frag mich etwas zu den Nachrichtenartikeln, z. B. `{mention} Worum ging es beim Gipfel in "
                   "Alaska?` oder mit `/ask`.",
             "en": "Ask me about the news articles, e.g. `{mention} What was the summit in Alaska about?` "
                   "or with `/ask`."},
    # The first message in a thread the bot opens: how to ask a follow-up there.
    "thread_hint": {"de": "ℹ️ Folgefragen hier im Thread: erwähne mich ({mention} …), antworte auf meine Antwort, "
                          "nutze `/ask` oder wähle bei einer Nachricht **Apps → Frage an newsbot**.",
                    "en": "ℹ️ Follow-up questions in this thread: mention me ({mention} …), reply to my answer, "
                          "use `/ask` or pick **Apps → Ask newsbot** on a message."},
    "thread_hint_content": {"de": "ℹ️ Folgefragen: schreib einfach hier im Thread weiter.",
                            "en": "ℹ️ Follow-up questions: just keep writing in this thread."},
    # Shown once per thread when a message arrives that the bot cannot read (no content intent).
    "unreadable": {"de": "ℹ️ Nachrichten ohne Erwähnung kann ich nicht lesen. Erwähne mich ({mention} …), "
                         "antworte mit Ping auf meine Antwort, nutze `/ask` oder **Apps → Frage an newsbot**.",
                   "en": "ℹ️ I cannot read messages that do not mention me. Mention me ({mention} …), reply to my "
                         "answer with the ping on, use `/ask` or **Apps → Ask newsbot**."},
    "no_text": {"de": "Diese Nachricht enthält keinen Text, den ich als Frage nehmen könnte.",
                "en": "That message has no text I could take as a question."},
    # Interaction tokens expire after 15 minutes: the answer moves to a normal message.
    "moved": {"de": "⏳ Deine Frage wartet länger, als Discord diese Antwort offen hält – die Antwort kommt in "
                    "einer eigenen Nachricht: {url}",
              "en": "⏳ Your question waits longer than Discord keeps this reply open – the answer follows in "
                    "its own message: {url}"},
    "moved_header": {"de": "⏳ Antwort auf die Frage von {mention} folgt hier …",
                     "en": "⏳ The answer to {mention}'s question follows here …"},
    "expired": {"de": "Deine Frage hat zu lange gewartet, und ich darf hier keine eigene Nachricht schreiben "
                      "(es fehlt: {missing}). Bitte frag später noch einmal.",
                "en": "Your question waited too long, and I may not post a message of my own here "
                      "(missing: {missing}). Please ask again later."},
    # Missing permissions.
    "no_thread": {"de": "ℹ️ Ich kann hier keinen Thread öffnen (es fehlt: {missing}) – ich antworte direkt hier.",
                  "en": "ℹ️ I cannot open a thread here (missing: {missing}) – I am answering right here."},
    "no_reply": {"de": "ℹ️ Ich kann nicht direkt auf Nachrichten antworten (es fehlt: {missing}).",
                 "en": "ℹ️ I cannot reply to messages directly (missing: {missing})."},
    "no_embeds": {"de": "-# Quellen als Text: mir fehlt hier die Berechtigung {missing}.",
                  "en": "-# Sources as text: I lack the {missing} permission here."},
    "cannot_post": {"de": "Ich kann in {channel} nicht antworten: es fehlt die Berechtigung {missing}. "
                          "Bitte sag den Server-Admins Bescheid oder nutze `/ask`.",
                    "en": "I cannot answer in {channel}: the {missing} permission is missing. "
                          "Please tell the server admins, or use `/ask`."},
    # /neu
    "new_title": {"de": "Neu aufgenommene Artikel", "en": "Newly added articles"},
    "new_link": {"de": "Artikel", "en": "article"},
    "undated": {"de": "undatiert", "en": "undated"},
    "new_none": {"de": "Es wurden noch keine Artikel aus dem Web aufgenommen.",
                 "en": "No web articles have been added yet."},
    "new_none_since": {"de": "Seit {since} wurden keine Artikel aufgenommen.", "en": "No articles were added since {since}."},
    "new_bad_date": {"de": "„{value}“ ist kein Datum – bitte so: 2025-09-01 (oder 2025-09-01T12:00).",
                     "en": "“{value}” is not a date – please write it like 2025-09-01 (or 2025-09-01T12:00)."},
    "restored_sources": {"de": "-# Nach einem Neustart des Bots: die Zitate, wie sie unter der Antwort stehen.",
                         "en": "-# After a restart of the bot: the quotes as shown under the answer."},
}

PERMISSION_NAMES: dict[str, dict[Lang, str]] = {
    "view_channel": {"de": "„Kanal ansehen“", "en": "“View Channel”"},
    "send_messages": {"de": "„Nachrichten senden“", "en": "“Send Messages”"},
    "send_messages_in_threads": {"de": "„Nachrichten in Threads senden“", "en": "“Send Messages in Threads”"},
    "create_public_threads": {"de": "„Öffentliche Threads erstellen“", "en": "“Create Public Threads”"},
    "embed_links": {"de": "„Links einbetten“", "en": "“Embed Links”"},
    "read_message_history": {"de": "„Nachrichtenverlauf anzeigen“", "en": "“Read Message History”"},
}


def t(key: str, lang: Lang = "de", **values: object) -> str:
    text = TEXTS[key][lang]
    return text.format(**values) if values else text


def permission_names(missing: list[str], lang: Lang = "de") -> str:
    return ", ".join(PERMISSION_NAMES[name][lang] for name in missing)
