"""Drop the parts of an HTML page a reader never sees, before trafilatura extracts the article.

Text hidden from readers (a `sr-only` span, a `hidden` paragraph, white on white) can carry
anything, an injected instruction or a false claim, and would otherwise be answered from. Only
what the markup itself says is detected: the `hidden` and `aria-hidden` attributes, inline
styles and a list of common hide classes. Hiding done by stylesheets (a site's own class names,
off-screen positioning, clipping, text the same colour as a background set in CSS) needs a CSS
engine and is not detected (README, "Web sources").
"""

from __future__ import annotations

import logging
import re

logger = logging.getLogger(__name__)

# Class names that hide an element in the common CSS frameworks (Bootstrap, Tailwind, Foundation,
# WordPress, Drupal, Bulma, HTML5 Boilerplate); responsive ones (hidden-xs, md:hidden) are left alone.
HIDE_CLASSES = frozenset({
    "sr-only", "visually-hidden", "visuallyhidden", "screen-reader-text", "screen-reader-only", "screenreader-only",
    "hidden", "d-none", "hide", "invisible", "is-hidden", "u-hidden", "element-invisible", "element-hidden",
    "offscreen", "a11y-hidden", "show-for-sr", "hidden-visually", "aural", "is-invisible",
})
# Elements never dropped: a hide class on <body> is usually a script's "no-js" switch, not content.
NEVER_DROPPED = frozenset({"html", "head", "body"})
# Colour names that occur in hidden-text tricks; other names are compared as written.
NAMED_COLOURS = {
    "white": (255, 255, 255), "black": (0, 0, 0), "red": (255, 0, 0), "green": (0, 128, 0), "blue": (0, 0, 255),
    "yellow": (255, 255, 0), "gray": (128, 128, 128), "grey": (128, 128, 128), "silver": (192, 192, 192),
    "whitesmoke": (245, 245, 245), "snow": (255, 250, 250), "ivory": (255, 255, 240),
}
_ZERO = re.compile(r"^[-+]?0*\.?0+(?:px|pt|em|rem|%|vw|vh|ex|ch)?$")
_COLOUR_TOKEN = re.compile(r"#[0-9a-f]{3,8}\b|rgba?\([^)]*\)|\b[a-z]+\b")


def strip_hidden(html: str) -> str:
    """`html` without the elements hidden by markup or inline style; unchanged when it cannot be parsed."""
    import lxml.etree
    import lxml.html

    try:
        root = lxml.html.document_fromstring(html)
    except ValueError:  # a unicode string with an XML encoding declaration
        try:
            root = lxml.html.document_fromstring(html.encode("utf-8"))
        except (ValueError, lxml.etree.ParserError):
            return html
    except lxml.etree.ParserError:  # empty or no elements at all
        return html
    hidden = [el for el in root.iter() if isinstance(el.tag, str) and el.tag not in NEVER_DROPPED and _is_hidden(el)]
    if not hidden:
        return html
    hidden_set = set(hidden)
    outermost = [el for el in hidden if not any(a in hidden_set for a in el.iterancestors())]
    for el in outermost:
        el.drop_tree()  # keeps the tail text, which belongs to the parent
    logger.debug("dropped %d hidden element(s)", len(outermost))
    return lxml.html.tostring(root, encoding="unicode", doctype="<!DOCTYPE html>")


def _is_hidden(el) -> bool:
    if el.get("hidden") is not None or (el.get("aria-hidden") or "").strip().lower() == "true":
        return True
    if HIDE_CLASSES.intersection((el.get("class") or "").lower().split()):
        return True
    style = el.get("style")
    return bool(style) and _style_hides(_declarations(style), el)


def _declarations(style: str) -> dict[str, str]:
    result = {}
    for part in style.split(";"):
        name, sep, value = part.partition(":")
        if sep:
            result[name.strip().lower()] = value.replace("!important", "").strip().lower()
    return result


def _style_hides(decl: dict[str, str], el) -> bool:
    if decl.get("display") == "none" or decl.get("visibility") in ("hidden", "collapse"):
        return True
    if _ZERO.match(decl.get("opacity", "1")) or _ZERO.match(decl.get("font-size", "1")):
        return True
    if "color" not in decl:
        return False
    colour = _colour(decl["color"])
    if colour == "transparent":
        return True
    return colour is not None and colour == _background(el, decl)


def _background(el, decl: dict[str, str]):
    """The background colour the element's text is drawn on, as far as inline styles tell."""
    while True:
        for name in ("background-color", "background"):
            if name in decl:
                for token in _COLOUR_TOKEN.findall(decl[name]):
                    colour = _colour(token)
                    if colour is not None and colour != "transparent":
                        return colour
        el = el.getparent()
        if el is None:
            return None
        decl = _declarations(el.get("style") or "")


def _colour(value: str):
    """(r, g, b) for a CSS colour, "transparent" for a fully transparent one, None when unknown."""
    value = value.strip().lower()
    if value in NAMED_COLOURS:
        return NAMED_COLOURS[value]
    if value == "transparent":
        return "transparent"
    if value.startswith("#"):
        digits = value[1:]
        if len(digits) in (3, 4):
            digits = "".join(c * 2 for c in digits)
        if len(digits) in (6, 8) and all(c in "0123456789abcdef" for c in digits):
            if len(digits) == 8 and digits[6:] == "00":
                return "transparent"
            return tuple(int(digits[i:i + 2], 16) for i in (0, 2, 4))
        return None
    match = re.fullmatch(r"rgba?\(([^)]*)\)", value)
    if match:
        parts = [p for p in re.split(r"[,\s/]+", match.group(1)) if p]
        try:
            rgb = tuple(round(float(p[:-1]) * 2.55) if p.endswith("%") else int(float(p)) for p in parts[:3])
            alpha = float(parts[3].rstrip("%")) / (100 if parts[3].endswith("%") else 1) if len(parts) > 3 else 1.0
        except (ValueError, IndexError):
            return None
        return "transparent" if alpha == 0 else rgb if len(rgb) == 3 else None
    return None
