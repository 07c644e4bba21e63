"""The answer queue's slots: taken at arrival, so arrival order is answer order."""

from __future__ import annotations

import pytest

from bot.discord.queue import AnswerQueue, QueueFull


async def test_a_reserved_slot_keeps_its_arrival_place_and_capacity_counts_it() -> None:
    queue = AnswerQueue(service=None, maxsize=2)  # never started: nothing is answered, only ordered
    early = queue.reserve()  # acknowledged, its conversation still being read
    later = queue.submit("later", (), user_id=2)
    third = queue.reserve()
    with pytest.raises(QueueFull):  # idle: the first in line is about to run, so maxsize + 1 fit
        queue.reserve()
    first = queue.submit("early", (), user_id=1, reservation=early)
    assert [job.question for job in queue._waiting] == ["early", "later"]
    assert (first.seq, later.seq) == (1, 2)
    queue.release(third)
    assert queue.waiting == 2 and not queue.full
    queue.submit("after", (), user_id=3)
    assert [job.question for job in queue._waiting] == ["early", "later", "after"] and queue.full
