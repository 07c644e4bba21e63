"""German-aware text handling shared by chunking, BM25, context selection and citation checks.

Normalisation folds case, umlauts and ß (so "Selenskyj"/"SELENSKYJ" and "Außenminister"/
"Aussenminister" meet), tokenisation drops stop words and applies the Snowball German stemmer,
adds the stem of the word's dictionary form (simplemma) where it differs, and long compounds
also index their known parts ("Sicherheitsgarantien" also yields "garantien"), which lets a
question's "Garantie" find the article's compound.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import Stemmer

GERMAN_STOPWORDS = frozenset(
    """
    aber alle allem allen aller alles als also am an ander andere anderem anderen anderer anderes
    anderm andern anderr anders auch auf aus bei bin bis bist da damit dann das dass dasselbe dazu
    dein deine deinem deinen deiner deines dem demselben den denn denselben der derer derselbe
    derselben des desselben dessen dich die dies diese dieselbe dieselben diesem diesen dieser dieses
    dir doch dort du durch ein eine einem einen einer eines einig einige einigem einigen einiger
    einiges einmal er es etwas euch euer eure eurem euren eurer eures für gegen gewesen hab habe haben
    hat hatte hatten hier hin hinter ich ihm ihn ihnen ihr ihre ihrem ihren ihrer ihres im in indem
    ins ist jede jedem jeden jeder jedes jene jenem jenen jener jenes jetzt kann kein keine keinem
    keinen keiner keines können könnte machen man manche manchem manchen mancher manches mein meine
    meinem meinen meiner meines mich mir mit muss musste nach nicht nichts noch nun nur ob oder ohne
    sehr sein seine seinem seinen seiner seines selbst sich sie sind so solche solchem solchen
    solcher solches soll sollte sondern sonst über um und uns unsere unserem unseren unser unseres
    unter viel vom von vor während war waren warst was weg weil weiter welche welchem welchen welcher
    welches wenn werde werden wie wieder will wir wird wirst wo wollen wollte würde würden zu zum zur
    zwar zwischen laut wer wen wem wann warum wieso welchen worauf wodurch womit wovon wozu woher
    wohin hatte hätte gibt gab sei seien wurde wurden worden
    """.split()
)

ENGLISH_STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most
    my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves according did does said say says tell told
    """.split()
)

_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "è": "e", "á": "a", "à": "a"})
_WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*", re.UNICODE)
_SPLIT_HYPHEN = re.compile(r"[-'’]")

# Frequent German compound heads in news text: a compound that ends in one of these also indexes
# the head on its own. Measured on the dev questions: +2 hits at k=5 over stemming alone.
_COMPOUND_HEADS = tuple(
    sorted(
        """
        garantie garantien abkommen gespräch gespräche gipfel krieg kriege konferenz verhandlungen
        verhandlung waffenruhe stillstand minister ministerin präsident präsidentin sprecher sprecherin
        sanktionen lieferungen lieferung anlagen infrastruktur kraftwerke kraftwerk system systeme
        mitgliedschaft truppen streitkräfte telefonat treffen erklärung partner staaten hilfe hilfen
        vertrag angriffe angriff abwehr sicherheit frieden
        """.split(),
        key=len,
        reverse=True,
    )
)


def fold(text: str) -> str:
    """Case-fold and fold umlauts/ß/accents, keeping characters one-to-one where possible."""
    text = unicodedata.normalize("NFC", text).casefold().translate(_FOLD)
    return text


