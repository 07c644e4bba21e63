"""What the bot remembers between messages: conversations, answers and cooldowns.

Kept in memory and bounded, as a cache only: after a restart the bot rebuilds a conversation
from Discord itself (the reply chain, the thread's messages; see bot.discord.history), and a sources
button finds its answer's sources on the message it sits on.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from rag.answer import Answer, Turn

CAPACITY = 2000  # remembered threads, answer messages and channels, each

K = TypeVar("K")
V = TypeVar("V")


class _Bounded(OrderedDict[K, V]):
    """An insertion-ordered dict that forgets its oldest entries beyond `CAPACITY`."""

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > CAPACITY:
            self.popitem(last=False)


@dataclass(eq=False)
class Conversation:
    """One question-and-answer thread: a Discord thread the bot opened, or a chain of replies."""

    channel_id: int  # where its answers are posted
    turns: deque[Turn] = field(default_factory=deque)


class Conversations:
    def __init__(self, history_turns: int) -> None:
        self._history_turns = history_turns
        self._threads: _Bounded[int, Conversation] = _Bounded()  # by thread id
        self._messages: _Bounded[int, Conversation] = _Bounded()  # by answer message id
        self._last: _Bounded[int, Answer] = _Bounded()  # by channel or thread id
        self._last_of: _Bounded[tuple[int, int], Answer] = _Bounded()  # by (channel, user)
        self._answers: _Bounded[int, Answer] = _Bounded()  # by answer key (see NewsBot: a snowflake)
        self._floors: _Bounded[int, int] = _Bounded()  # by channel: the /reset's snowflake

    def new(self, channel_id: int) -> Conversation:
        return Conversation(channel_id, deque(maxlen=self._history_turns))

    def open_thread(self, thread_id: int, turns: Iterable[Turn] = ()) -> Conversation:
        conversation = self._threads[thread_id] = self.new(thread_id)
        conversation.turns.extend(turns)
        return conversation

    def restored(self, channel_id: int, turns: Iterable[Turn]) -> Conversation:
        """A conversation rebuilt from Discord (a reply chain) after a restart."""
        conversation = self.new(channel_id)
        conversation.turns.extend(turns)
        return conversation

    def in_thread(self, thread_id: int) -> Conversation | None:
        return self._threads.get(thread_id)

    def replying_to(self, message_id: int) -> Conversation | None:
        return self._messages.get(message_id)

    def history(self, conversation: Conversation | None) -> tuple[Turn, ...]:
        return tuple(conversation.turns) if conversation else ()

    def remember(self, conversation: Conversation, question: str, answer: Answer, message_ids: Iterable[int],
                 user_id: int = 0, key: int | None = None) -> None:
        """Record a finished answer: its turn, the messages a reply may point at, its sources."""
        if self._history_turns:
            conversation.turns.append(Turn(answer.standalone_question or question, answer.text))
        for message_id in message_ids:
            self._messages[message_id] = conversation
        self._last[conversation.channel_id] = answer
        self._last_of[(conversation.channel_id, user_id)] = answer
        if key is not None:
            self._answers[key] = answer

    def last_answer(self, channel_id: int, user_id: int | None = None) -> Answer | None:
        """The user's last answer here (what /quellen shows), else the channel's last one."""
        if user_id is not None and (channel_id, user_id) in self._last_of:
            return self._last_of[(channel_id, user_id)]
        return self._last.get(channel_id)

    def answer(self, key: int) -> Answer | None:
        """The answer a sources button points at, while it is remembered."""
        return self._answers.get(key)

    def floor(self, channel_id: int) -> int:
        """Messages older than this (a snowflake) are not read back into a conversation here."""
        return self._floors.get(channel_id, 0)

    def reset(self, channel_id: int, since: int = 0) -> None:
        """Forget the history of this channel or thread (a bot thread stays open for questions).

        `since` (the /reset's snowflake) keeps a later rebuild from Discord from bringing it back.
        """
        if since:
            self._floors[channel_id] = since
        self._last.pop(channel_id, None)
        for key in [k for k in self._last_of if k[0] == channel_id]:
            del self._last_of[key]
        thread = self.in_thread(channel_id)
        if thread is not None:
            thread.turns.clear()
        for message_id in [m for m, c in self._messages.items() if c.channel_id == channel_id]:
            del self._messages[message_id]


class Cooldown:
    """Per-user pause between accepted questions, so one user cannot fill the queue."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._clock = clock
        self._since: dict[int, float] = {}

    def remaining(self, user_id: int) -> float:
        started = self._since.get(user_id)
        return 0.0 if started is None else max(0.0, started + self._seconds - self._clock())

    def start(self, user_id: int) -> None:
        if not self._seconds:
            return
        now = self._clock()
        if len(self._since) > CAPACITY:
            self._since = {u: t for u, t in self._since.items() if t + self._seconds > now}
        self._since[user_id] = now
