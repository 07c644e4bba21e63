"""German article pages with real page furniture, and an RSS feed over them (feed tests)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

FURNITURE_TOP = """
<header><nav><ul><li><a href="/">Startseite</a></li><li><a href="/politik">Politik</a></li>
<li><a href="/wirtschaft">Wirtschaft</a></li><li><a href="/sport">Sport</a></li><li><a href="/abo">Abo</a></li></ul></nav></header>
<div id="cookie-banner" class="cookie-consent"><p>Wir verwenden Cookies und ähnliche Technologien, um Ihnen das beste
Nutzererlebnis zu bieten. Mit Klick auf „Alle akzeptieren“ stimmen Sie der Verarbeitung Ihrer Daten zu.</p>
<button>Alle akzeptieren</button><button>Einstellungen</button></div>
"""
FURNITURE_BOTTOM = """
<aside class="paywall-teaser"><h3>Jetzt weiterlesen mit dem Digital-Abo</h3><p>Testen Sie vier Wochen lang alle
Artikel für nur 0,99 Euro. Jederzeit kündbar.</p><a href="/abo">Jetzt abonnieren</a></aside>
<footer><ul><li><a href="/impressum">Impressum</a></li><li><a href="/datenschutz">Datenschutz</a></li>
<li><a href="/agb">AGB</a></li></ul><p>© 2025 {outlet}. Alle Rechte vorbehalten.</p></footer>
"""


def page(title: str, paragraphs: list[str], outlet: str, date: str | None = None, author: str = "") -> str:
    meta_date = f'<meta property="article:published_time" content="{date}T08:00:00+02:00">' if date else ""
    meta_author = f'<meta name="author" content="{author}">' if author else ""
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html><html lang="de"><head><meta charset="utf-8"><title>{title} | {outlet}</title>
<meta property="og:title" content="{title}"><meta property="og:site_name" content="{outlet}">{meta_date}{meta_author}
</head><body>{FURNITURE_TOP}<main><article><h1>{title}</h1>{body}</article></main>
{FURNITURE_BOTTOM.format(outlet=outlet)}</body></html>"""


RADWEGE = [
    "Der Gemeinderat von Freiburg hat am Dienstagabend ein umfangreiches Programm für neue Radwege beschlossen.",
    "Bis zum Jahr 2030 sollen in der Stadt 48 Kilometer geschützte Radstreifen entstehen.",
    "Die Kosten beziffert die Verwaltung auf rund 62 Millionen Euro, von denen das Land etwa die Hälfte übernimmt.",
    "Oberbürgermeister Martin Horn sprach von einem historischen Tag für die Verkehrswende in Freiburg.",
    "Besonders umstritten war der Umbau der Habsburgerstraße, auf der zwei Autospuren wegfallen sollen.",
    "Der Einzelhandelsverband warnte vor Umsatzeinbußen, weil Parkplätze in der Innenstadt verschwinden.",
    "Die Fraktion der Grünen setzte sich mit Unterstützung der SPD in der Abstimmung mit 31 zu 17 Stimmen durch.",
    "Die ersten Bauarbeiten sollen im Frühjahr an der Kaiser-Joseph-Straße beginnen.",
]

HOCHWASSER = [
    "Nach tagelangem Dauerregen ist die Mosel bei Trier über die Ufer getreten.",
    "Der Pegel erreichte am Mittwochmorgen 8,41 Meter und damit den höchsten Stand seit dem Jahr 1993.",
    "In der Altstadt von Bernkastel-Kues standen mehrere Straßen unter Wasser, Anwohner räumten ihre Keller.",
    "Die Feuerwehr war mit mehr als 300 Einsatzkräften im Dauereinsatz und errichtete mobile Schutzwände.",
    "Die Schifffahrt auf der Mosel wurde zwischen Koblenz und Trier vollständig eingestellt.",
    "Der Deutsche Wetterdienst rechnet erst zum Wochenende mit einem Ende der Niederschläge.",
    "Landrat Gregor Eibes rief die Menschen auf, die überfluteten Uferbereiche unbedingt zu meiden.",
    "Verletzt wurde nach Angaben der Polizei bislang niemand.",
]

# Another outlet's print of the Radwege report: its own headline, one sentence rewritten.
RADWEGE_COPY = list(RADWEGE)
RADWEGE_COPY[5] = "Händler in der Innenstadt befürchten dagegen, dass ihnen durch wegfallende Parkplätze Kunden fehlen."


def rss(title: str, items: list[tuple[str, str, datetime]]) -> str:
    entries = "\n".join(
        f"<item><title>{t}</title><link>{link}</link><guid>{link}</guid><pubDate>{format_datetime(d)}</pubDate></item>"
        for t, link, d in items
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>{title}</title><link>http://example.org/</link>
<description>Nachrichten</description>{entries}</channel></rss>"""


def atom(title: str, items: list[tuple[str, str, datetime]]) -> str:
    entries = "\n".join(
        f'<entry><title>{t}</title><link rel="alternate" href="{link}"/><id>{link}</id>'
        f"<updated>{d.isoformat()}</updated></entry>"
        for t, link, d in items
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>{title}</title><id>urn:x</id>{entries}</feed>"""


PUB_RADWEGE = datetime(2025, 9, 2, 19, 30, tzinfo=UTC)
PUB_HOCHWASSER = datetime(2025, 9, 3, 7, 15, tzinfo=UTC)
PUB_COPY = datetime(2025, 9, 2, 21, 0, tzinfo=UTC)
