"""Read ahead in a background thread, so reading overlaps what the consumer does.

pyarrow parses without the GIL, so the next chunk of a file is read while the caller
validates and loads the current one (whose ``COPY`` in libpq releases the GIL too).
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Generator, Iterator
from typing import Final, TypeVar

__all__ = ["prefetched"]

T = TypeVar("T")

_DONE: Final = object()
_POLL_S: Final = 0.05


class _Raised:
    """An exception of the producer, handed to the consumer."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetched(source: Iterator[T], depth: int) -> Generator[T]:
    """The items of *source*, produced up to *depth* ahead by a daemon thread.

    Memory grows by at most *depth* items. An exception of *source* is raised here, in
    order, after the items before it. Leaving the loop early (``break``, an exception,
    garbage collection of this generator) stops the thread and closes *source* in it.
    *source* runs in a copy of the caller's context (its log events keep the caller's
    bound context variables).
    """
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=_POLL_S)
            except queue.Full:
                continue
            return True
        return False

    def produce() -> None:
        try:
            for item in source:
                if not offer(item):
                    return
            offer(_DONE)
        except BaseException as exc:  # noqa: BLE001 - raised in the consumer's thread
            offer(_Raised(exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run, args=(produce,), name="wdh-read-ahead", daemon=True
    )
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
