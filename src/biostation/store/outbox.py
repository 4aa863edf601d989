"""The outbox: delivers finished transactions to the central endpoint, exactly once.

Each queued transaction (:meth:`EnrollmentStore.finish`, or a mobile team's batch) is POSTed to
``central_url`` with its transaction id as ``Idempotency-Key``; a retry carries the same key, so
the central system, which keeps the keys it has accepted, files a transaction once however many
times it arrives (the pattern of the IETF httpapi draft "The Idempotency-Key HTTP Header Field").
The body is the transaction's bytes, with ``Content-Digest: sha-256=...`` (RFC 9530).

What an answer does::

    2xx                         acked: payload, blobs and record bytes purged, receipt kept
    408 409 425 429 5xx         retry this one later (409: the same key is still being processed)
    401 403                     retry later, and hold the whole queue (credentials, not the entry)
    other 4xx                   rejected: held with its payload for an operator (`outbox requeue`)
    no answer (refused, reset,  offline: retry later, and hold the whole queue until then
    timeout, TLS failure)

Retry delays grow exponentially per transaction: ``base * 2**attempts``, capped at ``cap``, with
"equal jitter" (half the delay fixed, half uniform random) so that desks coming back online
together do not retry in step; a ``Retry-After`` of the server lengthens it, within the cap. The
queue's state is in the store's database, so it survives restarts; a payload is purged only in
the transaction that records the 2xx (:meth:`EnrollmentStore.outbox_acked`).

After an outage a desk notices the endpoint is back at its next retry, at most ``cap`` later;
:meth:`OutboxSender.retry_now` (``biostation outbox flush --now``) skips the wait.

Driving it: :meth:`Outbox.step` makes one attempt and returns what happened; :meth:`Outbox.run`
loops until stopped, sleeping through an injectable ``wait`` until the next entry is due;
:class:`OutboxSender` runs that loop on a thread. Time comes from the store's clock, so tests and
fault drills run outages of hours in milliseconds. One sender per store: :meth:`Outbox.exclusive`
takes an advisory lock (``enrollment.db.outbox.lock``) that the kernel drops if the process dies.

Transport security: the URL must be ``https://``, except to a loopback address (tests, a local
relay). ``central_ca_file`` pins the CA, ``central_client_cert`` adds mutual TLS, ``central_token``
a bearer token. Logs name transaction ids, status codes and error classes; never payloads or
tokens.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import ipaddress
import logging
import os
import random
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .._version import __version__
from ..errors import OutboxBusyError, OutboxError
from .enrollment import EnrollmentStore

__all__ = ["Outbox", "OutboxSender", "Backoff", "StepResult", "check_url", "tls_context"]

log = logging.getLogger(__name__)

_RETRY = {408, 409, 425, 429}
_HOLD = {401, 403}


@dataclass(frozen=True)
class Backoff:
    """Retry delay after ``attempts`` failed attempts: ``min(cap, base * factor**attempts)``, of
    which ``jitter`` (a fraction) is drawn uniformly at random."""

    base_s: float = 2.0
    cap_s: float = 600.0
    factor: float = 2.0
    jitter: float = 0.5

    def delay(self, attempts: int, rng: random.Random, retry_after: float | None = None) -> float:
        d = min(self.cap_s, self.base_s * self.factor ** min(attempts, 64))
        d = d * (1.0 - self.jitter) + rng.random() * d * self.jitter
        if retry_after is not None:
            d = max(d, min(self.cap_s, retry_after))
        return d


@dataclass(frozen=True)
class StepResult:
    """One attempt: ``outcome`` is ``acked``, ``retry``, ``offline`` or ``rejected``."""

    txn_id: str
    outcome: str
    status: int | None = None
    error: str | None = None
    delay_s: float | None = None
    purged: dict[str, int] | None = None


def check_url(url: str) -> str:
    """``url`` if it is https, or http to a loopback address; OutboxError otherwise."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return url
        raise OutboxError(f"central URL {url}: plain http carries personal data in clear; use https "
                          "(http is accepted to a loopback address only)")
    raise OutboxError(f"central URL {url!r}: not an http(s) URL")


