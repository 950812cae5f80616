"""Depositors' signatures checked in a process of their own, spoken to by the event loop itself.

A single deposit's signature costs about as much as the rest of its request together; checked on
the event loop it would halve the deposits one loop serves. So each event loop that takes single
deposits has one :class:`SignatureProcess`: a spawned process running
:func:`verifier.signature.verify_batch` on the other core.

The loop talks to it over a non-blocking socket pair it watches itself: it writes a request, and
reads the answer when it is there, as it reads a client's request. No thread sits between them.
(A ``ProcessPoolExecutor`` hands each answer to a thread of its own, which then waits for the GIL
while the loop is busy — up to a switch interval, 5 ms, per answer — and deposits waited for it.)

Frames both ways are a 4-byte big-endian length and a payload: a request is the pickle of the
``(spki, statement_hash, sig_alg, signature)`` list, an answer one byte per item (1: verifies).
Requests are answered in order. The process ends when its socket closes (the loop closed, or the
process was let go). If it dies, the requests it held fail with :class:`SignatureProcessGone`,
and the next :func:`signature_process` call starts another.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import multiprocessing
import pickle
import socket
import struct
import weakref
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from typing import Any

from verifier.signature import verify_batch

__all__ = ["SignatureProcess", "SignatureProcessGone", "serve", "signature_process"]

Item = tuple[bytes, bytes, str, bytes]
"""What :func:`verifier.signature.verify_batch` checks: (spki, statement hash, alg, signature)."""

_LENGTH = struct.Struct(">I")
ANSWER_SECONDS = 30.0
"""How long a request may wait for its answer before the process is taken for stuck (a chunk
of single deposits' signatures takes milliseconds)."""
log = logging.getLogger(__name__)


class SignatureProcessGone(ConnectionError):
    """The signature process ended before it answered: check on the loop instead."""


def serve(sock: socket.socket) -> None:
    """The signature process's main: answer requests on ``sock`` until it closes."""
    with sock, sock.makefile("rb") as requests:
        while True:
            head = requests.read(_LENGTH.size)
            if len(head) < _LENGTH.size:
                return
            (size,) = _LENGTH.unpack(head)
            payload = requests.read(size)
            if len(payload) < size:
                return
            answer = bytes(verify_batch(pickle.loads(payload)))  # noqa: S301 - our own parent
            try:
                sock.sendall(_LENGTH.pack(len(answer)) + answer)
            except OSError:  # the parent let go meanwhile
                return


class SignatureProcess:
    """One signature-checking process, and one event loop's socket to it.

    It holds its loop only weakly, so a loop that is let go takes its process with it (the
    socket closes, the process reads its end and exits)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Spawn the process (it takes a moment to import: requests wait in its socket)."""
        ours, theirs = socket.socketpair()
        context = multiprocessing.get_context("spawn")
        self.process: BaseProcess = context.Process(
            target=serve, args=(theirs,), name="cunzheng-signatures", daemon=True
        )
        try:
            self.process.start()
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours
        self._fd = ours.fileno()
        self._loop = weakref.ref(loop)
        self._inbox = bytearray()
        self._outbox = bytearray()
        self._waiting: collections.deque[tuple[asyncio.Future[list[bool]], int]] = (
            collections.deque()
        )
        self.gone = False
        self.finalizer: weakref.finalize[..., Any] | None = None
        """Closes this process when its loop is let go (set by :func:`signature_process`)."""
        loop.add_reader(self._fd, self._readable)

    def verify(self, items: Sequence[Item]) -> asyncio.Future[list[bool]]:
        """Whether each item verifies (:func:`verifier.signature.verify_batch`), once the
        process answers; :class:`SignatureProcessGone` if it ends first. Call on its loop."""
        answer: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        if not items:
            answer.set_result([])
            return answer
        if self.gone:
            raise SignatureProcessGone("the signature process has ended")
        payload = pickle.dumps(list(items), protocol=pickle.HIGHEST_PROTOCOL)
        self._waiting.append((answer, len(items)))
        self._send(_LENGTH.pack(len(payload)) + payload)
        overdue = answer.get_loop().call_later(ANSWER_SECONDS, self._overdue, answer)
        answer.add_done_callback(lambda _: overdue.cancel())
        return answer

    def _overdue(self, answer: asyncio.Future[list[bool]]) -> None:
        """A process alive but stuck would hold every request up: let it go."""
        if not answer.done():
            self._end(TimeoutError(f"no answer in {ANSWER_SECONDS:g} s"))
            with contextlib.suppress(Exception):
                self.process.kill()

    def _send(self, frame: bytes) -> None:
        if self._outbox:  # the socket is full: after what waits
            self._outbox += frame
            return
        try:
            sent = self._sock.send(frame)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self._end(exc)
            return
        if sent < len(frame):
            self._outbox += frame[sent:]
            loop = self._loop()
            if loop is not None:
                loop.add_writer(self._fd, self._writable)

    def _writable(self) -> None:
        try:
            sent = self._sock.send(self._outbox)
        except BlockingIOError:
            return
        except OSError as exc:
            self._end(exc)
            return
        del self._outbox[:sent]
        loop = self._loop()
        if not self._outbox and loop is not None:
            loop.remove_writer(self._fd)

    def _readable(self) -> None:
        try:
            data = self._sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError as exc:
            self._end(exc)
            return
        if not data:
            self._end(EOFError("the signature process closed its socket"))
            return
        inbox = self._inbox
        inbox += data
        while len(inbox) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(inbox)
            if len(inbox) < _LENGTH.size + size:
                break
            answer = bytes(inbox[_LENGTH.size : _LENGTH.size + size])
            del inbox[: _LENGTH.size + size]
            if not self._waiting or self._waiting[0][1] != size:
                self._end(ValueError("the signature process answered out of step"))
                return
            waiter, _ = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result([b == 1 for b in answer])

    def _end(self, reason: BaseException) -> None:
        """Fail every request still waiting, and let the process go."""
        if self.gone:
            return
        self.gone = True
        if not isinstance(reason, SignatureProcessGone):  # not closed on purpose
            log.warning("the signature process ended (%r); checking signatures here", reason)
        loop = self._loop()
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self._fd)
            loop.remove_writer(self._fd)
        self._sock.close()
        while self._waiting:
            waiter, _ = self._waiting.popleft()
            if not waiter.done():
                with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                    waiter.set_exception(
                        SignatureProcessGone(f"the signature process has ended: {reason!r}")
                    )

    def close(self) -> None:
        """End the process: it reads the end of its socket and exits."""
        self._end(SignatureProcessGone("closed"))


_PROCESSES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SignatureProcess] = (
    weakref.WeakKeyDictionary()
)


def signature_process() -> SignatureProcess:
    """The running loop's signature process, started at first use, and again if it ended."""
    loop = asyncio.get_running_loop()
    process = _PROCESSES.get(loop)
    if process is None or process.gone:
        if process is not None and process.finalizer is not None:
            process.finalizer.detach()
        process = _PROCESSES[loop] = SignatureProcess(loop)
        process.finalizer = weakref.finalize(loop, process.close)
        process.finalizer.atexit = False  # at exit the socket closes anyway, and so it ends
    return process
