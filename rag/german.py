"""German (and a few English) word lists the heuristics share, in one place.

Three lists answer the same question, "does this lean on what came before?", at three different
points, and they differ on purpose (each was tuned where it is used; unifying them changes which
sentences are picked and which questions get rewritten, measured on the dev set):

* `FOLLOW_UP_WORDS` (anywhere in a chat question, German and English): pronouns and pronominal
  adverbs that point into the conversation, so the question is rewritten with the history.
* `LEANS_BACK_STARTS` (first word of an article sentence): the picked answer sentence needs the
  sentence before it to be understood ("Er sagte ...", "Zudem ...").
* `NEIGHBOUR_STARTS` (first word of a context sentence): when packing the context, such a
  sentence brings the one before it along.
"""

from __future__ import annotations

import re

# used by rag.answering.followup
FOLLOW_UP_WORDS = re.compile(
    r"\b(er|sie|es|ihm|ihr|ihn|dazu|dabei|damit|darauf|darüber|davon|dort|damals|das|dies|diese[rsmn]?|jene[rsmn]?|"
    r"he|she|it|they|him|her|them|that|this|there|then|those)\b",
    re.IGNORECASE,
)

# used by rag.answering.select: a sentence that begins like this continues the one before it
LEANS_BACK_STARTS = frozenset(
    "er sie es dies diese dieser dieses dabei dort damit demnach daraufhin darin dazu davor danach "
    "zudem außerdem auch ferner ebenso".split()
)
# A following sentence that begins like this adds to the one before (a second condition, a reason).
CONTINUES_STARTS = frozenset("zudem außerdem ferner ebenso darüber dazu auch".split())
# Within the first words of the next sentence: it contrasts with or updates the picked one.
CONTRAST_WORDS = frozenset("jedoch allerdings aber jetzt nun inzwischen".split())

# used by rag.answering.context
NEIGHBOUR_STARTS = frozenset(
    {"er", "sie", "es", "dies", "das", "dieser", "diese", "dabei", "dort", "damit", "zudem", "auch", "außerdem"}
)
