"""What an operator watches: Prometheus metrics, JSON-lines logs, one access-log line per request.

Metrics are written in the Prometheus text exposition format (version 0.0.4) by hand: a few
counters and histograms need no client library. Names (all ``cunzheng_``-prefixed):

- ``deposits_total{outcome="new"|"duplicate"}`` — deposits acknowledged (durable);
- ``block_entries`` (histogram) — entries per committed block (the group-commit batch size);
- ``commit_seconds`` (histogram) — one block's durable write to the store;
- ``verify_results_total{verdict}`` — verdicts given by the verify and lookup routes;
- ``http_requests_total{method,route,status}`` and ``http_request_seconds{route}`` (histogram);
- gauges read at scrape time: ``tree_size``, ``tsa_lag_entries`` (entries with no trusted
  time yet), ``tsa_lag_seconds`` (age of the oldest checkpoint without a token), ``tsa_up``,
  ``checkpoint_age_seconds`` (age of the latest checkpoint).

Logs never carry a request's headers or body, nor its path: the access line names the route by
its template (``/v1/cases/{contract_no}/check``), because a path can hold private meta — a
contract number (DESIGN §3) — and the caller by role and key id, never by token
(tests/reliability/test_operations.py reads every line a server wrote).
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from typing import Any

__all__ = ["AccessLog", "JsonLines", "Metrics", "configure_logging"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


class _Histogram:
    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * len(self.buckets)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
                break
        self.count += 1
        self.sum += value

    def lines(self, name: str, labels: str) -> Iterable[str]:
        cumulative = 0
        sep = "," if labels else ""
        for bound, n in zip(self.buckets, self.counts, strict=True):
            cumulative += n
            yield f'{name}_bucket{{{labels}{sep}le="{_num(bound)}"}} {cumulative}'
        yield f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}'
        braces = f"{{{labels}}}" if labels else ""
        yield f"{name}_sum{braces} {_num(self.sum)}"
        yield f"{name}_count{braces} {self.count}"


def _num(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Counters and histograms, safe to update from any thread; :meth:`render` for /metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deposits = {"new": 0, "duplicate": 0}
        self._verdicts: dict[str, int] = {}
        self._requests: dict[tuple[str, str, int], int] = {}
        self._latency: dict[str, _Histogram] = {}
        self._block_entries = _Histogram(_BATCH_BUCKETS)
        self._commit = _Histogram(_LATENCY_BUCKETS)

    def block(self, entries: int, seconds: float) -> None:
        """One block committed durably (the sequencer's ``observe`` hook)."""
        with self._lock:
            self._block_entries.observe(entries)
            self._commit.observe(seconds)

    def deposits(self, *, new: int, duplicate: int) -> None:
        with self._lock:
            self._deposits["new"] += new
            self._deposits["duplicate"] += duplicate

    def verdict(self, verdict: str) -> None:
        with self._lock:
            self._verdicts[verdict] = self._verdicts.get(verdict, 0) + 1

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (method, route, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            histogram = self._latency.get(route)
            if histogram is None:
                histogram = self._latency[route] = _Histogram(_LATENCY_BUCKETS)
            histogram.observe(seconds)

    def render(self, gauges: dict[str, tuple[str, float]]) -> str:
        """The exposition text; ``gauges`` maps a name to (help, value), read at scrape time."""
        out: list[str] = []

        def head(name: str, kind: str, text: str) -> None:
            out.append(f"# HELP cunzheng_{name} {text}")
            out.append(f"# TYPE cunzheng_{name} {kind}")

        with self._lock:
            head("deposits_total", "counter", "Deposits acknowledged (durable), by outcome.")
            for outcome, n in self._deposits.items():
                out.append(f'cunzheng_deposits_total{{outcome="{outcome}"}} {n}')
            head("block_entries", "histogram", "Entries per committed block.")
            out.extend(self._block_entries.lines("cunzheng_block_entries", ""))
            head("commit_seconds", "histogram", "Durable write of one block to the store.")
            out.extend(self._commit.lines("cunzheng_commit_seconds", ""))
            head("verify_results_total", "counter", "Verdicts given, by verdict.")
            for verdict, n in sorted(self._verdicts.items()):
                out.append(f'cunzheng_verify_results_total{{verdict="{_label(verdict)}"}} {n}')
            head("http_requests_total", "counter", "HTTP requests, by method, route and status.")
            for (method, route, status), n in sorted(self._requests.items()):
                labels = f'method="{method}",route="{_label(route)}",status="{status}"'
                out.append(f"cunzheng_http_requests_total{{{labels}}} {n}")
            head("http_request_seconds", "histogram", "HTTP request latency, by route.")
            for route, histogram in sorted(self._latency.items()):
                label = f'route="{_label(route)}"'
                out.extend(histogram.lines("cunzheng_http_request_seconds", label))
        for name, (text, value) in gauges.items():
            head(name, "gauge", text)
            out.append(f"cunzheng_{name} {_num(value)}")
        return "\n".join(out) + "\n"


class JsonLines(logging.Formatter):
    """One JSON object a line: ``ts`` (RFC 3339, UTC), ``level``, ``logger``, ``message``, the
    record's ``extra`` fields, and ``exc`` when an exception is attached."""

    _STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(fmt: str = "text", level: str = "info") -> None:
    """Send every logger (ours and uvicorn's) to stderr, as text or JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonLines()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

access_log = logging.getLogger("cunzheng.access")


class AccessLog:
    """ASGI middleware: one log line and one metrics sample per HTTP request.

    The route is the matched template (``/v1/deposits/{code}``), so metrics do not grow a label
    per deposit code, and the raw path — which for ``/v1/cases/{contract_no}`` names a
    contract, private meta — is never logged. The caller is named by the role and key id the
    auth check put in the request state; headers (and so tokens) are never read here.
    """

    def __init__(
        self, app: Callable[[_Scope, _Receive, _Send], Awaitable[None]], metrics: Metrics
    ) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        status = 500

        async def sending(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.request(scope["method"], route, status, seconds)
            access_log.info(
                "%s %s %d",
                scope["method"],
                route,
                status,
                extra={
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "ms": round(seconds * 1000, 2),
                    "caller": state.get("cunzheng_caller"),
                },
            )


GC_THRESHOLD = (50_000, 20, 10)
"""Generation thresholds of the serving process (CPython's are 700, 10, 10)."""


def tune_gc() -> None:
    """Keep the garbage collector's pauses out of request latency; call once the service and
    app are built, before serving.

    With CPython's defaults the served process ran a full collection every second or so under
    load, each 80–115 ms over the start-up heap (FastAPI, pydantic, cryptography, the app):
    those pauses were the p99 of every route. The start-up heap is frozen (never scanned
    again: it lives as long as the process), and the youngest generation is collected after
    50,000 allocations instead of 700, so the older ones are reached far less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