def tls_context(ca_file: str | None = None, client_cert: str | None = None) -> ssl.SSLContext:
    """A client TLS context: certificate and host name checked (against ``ca_file`` when given,
    else the system's CAs), TLS 1.2 at least, ``client_cert`` (PEM, key included) presented."""
    try:
        ctx = ssl.create_default_context(cafile=ca_file)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if client_cert:
            ctx.load_cert_chain(client_cert)
    except (OSError, ssl.SSLError) as exc:
        raise OutboxError(f"TLS files for the central endpoint: {exc.__class__.__name__}: "
                          f"{getattr(exc, 'strerror', None) or exc}") from None
    return ctx


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: the backoff alone decides


class Outbox:
    """Delivers ``store``'s queue to ``url``.

    ``client``: an ``httpx.Client`` (tests pass one with a mock transport); by default one is
    made that verifies the server against ``ca_file`` (a PEM bundle; default: the system's CAs),
    presents ``client_cert`` (PEM with its key) for mutual TLS, and times out after ``timeout_s``.
    ``rng`` draws the jitter (seed it for reproducible drills). ``actor`` names the sender in the
    audit trail. OutboxError when the URL is not allowed or a TLS file cannot be loaded.
    """

    def __init__(self, store: EnrollmentStore, url: str, *, client: Any = None, backoff: Backoff = Backoff(),
                 rng: random.Random | None = None, token: str | None = None, ca_file: str | None = None,
                 client_cert: str | None = None, timeout_s: float = 30.0, actor: str = "outbox"):
        import httpx

        self.store = store
        self.url = check_url(url)
        self.backoff = backoff
        self.rng = rng or random.Random()
        self.actor = actor
        self._token = token
        self._own_client = client is None
        self.client = client or httpx.Client(verify=tls_context(ca_file, client_cert),
                                             timeout=httpx.Timeout(timeout_s), follow_redirects=False)
        self._lock_fd: int | None = None

    @classmethod
    def from_settings(cls, store: EnrollmentStore, settings: Any, **kw: Any) -> Outbox:
        if not settings.central_url:
            raise OutboxError("no central URL: set BIOSTATION_CENTRAL_URL")
        ca = str(settings.central_ca_file) if settings.central_ca_file else None
        cert = str(settings.central_client_cert) if settings.central_client_cert else None
        token = settings.central_token.get_secret_value() if settings.central_token else None
        backoff = Backoff(settings.outbox_backoff_base_s, max(settings.outbox_backoff_cap_s,
                                                              settings.outbox_backoff_base_s))
        return cls(store, settings.central_url, ca_file=ca, client_cert=cert, token=token, backoff=backoff,
                   timeout_s=settings.central_timeout_s, **kw)

    def close(self) -> None:
        self.release()
        if self._own_client:
            self.client.close()

    # --- one sender per store ----------------------------------------------------------------
    def acquire(self) -> None:
        """Take the store's sender lock; OutboxBusyError when another live sender holds it."""
        if self._lock_fd is not None:
            return
        fd = os.open(str(self.store.path) + ".outbox.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutboxBusyError(f"another process is sending the outbox of {self.store.path}") from None
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[Outbox]:
        self.acquire()
        try:
            yield self
        finally:
            self.release()

    # --- attempts ------------------------------------------------------------------------------
    def _headers(self, txn_id: str, content_type: str, payload: bytes) -> dict[str, str]:
        digest = base64.b64encode(hashlib.sha256(payload).digest()).decode()
        h = {"Idempotency-Key": txn_id, "Content-Type": content_type, "Content-Digest": f"sha-256=:{digest}:",
             "User-Agent": f"biostation/{__version__}", "X-Biostation-Station": self.store.station_id}
        if self._token:
            h["Authorization"] = f"Bearer {self._token}"
        return h

    def step(self) -> StepResult | None:
        """One upload attempt of the oldest due entry; None when nothing is due now."""
        import httpx

        now = self.store.clock()
        entry = self.store.outbox_next(now)
        if entry is None:
            return None
        txn = entry.txn_id
        try:
            resp = self.client.post(self.url, content=entry.payload,
                                    headers=self._headers(txn, entry.content_type, entry.payload))
        except httpx.TransportError as exc:
            delay = self.backoff.delay(entry.attempts, self.rng)
            err = f"no answer: {exc.__class__.__name__}"
            self.store.outbox_retry_later(txn, err, now + delay)
            self.store.outbox_hold_all(now + delay)
            log.info("outbox %s: %s; next try in %.1f s", txn, err, delay)
            return StepResult(txn, "offline", None, err, delay)
        status = resp.status_code
        if 200 <= status < 300:
            receipt: dict[str, Any] = {"status": status, "at": now,
                                       "body_sha256": hashlib.sha256(resp.content).hexdigest()}
            try:
                body = resp.json()
                if isinstance(body, dict) and isinstance(body.get("receipt"), (str, int)):
                    receipt["receipt"] = str(body["receipt"])[:128]
            except ValueError:
                pass
            purged = self.store.outbox_acked(txn, self.actor, receipt)
            log.info("outbox %s: delivered (HTTP %d)", txn, status)
            return StepResult(txn, "acked", status, purged=purged)
        err = f"HTTP {status}"
        if status >= 500 or status in _RETRY or status in _HOLD:
            delay = self.backoff.delay(entry.attempts, self.rng, _retry_after(resp.headers.get("Retry-After")))
            self.store.outbox_retry_later(txn, err, now + delay)
            if status in _HOLD:
                self.store.outbox_hold_all(now + delay)
            log.info("outbox %s: %s; next try in %.1f s", txn, err, delay)
            return StepResult(txn, "offline" if status in _HOLD else "retry", status, err, delay)
        self.store.outbox_rejected(txn, self.actor, status, err)
        log.warning("outbox %s: refused by the central endpoint (%s); held for an operator", txn, err)
        return StepResult(txn, "rejected", status, err)

    def drain(self, max_attempts: int = 1_000_000) -> list[StepResult]:
        """Attempt every entry due now, until none is due (no waiting); the attempts made."""
        out: list[StepResult] = []
        while len(out) < max_attempts:
            r = self.step()
            if r is None:
                break
            out.append(r)
        return out

    def wait_s(self) -> float | None:
        """Seconds until the next entry is due (0: now), or None when the queue is empty."""
        due = self.store.outbox_next_due()
        return None if due is None else max(0.0, due - self.store.clock())

    def run(self, stop: threading.Event, *, wait: Callable[[float | None], Any] | None = None,
            idle_s: float = 60.0) -> None:
        """Deliver until ``stop`` is set. Between attempts it calls ``wait(seconds)`` (default:
        ``stop.wait``); with an empty queue it waits ``idle_s`` (or until woken, see
        :class:`OutboxSender`). A store or transport bug in one attempt is logged and retried
        after the backoff's base delay, never allowed to kill the loop."""
        wait = wait or stop.wait
        while not stop.is_set():
            try:
                if self.step() is not None:
                    continue
                w = self.wait_s()
            except Exception as exc:  # keep delivering; the cause is logged
                log.error("outbox: %s: %s", exc.__class__.__name__, exc)
                w = self.backoff.base_s
            wait(idle_s if w is None else min(w, idle_s))


class OutboxSender:
    """:meth:`Outbox.run` on a daemon thread, holding the store's sender lock.

    ``wake()`` after queueing something cuts the idle wait short; ``stop()`` ends the loop and
    joins the thread (an upload in flight finishes or times out first).
    """

    def __init__(self, outbox: Outbox, *, idle_s: float = 60.0):
        self.outbox = outbox
        self.idle_s = idle_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, store: EnrollmentStore, settings: Any, **kw: Any) -> OutboxSender | None:
        """A sender for the settings' central endpoint (not started), or None when no
        ``central_url`` is set (a desk that exports batches only)."""
        if not settings.central_url:
            return None
        return cls(Outbox.from_settings(store, settings), **kw)

    def _wait(self, seconds: float | None) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def start(self) -> OutboxSender:
        self.outbox.acquire()
        self._thread = threading.Thread(target=self.outbox.run, args=(self._stop,),
                                        kwargs={"wait": self._wait, "idle_s": self.idle_s},
                                        name="biostation-outbox", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def retry_now(self, actor: str) -> int:
        """Make every queued entry due now and wake the loop (the operator knows the network is
        back, rather than wait for the backoff); returns how many entries were waiting."""
        n = self.outbox.store.outbox_retry_now(actor)
        self.wake()
        return n

    def stop(self, timeout_s: float | None = None) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.outbox.close()