@lru_cache(maxsize=4)
def _stemmer(language: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(language)


def words(text: str) -> list[str]:
    """Word tokens (letters and digits, internal hyphens kept), in original case."""
    return _WORD.findall(text)


def _compound_parts(word: str) -> list[str]:
    parts = [p for p in _SPLIT_HYPHEN.split(word) if p]
    out = parts if len(parts) > 1 else []
    for part in parts:
        for head in _COMPOUND_HEADS:
            if len(part) > len(head) + 3 and part.endswith(head):
                out.append(head)
                break
    return out


@lru_cache(maxsize=200_000)
def _term(word: str) -> str:
    return fold(_stemmer("german").stemWord(word.casefold()))


@lru_cache(maxsize=200_000)
def _lemma_term(raw: str) -> str:
    """The stem of the word's dictionary form: strong verbs meet their other forms
    ("nahmen"/"nehmen", "bat"/"gebeten", "schloss"/"schließt"), which the stemmer alone misses."""
    import simplemma

    lemma = simplemma.lemmatize(raw, lang="de")
    return _term(lemma) if lemma and " " not in lemma else _term(raw)


def is_generic_noun(word: str) -> bool:
    """A short German dictionary word ("Stadt", "August"): capitalised, yet no name. Long words
    and hyphenated compounds name a topic ("Inflationsrate", "Fußball-Weltmeisterschaft")."""
    import simplemma

    return len(word) <= 8 and "-" not in word and simplemma.is_known(word, lang="de")


def tokenize(text: str, *, compounds: bool = True, query: bool = False) -> list[str]:
    """Index terms for BM25: stop words removed, stemmed, folded; compounds add their heads.

    A text indexes a word's stem and, where it differs, its lemma's stem ("gebeten": gebet, bitt;
    "nahmen": nahm, nehm), so every form of a word carries the lemma's stem. A query adds it only
    for irregular forms, whose stem the lemma's is not part of: "sagte" or "geführt" stay as
    selective as the stemmer made them (measured: the lemma for every word pulled a follow-up
    question about an interview towards every "führt" in the corpus)."""
    terms: list[str] = []
    for raw in words(text):
        lower = raw.casefold()
        if lower in GERMAN_STOPWORDS or lower in ENGLISH_STOPWORDS or len(lower) < 2 and not lower.isdigit():
            continue
        stem, lemma = _term(lower), _lemma_term(raw)
        terms.append(stem)
        if lemma != stem and not (query and lemma in stem):
            terms.append(lemma)
        if raw[:1].isupper() and len(lower) >= 5 and lower.endswith("s") and not lower.endswith("ss"):
            terms.append(_term(lower[:-1]))  # genitive "Trumps", "Angriffs": the stemmer keeps the s
        if compounds:
            for part in _compound_parts(lower):
                if part not in GERMAN_STOPWORDS:
                    terms.append(_term(part))
    return terms


def content_terms(text: str) -> set[str]:
    return set(tokenize(text, compounds=True))


# Language detection. Marker words decide German vs English (short, casual and mixed questions lean
# German, as the articles are German); a question in another script, or one without any marker word
# that py3langid places in a third language, gets the polite refusal that names German and English.
# A question is "in another script" when more than this share of its letters is not Latin (names such
# as "Selenskyj" stay Latin in every language the articles are read in):
NON_LATIN_SHARE = 0.5
# py3langid's normalised probability needed to take a marker-less question for English or a third language
# (the marker-less questions of benchmarks/questions/tune.jsonl score at most 0.35 for a wrong language,
# "Putin ile Trump nerede buluştu?" 0.94 for Turkish, "Cosa ha detto Trump su Putin?" 0.53 for Italian):
THIRD_LANGUAGE_CONFIDENCE = 0.5


def detect_language(text: str) -> str:
    """'de', 'en' or 'other': stop-word votes, then the script, then py3langid for marker-less text."""
    tokens = [w.casefold() for w in words(text)]
    if not tokens:
        return "de"
    letters = [ch for ch in text if ch.isalpha()]
    if letters and sum(not _is_latin(ch) for ch in letters) / len(letters) > NON_LATIN_SHARE:
        return "other"
    de = sum(t in _DE_MARKERS for t in tokens)
    en = sum(t in _EN_MARKERS for t in tokens)
    if en > de:
        return "en"
    if de or any(ch in "äöüß" for ch in text.casefold()):
        return "de"
    if sum(t in _OTHER_MARKERS for t in tokens) >= 1 and len(tokens) >= 4:
        return "other"
    language, confidence = _language_identifier().classify(text)
    if confidence < THIRD_LANGUAGE_CONFIDENCE or language == "de":
        return "de"
    return "en" if language == "en" else "other"


def _is_latin(ch: str) -> bool:
    return ch.isascii() or unicodedata.name(ch, "").startswith("LATIN")


@lru_cache(maxsize=1)
def _language_identifier():
    """py3langid's bundled model (loaded once, ~0.5 s): why a library and not more word lists, see README."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


_DE_MARKERS = frozenset(
    "der die das und ist was wer wie wo wann warum welche welcher welches hat haben sagte mit von zu "
    "den dem des ein eine einer im nicht auf für über laut nach sich es sind wurde wollte".split()
)
_EN_MARKERS = frozenset(
    "the what who how where when why which did does do is are was were said say about with to of and "
    "in on for from before after has have did".split()
)
_OTHER_MARKERS = frozenset(
    "le la les est que qui quoi quel quelle des une dans pour avec sur il elle el los las qué quién "
    "cómo con por para di che chi della il lo gli".split()
)


# ---- sentences -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Span:
    start: int
    end: int


# A sentence ends at . ! ? … (plus closing quotes/brackets) followed by whitespace and something
# that can start a sentence. A period after a number ("13. Februar", "61. Sicherheitskonferenz")
# or after a known abbreviation does not end a sentence.
_SENT_END = re.compile(r"[.!?…]+[\"'“”„»«)\]]*(?=\s+[\"'“”„»«(\[]?[A-ZÄÖÜ0-9])")
_ABBREV = frozenset(
    "z.b bzw ca dr prof nr st usw vgl etc inkl u.a d.h sog mio mrd jan feb aug sept okt nov dez "
    "hr fr mr mrs ms vs art abs u.s".split()
)


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans of text[start:end] in absolute offsets, whitespace trimmed, newlines split."""
    end = len(text) if end is None else end
    spans: list[Span] = []
    for line in re.finditer(r"[^\n]+", text[start:end]):
        base = start + line.start()
        segment = line.group(0)
        cursor = 0
        for match in _SENT_END.finditer(segment):
            before = segment[cursor:match.start()]
            last = before.rsplit(None, 1)[-1].lstrip("(„“\"'»«[") if before.split() else ""
            if last.isdigit() and match.group(0).startswith(".") and len(last) <= 2:
                continue
            if last.casefold().rstrip(".") in _ABBREV:
                continue
            _append(spans, segment, base, cursor, match.end())
            cursor = match.end()
        _append(spans, segment, base, cursor, len(segment))
    return spans


def _append(spans: list[Span], segment: str, base: int, lo: int, hi: int) -> None:
    while lo < hi and segment[lo].isspace():
        lo += 1
    while hi > lo and segment[hi - 1].isspace():
        hi -= 1
    if hi > lo:
        spans.append(Span(base + lo, base + hi))


def approx_tokens(text: str) -> int:
    """Token estimate for budgeting before the model's tokenizer is loaded (German ~3.2 chars/token)."""
    return max(1, round(len(text) / 3.2))
