"""`newsbot bench` rows: a generation rate only where text streamed after the first character."""

from __future__ import annotations

from rag.answer import Answer
from rag.quality.bench import run_newsbot


class _Timed:
    def __init__(self, first: float, total: float, generated: int) -> None:
        self.first, self.total, self.generated = first, total, generated

    def answer(self, question: str) -> Answer:
        return Answer(question=question, text="x", refused=False, generated_tokens=self.generated,
                      timings={"first_token_s": self.first, "total_s": self.total})


def test_a_rendering_generated_before_the_first_character_has_no_streaming_rate():
    rendered_first = run_newsbot(_Timed(5.0, 5.0, 60), [{"question": "How?"}])
    streamed = run_newsbot(_Timed(1.0, 3.0, 30), [{"question": "Wie?"}])
    assert rendered_first["rows"][0]["gen_tok_s"] is None
    assert streamed["rows"][0]["gen_tok_s"] == 15.0
