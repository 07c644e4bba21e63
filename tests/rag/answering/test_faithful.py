"""The English rendering check rejects each kind of drift seen in English answers."""

from __future__ import annotations

from rag.answering.faithful import check_rendering, numbers

CALL = "Trump telefonierte am 18. März mit Putin über eine Waffenruhe."
PLANE = "An Bord der Air Force One sagte Trump dem Sender Fox News, die Chancen stünden 50:50."
NO_INVITE = "Selenskyj sagte, er habe keine Einladung erhalten."


def problems(quote, rendering, **kw):
    return check_rendering(quote, rendering, **kw).problems


def test_faithful_renderings_pass():
    assert problems(CALL, "Trump spoke with Putin about a ceasefire on March 18.") == []
    assert problems(CALL, "On 18 March Trump talked to Putin about a ceasefire.") == []
    assert problems(PLANE, "Aboard Air Force One, Trump told Fox News the chances were 50:50.") == []
    assert problems(NO_INVITE, "Zelensky said he had not received an invitation.") == []


def test_a_date_turned_into_a_duration_is_rejected():
    assert any("numbers" in p for p in problems(CALL, "Trump spoke to Putin for about 18 minutes."))


def test_an_invented_number_or_weekday_is_rejected():
    assert problems(CALL, "Trump spoke with Putin on March 19.")
    assert any("dates" in p for p in problems(CALL, "On Monday, March 18, Trump spoke with Putin."))


def test_a_place_the_quote_does_not_name_is_rejected():
    assert any("Washington" in p for p in problems(PLANE, "In Washington, Trump told Fox News the chances were 50:50."))
    assert any("Saudi" in p for p in problems(CALL, "Trump spoke with Putin in Saudi Arabia on March 18."))


def test_a_flipped_negation_is_rejected():
    assert any("negation" in p for p in problems(NO_INVITE, "Zelensky said he had received an invitation."))
    assert any("negation" in p for p in problems(CALL, "Trump did not speak with Putin on March 18."))


def test_meaning_drift_is_rejected_below_the_similarity_threshold():
    def similarity(quote, rendering):
        return 0.9 if "ceasefire" in rendering else 0.4

    assert problems(CALL, "Trump spoke with Putin about a ceasefire on March 18.", similarity=similarity, min_similarity=0.6) == []
    drift = problems(CALL, "Trump spoke with Putin about trade on March 18.", similarity=similarity, min_similarity=0.6)
    assert any("meaning" in p for p in drift)


def test_user_supplied_words_are_no_support():
    # the rendering says what an injected question wanted; the quote does not: rejected
    assert problems(CALL, "Trump said that Putin will resign on Monday.")


def test_numbers_read_both_conventions():
    assert numbers("1.000 Drohnen und 2,5 Milliarden") == numbers("1,000 drones and 2.5 billion")
