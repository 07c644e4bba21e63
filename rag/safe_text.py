"""Terminal control sequences out of text that came from articles (issue 17.4).

An article (a local file or a fetched page) may carry ANSI/ECMA-48 sequences: an OSC 52 that
writes the reader's clipboard, cursor moves that overwrite what is shown, an OSC 8 hyperlink
whose target is hidden. None of it is text, so it is removed at ingest (nothing stored carries
it) and again wherever text is written to a terminal (a store built elsewhere, or model output).
The visible text between the sequences stays; line breaks and tabs stay.
"""

from __future__ import annotations

import re

# String sequences (OSC, DCS, SOS, PM, APC), 7-bit (ESC ] ...) or 8-bit (U+009D ...), ended by
# BEL or ST (ESC \ or U+009C). An unterminated one runs to the next control character or line end.
_STRING = r"(?:\x1b[\]P X^_]|[\x90\x98\x9d\x9e\x9f])[^\x00-\x1f\x7f-\x9f]*(?:\x07|\x1b\\|\x9c)?"
# CSI (ESC [ or U+009B): parameter bytes, intermediate bytes, one final byte.
_CSI = r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
# Any other escape: ESC, intermediate bytes, one final byte (ESC 7, ESC ( B, ESC c, ...).
_OTHER_ESC = r"\x1b[\x20-\x2f]*[\x30-\x7e]?"
_SEQUENCE = re.compile(f"{_STRING}|{_CSI}|{_OTHER_ESC}")
# What is left: C0 controls except tab and newline, DEL, and the C1 range U+0080..U+009F.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Breaks that a terminal acts on: CR (which returns the cursor to overwrite the line), VT, FF.
_BREAKS = re.compile(r"\r\n?|[\x0b\x0c]")


def strip_controls(text: str) -> str:
    """`text` without terminal control sequences or control characters (tabs and newlines kept)."""
    if not text or _CONTROL.search(text) is None:
        return text
    text = _BREAKS.sub("\n", text)
    text = _SEQUENCE.sub("", text)
    return _CONTROL.sub("", text)
