"""Many users, one model: a bounded FIFO in front of a single worker thread.

The model call blocks for seconds, so it runs on its own thread while the event loop keeps
the gateway heartbeats and the other users' interactions flowing. Each question becomes a
`Job` whose events (queue position, start, streamed text, result) the Discord side consumes
at its own pace, so the worker never waits for Discord.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from rag.answer import Answer, Turn

from .service import AnswerService

_log = logging.getLogger(__name__)


class QueueFull(Exception):
    """Every waiting slot is taken; the user gets a polite busy message instead."""


@dataclass(frozen=True)
class Position:
    position: int  # 1 = next after the question being answered now


@dataclass(frozen=True)
class Started:
    pass


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class Done:
    answer: Answer


@dataclass(frozen=True)
class Failed:
    error: BaseException


Event = Position | Started | Token | Done | Failed


@dataclass(eq=False)
class Reservation:
    """A waiting slot taken when a command arrives, before the awaits of acknowledging it and
    reading its conversation: arrival order stays answer order, and a later arrival cannot take
    the slot of an earlier one that was already acknowledged."""

    seq: int


@dataclass(eq=False)
class Job:
    question: str
    history: tuple[Turn, ...]
    user_id: int
    events: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    cancel: threading.Event = field(default_factory=threading.Event)
    seq: int = 0  # arrival order


class AnswerQueue:
    def __init__(self, service: AnswerService, maxsize: int) -> None:
        self._service = service
        self._maxsize = maxsize
        self._waiting: deque[Job] = deque()
        self._wakeup = asyncio.Event()
        self._running: Job | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="newsbot-model")
        self._task: asyncio.Task[None] | None = None
        self._reserved: set[int] = set()
        self._arrivals = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._work(), name="newsbot-answer-queue")

    def reserve(self) -> Reservation:
        """Take a waiting slot now (synchronously), or raise QueueFull."""
        if self.full:
            raise QueueFull
        self._arrivals += 1
        self._reserved.add(self._arrivals)
        return Reservation(self._arrivals)

    def release(self, reservation: Reservation) -> None:
        """Give back a slot that will not be used (the command could not be acknowledged)."""
        self._reserved.discard(reservation.seq)

    def submit(self, question: str, history: tuple[Turn, ...], user_id: int,
               reservation: Reservation | None = None) -> Job:
        """Queue a question (synchronously, so arrival order is answer order) or raise QueueFull;
        with a reservation, in its slot and in the order it arrived."""
        if reservation is not None and reservation.seq in self._reserved:
            self.release(reservation)
            seq = reservation.seq
        else:
            if self.full:
                raise QueueFull
            self._arrivals += 1
            seq = self._arrivals
        job = Job(question, history, user_id, seq=seq)
        place = next((i for i, waiting in enumerate(self._waiting) if waiting.seq > seq), len(self._waiting))
        self._waiting.insert(place, job)
        if place < len(self._waiting) - 1:  # it overtook later arrivals: their places moved
            self._announce_positions()
        elif self._running is not None or len(self._waiting) > 1:
            job.events.put_nowait(Position(len(self._waiting)))
        self._wakeup.set()
        return job

    def cancel(self, job: Job) -> None:
        """Forget a job whose reply can no longer be delivered."""
        job.cancel.set()
        if job in self._waiting:
            self._waiting.remove(job)
            self._announce_positions()

    @property
    def waiting(self) -> int:
        """Questions waiting, and slots reserved for arrivals still being acknowledged."""
        return len(self._waiting) + len(self._reserved)

    @property
    def full(self) -> bool:
        """The question being answered and `maxsize` waiting: while none is being answered, the
        first in line is about to be, so one more fits."""
        return self.waiting >= self._maxsize + (self._running is None)

    async def close(self) -> None:
        for job in self._waiting:
            job.cancel.set()
        self._waiting.clear()
        if self._running is not None:
            self._running.cancel.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _announce_positions(self) -> None:
        for index, job in enumerate(self._waiting, start=1):
            job.events.put_nowait(Position(index))

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._waiting:
                self._wakeup.clear()
                await self._wakeup.wait()
            job = self._waiting.popleft()
            self._announce_positions()
            if job.cancel.is_set():
                continue
            self._running = job
            job.events.put_nowait(Started())
            try:
                answer = await loop.run_in_executor(self._executor, self._answer, job, loop)
            except Exception as exc:  # reported to the user by the consumer; logged there
                job.events.put_nowait(Failed(exc))
            else:
                job.events.put_nowait(Done(answer))
            finally:
                self._running = None

    def _answer(self, job: Job, loop: asyncio.AbstractEventLoop) -> Answer:
        """Runs on the worker thread; streamed text goes back to the loop thread-safely."""

        def on_token(text: str) -> None:
            loop.call_soon_threadsafe(job.events.put_nowait, Token(text))

        return self._service.answer(job.question, job.history, on_token=on_token, cancel=job.cancel)
