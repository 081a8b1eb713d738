"""Blocking calls release the GIL: other Python threads run meanwhile, and a
logging handler called from the library's threads does not deadlock."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

import lupa_core


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield server.getsockname()[1]
    stop.set()
    t.join()
    for c in held:
        c.close()
    server.close()


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # Python work inside the handler, on one of the library's threads.
        self.messages.append(record.getMessage().upper())


@pytest.mark.timeout(60)
def test_a_blocking_call_lets_other_threads_run(silent_server: int) -> None:
    recorder = _Recorder()
    logger = logging.getLogger("lupa_core")
    logger.addHandler(recorder)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    ticks = 0
    done = threading.Event()

    def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    started = time.monotonic()
    try:
        with pytest.raises(lupa_core.ServiceUnavailableError):
            lupa_core.Lupa(f"postgres://u:pw@127.0.0.1:{silent_server}/db", "none", store_timeout=1.0)
    finally:
        done.set()
        t.join()
        logger.removeHandler(recorder)
        logger.setLevel(old_level)
    waited = time.monotonic() - started
    assert waited >= 0.9
    assert ticks > 100, f"only {ticks} ticks in {waited:.2f} s: the GIL was held"
    assert recorder.messages, "the storage warning reached the handler"
