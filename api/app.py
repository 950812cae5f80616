"""The HTTP API (``/v1``) and the public tlog-tiles endpoints, over a :class:`~api.service.Service`.

Roles (DESIGN §9) are checked on every route by :func:`caller` / :func:`require`; the public
routes take no key. Handlers are thin: the service and the verifier do the work.
"""

import asyncio
import base64
import contextlib
import datetime as dt
import itertools
import logging
import secrets
import struct
import tempfile
import time
import urllib.parse
import weakref
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from ledger.canonical import jcs, loads
from ledger.cases import CaseReport
from ledger.code import DepositCode, parse_code
from ledger.entry import EVIDENCE_KINDS, Deposit, Digest, parse_entry
from ledger.errors import CaseNotFound, InvalidInput, NotFound, TooLarge, Unavailable
from ledger.log import now_ms
from ledger.sequencer import Receipt
from ledger.tiles import ENTRY_BUNDLE_LEVEL, TILE_WIDTH, parse_tile_path
from verifier.admission import Admission
from verifier.bundle import VERDICTS_ZH, Report, present, verify_bundle
from verifier.signature import PublicKey

from . import documents, problems
from .operations import AccessLog
from .problems import Problem
from .routing import DirectRoute, adopt, hot_first
from .service import ApiKey, Service
from .signatures import SignatureProcessGone, signature_process
from .uploads import ALL_ALGORITHMS, FileSink, read_form

__all__ = ["DEFAULT_PUBLIC_URL", "Limits", "create_app"]

log = logging.getLogger(__name__)

Check = tuple[int, Deposit, Any]
""":meth:`verifier.admission.Admission.prepare`'s signature checks: (position, deposit, key)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits on every upload and batch (settable in the service settings)."""

    max_body_bytes: int = 16 << 20
    max_batch: int = 5000
    max_original_bytes: int = 64 << 20
    max_verify_upload_bytes: int = 1 << 30


MAX_SIZE = (1 << 63) - 1
"""The largest tree size or index a request may name (stores keep them as 64-bit integers)."""
TreeSize = Annotated[int, Path(ge=0, le=MAX_SIZE)]


async def verify_by_chunks(items: list[tuple[bytes, bytes, str, bytes]]) -> list[bool] | None:
    """A batch's signatures through the loop's signature process, :data:`BATCH_CHUNK` at a
    time, so that single deposits' chunks go in between rather than wait behind the whole
    batch; ``None`` if the process cannot be had."""
    verdicts: list[bool] = []
    for start in range(0, len(items), BATCH_CHUNK):
        answer = _asked(items[start : start + BATCH_CHUNK])
        if answer is None:
            return None
        try:
            verdicts += await answer
        except SignatureProcessGone:
            return None
    return verdicts


def _asked(items: list[tuple[bytes, bytes, str, bytes]]) -> asyncio.Future[list[bool]] | None:
    """The running loop's signature process's answer to come for ``items``; ``None`` if that
    process cannot be had (then they are checked here)."""
    try:
        return signature_process().verify(items)
    except (SignatureProcessGone, OSError):
        return None
    except Exception:  # it could not even be started: say why
        log.exception("the signature process could not be started")
        return None


def _items(checks: list[Check]) -> list[tuple[bytes, bytes, str, bytes]] | None:
    """What :func:`verifier.signature.verify_batch` takes for ``checks``; ``None`` if one of
    their keys is not one it can take (SM2: checked here)."""
    if not all(isinstance(parsed, PublicKey) for _, _, parsed in checks):
        return None
    return [
        (parsed.spki, d.statement.signed_hash, d.sig.alg, bytes(d.sig.value))
        for _, d, parsed in checks
    ]


_Single = tuple[list[Deposit], "asyncio.Future[list[Receipt]]", list[Check], list[Any]]
"""A single deposit request: its deposits, its waiter, its signature checks, and its slot:
``[the signature process's answer to come, where its verdicts are in it]`` (no answer: checked
here)."""

BATCH_CHUNK = 128
"""A batch's signatures sent to the signature process at a time (about 16 ms of checking: what
a single deposit may wait behind)."""
BATCH_WAIT_SECONDS = 120.0
"""How long a batch's thread waits for its signatures from the loop's signature process."""
CHUNK = 16
"""Signatures sent to the signature process at a time while a turn takes single deposits in:
fewer, and the loop pays more per deposit to send and read them; more, and the process starts
later and the turn's block waits longer for its last answer."""


@dataclass(slots=True)
class _Turn:
    """The single deposits one turn of an event loop took in, admitted at ``at`` (Unix ms).

    Their signatures go to the signature process :data:`CHUNK` at a time as they come, so it
    checks them while the loop reads the next; at the end of the turn they are queued together,
    for the writer to make one block of them."""

    at: int
    requests: list[_Single] = field(default_factory=list)
    chunk: list[tuple[bytes, bytes, str, bytes]] = field(default_factory=list)
    slots: list[list[Any]] = field(default_factory=list)
    """The slots of the requests whose signatures are in :attr:`chunk`."""

    def add(
        self,
        deposits: list[Deposit],
        waiter: asyncio.Future[list[Receipt]],
        checks: list[Check],
        items: list[tuple[bytes, bytes, str, bytes]] | None,
    ) -> None:
        """Take a request in; ``items`` (if any) are its signatures for the process."""
        slot: list[Any] = [None, len(self.chunk)]
        self.requests.append((deposits, waiter, checks, slot))
        if items:
            self.chunk += items
            self.slots.append(slot)
            if len(self.chunk) >= CHUNK:
                self.send()

    def send(self) -> None:
        """Send the chunk's signatures to the signature process (if it cannot be had, they are
        checked here, later)."""
        if not self.chunk:
            return
        answer = _asked(self.chunk)
        for slot in self.slots:
            slot[0] = answer
        self.chunk = []
        self.slots = []


SPELLED_KEPT = 1 << 14
_SPELLED: dict[bytes, str] = {}
"""Base64 of the node hashes in recent receipts' proofs: the receipts of one block, and of the
next blocks, share most of them (the upper levels, the tail)."""


def _refused(waiter: asyncio.Future[Any], error: Exception) -> None:
    if not waiter.done():
        waiter.set_exception(error)


class EncodedJSON(Response):
    """A response of JSON already encoded, its two headers made directly: Starlette's generic
    header set-up cost the hot routes (a verify answer, a receipt) more than their look-ups.
    Only for statuses with a body (not 1xx, 204 or 304, where Starlette sends no length)."""

    media_type = "application/json"

    def __init__(self, body: bytes, status_code: int = 200) -> None:
        if status_code < 200 or status_code in (204, 304):
            raise ValueError(f"status {status_code} has no body: use Response")
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"content-length", b"%d" % len(body)),
            (b"content-type", b"application/json"),
        ]


def _json(obj: Any, status: int = 200) -> Response:
    return EncodedJSON(jcs(obj), status)


def _disposition(file_name: str) -> dict[str, str]:
    """An attachment named ``file_name`` (RFC 6266, UTF-8 per RFC 8187), ASCII fallback."""
    ascii_name = "".join(
        c if c.isascii() and (c.isalnum() or c in "-._") else "_" for c in file_name
    )
    quoted = urllib.parse.quote(file_name, safe="")
    return {
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quoted}"
    }


def _download(body: bytes, media_type: str, file_name: str) -> Response:
    return Response(body, media_type=media_type, headers=_disposition(file_name))


class DepositorIn(BaseModel):
    id: str = Field(description="lower-case id, e.g. lender-1")
    display_name: str


class KeyIn(BaseModel):
    public_key: str = Field(description="PEM public key or X.509 certificate")
    key_id: str | None = None
    not_before: int | None = Field(None, description="Unix ms; default now")
    not_after: int | None = None


MAX_LOOKUPS = 4096
"""Index lookups in one ``POST /v1/indexes/lookup``."""


class IndexLookupIn(BaseModel):
    codes: list[Annotated[str, Field(max_length=64)]] = Field(
        default=[], max_length=MAX_LOOKUPS, description="deposit codes (forgiving input)"
    )
    statements: list[Annotated[str, Field(pattern="^([0-9a-f]{2}){49,81}$")]] = Field(
        default=[], max_length=MAX_LOOKUPS, description="statement keys, lower-case hex"
    )


class RevokeIn(BaseModel):
    at: int | None = Field(None, description="Unix ms; default now")


class ApiKeyIn(BaseModel):
    role: str
    depositor: str | None = None
    label: str = ""
    expires_at: int | None = Field(None, description="Unix ms; default: until revoked")


@dataclass(frozen=True, slots=True)
class CheckedCase:
    report: CaseReport
    depositor: str


class VerifyIn(BaseModel):
    code: str | None = None
    digest: str | None = Field(None, description="alg:hex, e.g. sha256:9f86…")


MAX_VERIFY_BODY = 16 * 1024
"""Bytes of a ``POST /v1/verify`` body at most (a code and a digest take a few hundred)."""

_Model = TypeVar("_Model", bound=BaseModel)


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a route that reads its JSON body itself (request-only: :mod:`api.routing`)."""
    schema = {"content": {"application/json": {"schema": model.model_json_schema()}}}
    return {"requestBody": {"required": True, **schema}}


def parsed(model: type[_Model], body: bytes) -> _Model:
    """``body`` as ``model``; a body that is not one is refused as FastAPI would refuse it
    (422 ``invalid_request`` with the errors' locations)."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=body) from None


def refuse_declared(request: Request, limit: int, message: str) -> None:
    """Refuse early a body whose declared length is already too large."""
    for name, value in request.scope["headers"]:  # raw: a Headers object costs more than this
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                raise TooLarge(message, limit=limit)
            return


async def read_body(request: Request, limit: int, message: str) -> bytes:
    """The request's whole body, refused as soon as more than ``limit`` bytes have come (or are
    declared). Read from the ASGI messages themselves: Starlette's stream, wrapped in a
    limiting generator, cost a deposit request more than its admission."""
    refuse_declared(request, limit, message)
    receive = request.receive
    chunks = []
    size = 0
    while True:
        message_in = await receive()
        if message_in["type"] == "http.disconnect":
            raise InvalidInput("the request was cut off before its body ended")
        chunk = message_in.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge(message, limit=limit)
        chunks.append(chunk)
        if not message_in.get("more_body", False):
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            request._body = body  # as Request.body() leaves it, should anything read it again
            return body


DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000/"
"""Where ``cunzheng serve`` listens when told nothing: the default of ``public_url``."""


def create_app(
    service: Service, *, limits: Limits | None = None, public_url: str = DEFAULT_PUBLIC_URL
) -> FastAPI:
    """The ASGI app. The service is started and closed by whoever runs the app.

    ``public_url`` is the depository's address as the public knows it: every link and QR code
    in a certificate or package opens the judge's page there. Never the request's ``Host``
    header, or a caller could have a depository-branded PDF point at a look-alike site."""
    app = FastAPI(
        title="cunzheng 存证",
        version="1",
        description="Evidence depository and verifier: deposits, one-click retrieval (一键调证), "
        "verification, and a public RFC 9162 log.",
        # FastAPI's built-in OpenTelemetry asks the global providers on every request (about a
        # third of a trivial request's time); the service has its own metrics and access log.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    problems.install(app)
    limits = limits or Limits()
    MAX_BODY_BYTES = limits.max_body_bytes  # noqa: N806 - read like constants below
    MAX_BATCH = limits.max_batch  # noqa: N806
    MAX_ORIGINAL_BYTES = limits.max_original_bytes  # noqa: N806
    MAX_VERIFY_UPLOAD = limits.max_verify_upload_bytes  # noqa: N806

    async def caller(request: Request) -> ApiKey | None:
        return identify(request)

    def identify(request: Request) -> ApiKey | None:
        """The caller's key (``None`` without one); 401 for a key unknown, revoked or expired."""
        header = request.headers.get("authorization", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        key = service.api_keys.authenticate(token.strip()) if scheme.lower() == "bearer" else None
        if key is None:
            raise Problem(
                401, "unauthenticated", "the API key is unknown or revoked", "API密钥无效"
            )
        request.state.cunzheng_caller = f"{key.role}:{key.id}"  # for the access log; no secret
        return key

    def permitted(key: ApiKey | None, roles: tuple[str, ...]) -> ApiKey:
        if key is None:
            raise Problem(401, "unauthenticated", "this route needs an API key", "需要API密钥")
        if key.role not in roles:
            raise Problem(
                403, "forbidden", f"the {key.role} role may not do this", "无权执行此操作",
                role=key.role, allowed=list(roles),
            )  # fmt: skip
        return key

    def require(*roles: str) -> Callable[..., Coroutine[Any, Any, ApiKey]]:
        async def check(key: Annotated[ApiKey | None, Depends(caller)]) -> ApiKey:
            return permitted(key, roles)

        return check

    async def body_json(request: Request) -> Any:
        message = f"the body is larger than {MAX_BODY_BYTES} bytes"
        return loads(await read_body(request, MAX_BODY_BYTES, message))

    def fresh_report(index: int) -> Report:
        """Verify deposit ``index`` from its bundle; keep the report once sealed."""
        report = verify_bundle(
            service.bundle(index),
            log_keys=[service.log_verifier],
            tsa_roots=service.tsa_roots,
            check_token=service.check_token,
        )
        if report.trusted_time is not None and report.verdict == "VERIFIED":
            service.reports.put(index, report)  # sealed: nothing about it can change
        return report

    async def report_for(
        index: int, digest: Digest | None, code: DepositCode | None
    ) -> dict[str, Any]:
        """The verdict: from a kept report at once, else verified off the event loop."""
        return presented(await report_of(index), index, digest, code)

    async def report_of(index: int) -> Report:
        report = service.reports.get(index)
        if report is None:
            report = await run_in_threadpool(fresh_report, index)
        return report

    def presented(
        report: Report, index: int, digest: Digest | None, code: DepositCode | None
    ) -> dict[str, Any]:
        out = present(report, digest=digest, code=code).to_object()
        out["index"] = index
        service.metrics.verdict(out["verdict"])
        return out

    async def answer(index: int, digest: Digest | None, code: DepositCode | None) -> Response:
        """The public verdict on deposit ``index`` for what was presented; a sealed deposit's
        answers are kept encoded (the same question always gets the same bytes)."""
        key = (index, None if digest is None else (digest.alg, digest.value),
               None if code is None else code.bits)  # fmt: skip
        kept = service.reports.answer(key)
        if kept is not None:
            verdict, body = kept
            service.metrics.verdict(verdict)
            return EncodedJSON(body)
        report = await report_of(index)
        out = presented(report, index, digest, code)
        body = jcs(out)
        service.reports.put_answer(key, index, (out["verdict"], body), report)
        return EncodedJSON(body)

    def not_found() -> Response:
        service.metrics.verdict("NOT_FOUND")
        return _json({"verdict": "NOT_FOUND", "verdict_zh": VERDICTS_ZH["NOT_FOUND"], "steps": []})

    turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turn] = weakref.WeakKeyDictionary()
    """The turn under way of each event loop that took single deposits in it."""
    admitting: set[asyncio.Task[None]] = set()
    """Admissions under way (a task is only weakly held by its loop)."""

    def take_single(deposits: list[Deposit], waiter: asyncio.Future[list[Receipt]]) -> None:
        """Admit one deposit but for its signature, which goes to the signature process at
        once — it checks this one while the loop reads the next — and add it to this turn's."""
        loop = waiter.get_loop()
        turn = turns.get(loop)
        if turn is None:
            turn = turns[loop] = _Turn(service.ledger.clock())
            loop.call_soon(end_turn, loop)
        admission = service.sequencer.admit
        if not isinstance(admission, Admission):
            turn.add(deposits, waiter, [], None)
            return
        checks = admission.prepare(deposits, turn.at)  # a refusal is this request's answer
        turn.add(deposits, waiter, checks, _items(checks))

    def end_turn(loop: asyncio.AbstractEventLoop) -> None:
        turn = turns.pop(loop)
        turn.send()
        admit_later(admit_turn(turn, loop), [waiter for _, waiter, _, _ in turn.requests])

    def admit_later(
        admitting_them: Coroutine[Any, Any, None], waiters: list[asyncio.Future[list[Receipt]]]
    ) -> None:
        """Run an admission as a task of the running loop; should it fail unforeseen, its
        requests are refused with that error rather than left waiting."""

        async def guarded() -> None:
            try:
                await admitting_them
            except Exception as exc:
                log.exception("admission failed")
                for waiter in waiters:
                    _refused(waiter, exc)

        task = asyncio.get_running_loop().create_task(guarded())
        admitting.add(task)
        task.add_done_callback(admitting.discard)

    async def admit_turn(turn: _Turn, loop: asyncio.AbstractEventLoop) -> None:
        """Once the signature process has answered for all of a turn's deposits, queue those
        whose signatures verify, together."""
        admission = service.sequencer.admit
        if not isinstance(admission, Admission):  # the sequencer admits them itself
            submit_admitted([(d, w) for d, w, _, _ in turn.requests], loop, None)
            return
        admitted = []
        for deposits, waiter, checks, (answer, at) in turn.requests:
            verdicts = None
            if answer is not None:
                with contextlib.suppress(SignatureProcessGone):
                    verdicts = (await answer)[at : at + len(checks)]
            if stands(admission, waiter, checks, verdicts):
                admitted.append((deposits, waiter))
        submit_admitted(admitted, loop, turn.at)

    def check_batch(
        admission: Admission, checks: list[Check], loop: asyncio.AbstractEventLoop
    ) -> None:
        """In a batch's thread: raise the first of its signatures that does not verify, checked
        in ``loop``'s signature process (here, when that cannot be had or cannot take a key)."""
        verdicts = None
        items = _items(checks)
        if items is not None:
            answer = asyncio.run_coroutine_threadsafe(verify_by_chunks(items), loop)
            try:
                verdicts = answer.result(timeout=BATCH_WAIT_SECONDS)
            except Exception:  # the loop is stopping, or stuck
                answer.cancel()
        recheck(admission, checks, verdicts)

    def recheck(admission: Admission, checks: list[Check], verdicts: list[bool] | None) -> None:
        """Raise the precise error of the first of ``checks`` that the signature process found
        wrong and that is wrong here too; without its ``verdicts``, all are checked here."""
        wrong = checks
        if verdicts is not None:
            wrong = [c for c, ok in zip(checks, verdicts, strict=True) if not ok]
        if wrong:  # wrong there, right here: trust here
            admission.verify_signatures(wrong)

    def stands(
        admission: Admission,
        waiter: asyncio.Future[list[Receipt]],
        checks: list[Check],
        verdicts: list[bool] | None,
    ) -> bool:
        """Whether a request whose signatures got ``verdicts`` stands (:func:`recheck`); if
        not, it is refused with that error."""
        try:
            recheck(admission, checks, verdicts)
        except Exception as exc:
            _refused(waiter, exc)
            return False
        return True

    def submit_admitted(
        batch: list[tuple[list[Deposit], asyncio.Future[list[Receipt]]]],
        loop: asyncio.AbstractEventLoop,
        admitted_at: int | None,
    ) -> None:
        if not batch:
            return
        try:
            refusals = service.sequencer.submit_each_for(batch, loop, admitted_at=admitted_at)
        except Exception as exc:  # the sequencer is not running
            refusals = [exc] * len(batch)
        for (_, waiter), refusal in zip(batch, refusals, strict=True):
            if refusal is not None:
                _refused(waiter, refusal)

    app.router.route_class = DirectRoute  # request-only endpoints skip FastAPI's handler
    v1 = APIRouter(prefix="/v1", route_class=DirectRoute)

    # --- deposits ----------------------------------------------------------------------------

    @v1.post("/deposits", tags=["deposits"], status_code=201)
    async def deposit(request: Request) -> Response:
        """One deposit request, or ``{"deposits": [...]}`` (``max_batch`` at most): all or none.
        Needs a depositor's API key."""
        # The hottest route checks its key inline: FastAPI's dependency solving cost more than
        # the check itself.
        key = permitted(identify(request), ("depositor",))
        original: FileSink | None = None
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            body, original = await deposit_with_original(request)
        else:
            body = await body_json(request)
        items = body.get("deposits") if isinstance(body, dict) and "deposits" in body else [body]
        if not isinstance(items, list) or not items:
            raise InvalidInput('send a deposit, or {"deposits": [...]} with at least one')
        if len(items) > MAX_BATCH:
            raise TooLarge(f"a batch holds at most {MAX_BATCH} deposits, got {len(items)}")

        def parse() -> list[Deposit]:
            deposits = []
            for position, item in enumerate(items):
                try:
                    d = Deposit.from_object(item)
                except InvalidInput as exc:
                    exc.details.setdefault("position", position)
                    raise
                if d.statement.depositor != key.depositor:
                    raise Problem(
                        403, "wrong_depositor",
                        f"this key deposits as {key.depositor}, not {d.statement.depositor}",
                        "只能以本存证方身份存证", position=position,
                    )  # fmt: skip
                deposits.append(d)
            return deposits

        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[list[Receipt]] = loop.create_future()

        def submit() -> None:
            try:
                deposits = parse()
                admission = service.sequencer.admit
                if original is None and isinstance(admission, Admission):
                    now = service.ledger.clock()
                    checks = admission.prepare(deposits, now)
                    check_batch(admission, checks, loop)
                    queued = [(deposits, waiter)]
                    refusal = service.sequencer.submit_each_for(queued, loop, admitted_at=now)[0]
                    if refusal is not None:  # back pressure
                        raise refusal
                    return
                if original is not None:
                    if len(deposits) != 1:
                        raise InvalidInput("an original comes with exactly one deposit")
                    check_original(deposits[0], original)
                    # Keep the file only for a deposit that will be admitted.
                    if service.sequencer.admit is not None:
                        service.sequencer.admit(deposits, now_ms())
                    digest_key = deposits[0].statement.digest.index_key
                    service.store.put_original(digest_key, original.chunks)
                service.sequencer.submit_for(deposits, loop, waiter)
            except Exception as exc:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                    loop.call_soon_threadsafe(_refused, waiter, exc)

        if len(items) == 1 and original is None:
            # One deposit is admitted on the loop — a thread would cost more than its one
            # signature check, as every thread that gives the GIL up while the loop is busy
            # waits up to a switch interval (5 ms) to have it back — together with the others
            # that came in the same turn of the loop, which the writer then takes as one block.
            take_single(parse(), waiter)
        else:
            # A batch is parsed, admitted and queued off the event loop (thousands take a
            # while), its signatures checked in the signature process a chunk at a time, in
            # between single deposits'; a deposit with its original is checked, and its file
            # kept, off the loop too.
            try:
                service.intake.submit(submit)
            except RuntimeError as exc:  # shut down
                raise Unavailable("the service is shutting down; retry") from exc
        # The receipts, or the refusal, come back on ``waiter``: the sequencer wakes the loop
        # once per block, not once per request.
        receipts = await waiter
        duplicates = sum(r.duplicate for r in receipts)
        service.metrics.deposits(new=len(receipts) - duplicates, duplicate=duplicates)

        def receipts_body() -> bytes:
            b64 = base64.b64encode
            proofs = proofs_of(receipts)
            text = _SPELLED  # a node hash shared by receipts' proofs, spelled once
            if len(text) > SPELLED_KEPT:
                text.clear()
            objects = [
                {
                    "index": r.index,
                    "code": str(r.code),
                    "leaf_hash": b64(r.leaf_hash).decode(),
                    "tree_size": r.tree_size,
                    "checkpoint": r.checkpoint.decode(),
                    "inclusion_proof": [
                        text.get(h) or text.setdefault(h, b64(h).decode()) for h in proof
                    ],
                    "duplicate": r.duplicate,
                }
                for r, proof in zip(receipts, proofs, strict=True)
            ]
            # Integers within 2**53 and strings only: orjson with sorted keys is JCS.
            return orjson.dumps({"receipts": objects}, option=orjson.OPT_SORT_KEYS)

        if len(receipts) > 64:  # proofs for a big batch: off the event loop
            body = await run_in_threadpool(receipts_body)
        else:
            body = receipts_body()
        return EncodedJSON(body, 201)

    def proofs_of(receipts: list[Receipt]) -> list[list[bytes]]:
        """The receipts' inclusion proofs, made together for those of one tree size."""
        if len(receipts) == 1:
            return [service.ledger.inclusion_proof(receipts[0].index, receipts[0].tree_size)]
        by_size: dict[int, list[int]] = {}
        for n, r in enumerate(receipts):
            by_size.setdefault(r.tree_size, []).append(n)
        proofs: list[list[bytes]] = [[] for _ in receipts]
        for size, positions in by_size.items():
            made = service.ledger.inclusion_proofs([receipts[n].index for n in positions], size)
            for n, proof in zip(positions, made, strict=True):
                proofs[n] = proof
        return proofs

    async def deposit_with_original(request: Request) -> tuple[Any, FileSink]:
        """Multipart ``deposit`` (the JSON request) and ``file`` (the original), size-limited,
        the file hashed while it is received (with the deposit's algorithm when ``deposit``
        comes first, as it should; refused as soon as it outgrows the declared size)."""
        message = f"originals up to {MAX_ORIGINAL_BYTES} bytes are kept"
        refuse_declared(request, MAX_ORIGINAL_BYTES + MAX_BODY_BYTES, message)

        def sink_for(fields: dict[str, str]) -> FileSink:
            text = fields.get("deposit")
            if text is None:
                return FileSink(ALL_ALGORITHMS, keep=True)
            statement = Deposit.from_object(loads(text)).statement

            def refuse(size: int) -> Exception:
                return Problem(
                    422, "original_mismatch",
                    "the file sent is larger than the statement's size",
                    "上传文件与存证声明的摘要不一致",
                    expected=str(statement.digest), expected_size=statement.size,
                    found_size=f"more than {size - 1}",
                )  # fmt: skip

            return FileSink((statement.digest.alg,), keep=True, limit=statement.size,
                            refuse=refuse)  # fmt: skip

        form = await read_form(
            request, file_field="file", text_fields=frozenset({"deposit"}),
            field_limit=MAX_BODY_BYTES, file_limit=MAX_ORIGINAL_BYTES, message=message,
            sink_for=sink_for,
        )  # fmt: skip
        deposit_text = form.fields.get("deposit")
        if deposit_text is None or form.file is None:
            raise InvalidInput("send the fields 'deposit' (JSON) and 'file' (the original)")
        return loads(deposit_text), form.file

    def check_original(deposit: Deposit, sink: FileSink) -> None:
        statement = deposit.statement
        found = sink.digest(statement.digest.alg)
        if found != statement.digest.value or sink.size != statement.size:
            raise Problem(
                422, "original_mismatch",
                "the file sent does not match the statement's digest and size",
                "上传文件与存证声明的摘要不一致",
                expected=str(statement.digest), found=f"{statement.digest.alg}:{found.hex()}",
                expected_size=statement.size, found_size=sink.size,
            )  # fmt: skip

    @v1.get("/deposits/{code}/original", tags=["deposits"])
    async def original_file(
        code: str, key: Annotated[ApiKey, Depends(require("judge", "depositor"))]
    ) -> Response:
        """The original file, if the depositor sent it. Judges' accesses are logged."""
        parsed = parse_code(code)
        index = service.index_of(parsed)
        statement = parse_entry(service.ledger.entry(index)).statement
        if key.role == "depositor" and statement.depositor != key.depositor:
            raise NotFound("no such deposit of yours")
        chunks = service.store.original(statement.digest.index_key)
        if chunks is None:
            raise NotFound("the depository does not hold this original", code=str(parsed))
        if key.role == "judge":
            log_access(key, parsed, index, "original")
        return Response(b"".join(chunks), media_type=statement.media_type)

    def log_access(key: ApiKey, code: DepositCode, index: int, what: str) -> None:
        when = now_ms()
        line = jcs(
            {"at": when, "key_id": key.id, "label": key.label, "code": str(code), "what": what}
        )
        service.store.record_put("access", f"{when:015d}-{key.id}-{index}-{what}", line, None)

    @v1.get("/deposits/{code}", tags=["deposits"])
    async def lookup(code: str) -> Response:
        """Public: the verdict and times of a deposit, by its code (forgiving input)."""
        parsed = parse_code(code)
        return await answer(service.index_of(parsed), None, parsed)

    @v1.get("/digests/{digest}", tags=["deposits"])
    async def by_digest(digest: str) -> Response:
        """Public: every deposit of a digest (``alg:hex``), oldest first."""
        d = Digest.parse(digest)
        indexes = service.ledger.lookup_digest(d)
        if not indexes:
            raise NotFound(f"{d} has not been deposited", digest=str(d))
        return _json({"deposits": [await report_for(i, d, None) for i in indexes]})

    @v1.get("/indexes/code/{code}", tags=["log"])
    async def indexes_by_code(code: str) -> Response:
        """Public: the log indexes holding this deposit code (for auditors)."""
        return _json({"indexes": service.ledger.lookup_code(parse_code(code))})

    @v1.get("/indexes/digest/{digest}", tags=["log"])
    async def indexes_by_digest(digest: str) -> Response:
        """Public: the log indexes of every deposit of a digest, oldest first (for auditors)."""
        return _json({"indexes": service.ledger.lookup_digest(Digest.parse(digest))})

    @v1.post("/indexes/lookup", tags=["log"])
    async def indexes_lookup(body: IndexLookupIn) -> Response:
        """Public: many index lookups in one request, for auditors replaying the log over HTTP:
        the indexes of each deposit code, and the index of each statement key (hex of digest
        key ‖ statement hash, as the by-digest index holds it; ``null`` when absent)."""
        codes = [service.ledger.lookup_code(parse_code(c)) for c in body.codes]
        keys = [bytes.fromhex(k) for k in body.statements]
        return _json({"codes": codes, "statements": service.store.indexes_by_statement(keys)})

    @v1.get("/checkpoints", tags=["log"])
    async def checkpoints(
        start: Annotated[int, Query(ge=0, le=MAX_SIZE)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    ) -> Response:
        """Public: every checkpoint from tree size ``start`` on, oldest first (for auditors)."""
        heads = itertools.islice(service.store.checkpoints(start), limit)
        return _json({"checkpoints": [{"size": h.size, "note": h.note.decode()} for h in heads]})

    @v1.get("/depositors", tags=["log"])
    async def depositors() -> Response:
        """Public: registered depositors (institutions) and their keys with validity windows,
        so anyone can check every depositor signature in the log."""
        return _json({"depositors": [loads(d.to_bytes()) for d in service.registry.all()]})

    @v1.post("/verify", tags=["verify"], openapi_extra=_json_body(VerifyIn))
    async def verify(request: Request) -> Response:
        """Public: code + digest, or digest alone → VERIFIED / MISMATCH / NOT_FOUND / INVALID."""
        message = f"a verify request is at most {MAX_VERIFY_BODY} bytes"
        body = parsed(VerifyIn, await read_body(request, MAX_VERIFY_BODY, message))
        digest = Digest.parse(body.digest) if body.digest else None
        if body.code:
            code = parse_code(body.code)
            try:
                index = service.index_of(code)
            except NotFound:
                return not_found()
            return await answer(index, digest, code)
        if digest is None:
            raise InvalidInput("give a deposit code, a digest, or both")
        indexes = service.ledger.lookup_digest(digest)
        return await answer(indexes[0], digest, None) if indexes else not_found()

    @v1.post("/verify/file", tags=["verify"])
    async def verify_file(request: Request) -> Response:
        """Public: multipart ``file`` (and optional ``code``), hashed on the server with the
        deposit's own algorithm (SHA-256 when no code is given). At most 1 GiB; the file is
        not kept. Prefer hashing in the browser: the file then never leaves the court."""
        message = f"files up to {MAX_VERIFY_UPLOAD} bytes can be checked here"
        refuse_declared(request, MAX_VERIFY_UPLOAD + 65536, message)

        def sink_for(fields: dict[str, str]) -> FileSink:
            if "code" not in fields:  # a code may still follow: hash every way
                return FileSink(ALL_ALGORITHMS)
            code = parse_code(fields["code"]) if fields["code"] else None
            indexes = service.ledger.lookup_code(code) if code is not None else []
            if not indexes:
                return FileSink(("sha256",))
            return FileSink((parse_entry(service.ledger.entry(indexes[0])).statement.digest.alg,))

        form = await read_form(
            request, file_field="file", text_fields=frozenset({"code"}), field_limit=1024,
            file_limit=MAX_VERIFY_UPLOAD, message=message, sink_for=sink_for,
        )  # fmt: skip
        if form.file is None:
            raise InvalidInput("send the file in the multipart field 'file'")
        code_text = form.fields.get("code")
        code = parse_code(code_text) if code_text else None
        index = None
        alg = "sha256"
        if code is not None:
            indexes = service.ledger.lookup_code(code)
            if indexes:
                index = indexes[0]
                alg = parse_entry(service.ledger.entry(index)).statement.digest.alg
        digest = Digest(alg, form.file.digest(alg))
        if code is None:
            found = service.ledger.lookup_digest(digest)
            index = found[0] if found else None
        if index is None:
            return not_found()
        return _json(await report_for(index, digest, code))

    @v1.get("/deposits/{code}/bundle", tags=["deposits"])
    async def bundle(
        code: str, key: Annotated[ApiKey, Depends(require("depositor", "judge", "auditor"))]
    ) -> Response:
        """The offline bundle (no private meta). A depositor sees only its own."""
        index = service.index_of(parse_code(code))
        b = service.bundle(index)
        if key.role == "depositor" and parse_entry(b.leaf).statement.depositor != key.depositor:
            raise NotFound("no such deposit of yours")
        return EncodedJSON(b.to_json())

    @v1.get("/deposits/{code}/retrieve", tags=["deposits"])
    async def retrieve(
        code: str, key: Annotated[ApiKey, Depends(require("judge", "depositor"))]
    ) -> Response:
        """一键调证: the bundle with private meta and salt. Judges' accesses are logged."""
        parsed = parse_code(code)
        index = service.index_of(parsed)
        b = service.bundle(index, with_meta=True)
        if key.role == "depositor" and parse_entry(b.leaf).statement.depositor != key.depositor:
            raise NotFound("no such deposit of yours")
        if key.role == "judge":
            log_access(key, parsed, index, "retrieve")
        return EncodedJSON(b.to_json())

    def issued_now() -> dt.datetime:
        return dt.datetime.fromtimestamp(now_ms() / 1000, dt.UTC)

    @v1.get("/deposits/{code}/certificate.pdf", tags=["deposits"])
    async def certificate(
        code: str,
        key: Annotated[ApiKey, Depends(require("depositor", "judge", "auditor"))],
    ) -> Response:
        """The deposit certificate (存证证书, PDF): code, evidence kind, digest, trusted time and
        TSA, checkpoint and inclusion, depositor, and a QR code opening the judge's page with
        the code filled in. Made from the bundle, verified first; no private meta. A depositor
        gets only its own."""
        parsed = parse_code(code)
        index = service.index_of(parsed)
        depositor = parse_entry(service.ledger.entry(index)).statement.depositor
        if key.role == "depositor" and depositor != key.depositor:
            raise NotFound("no such deposit of yours")
        pdf = await run_in_threadpool(
            documents.deposit_certificate_pdf, service, index,
            base_url=public_url, issued_at=issued_now(),
        )  # fmt: skip
        return _download(pdf, "application/pdf", f"存证证书-{parsed}.pdf")

    # --- cases (DB4401/T 310—2024 Annex B) ---------------------------------------------------

    def case_report(contract_no: str, key: ApiKey, depositor: str | None, what: str) -> CheckedCase:
        """The case a caller may see: a depositor its own only; a judge any depositor's, named
        by ``depositor`` or, when only one depositor used this contract number, that one."""
        if key.role == "depositor":
            if depositor is not None and depositor != key.depositor:
                raise CaseNotFound("no such case of yours", contract_no=contract_no)
            depositor = key.depositor
        report = service.check_case(contract_no, depositor)
        depositors = sorted({i.depositor for i in report.items if i.depositor is not None})
        if len(depositors) > 1:
            raise Problem(
                409, "ambiguous_case",
                "more than one depositor filed deposits under this contract number; "
                "name one with ?depositor=",
                "多个存证方使用了该合同编号，请指定存证方", depositors=depositors,
            )  # fmt: skip
        if key.role == "judge":
            line = {"at": now_ms(), "key_id": key.id, "label": key.label, "what": what,
                    "contract_no": report.contract_no, "depositor": depositors[0]}  # fmt: skip
            service.store.record_put(
                "access",
                f"{line['at']:015d}-{key.id}-case-{secrets.token_hex(6)}-{what}",
                jcs(line),
                None,
            )
        return CheckedCase(report, depositors[0])

    CaseReader = Annotated[ApiKey, Depends(require("depositor", "judge"))]  # noqa: N806 - a type alias
    DepositorQuery = Annotated[  # noqa: N806 - a type alias
        str | None, Query(max_length=64, description="whose case (judges; default: the only one)")
    ]

    @v1.get("/cases/{contract_no:path}/check", tags=["cases"])
    async def case_check(
        contract_no: str, key: CaseReader, depositor: DepositorQuery = None
    ) -> Response:
        """The case's completeness against DB4401/T 310—2024 Annex B: each element present,
        missing, duplicated, or in a format the standard does not list. Judges' accesses are
        logged."""
        checked = await run_in_threadpool(case_report, contract_no, key, depositor, "case_check")
        return _json(checked.report.to_object() | {"depositor": checked.depositor})

    @v1.get("/cases/{contract_no:path}/certificate.pdf", tags=["cases"])
    async def case_certificate(
        contract_no: str, key: CaseReader, depositor: DepositorQuery = None
    ) -> Response:
        """The case certificate (案件存证证书, PDF): one row per deposit with its kind, code,
        digest, trusted time and a QR code, and the completeness against Annex B. Judges'
        accesses are logged."""

        def render() -> tuple[bytes, str]:
            checked = case_report(contract_no, key, depositor, "case_certificate")
            pdf = documents.case_certificate_pdf(
                service, checked.report, depositor=checked.depositor,
                base_url=public_url, issued_at=issued_now(),
            )  # fmt: skip
            return pdf, checked.report.contract_no

        pdf, contract = await run_in_threadpool(render)
        return _download(pdf, "application/pdf", f"案件存证证书-{contract}.pdf")

    @v1.get("/cases/{contract_no:path}/package.zip", tags=["cases"])
    async def case_package(
        contract_no: str, key: CaseReader, depositor: DepositorQuery = None
    ) -> Response:
        """The court package (证据包, zip): the evidence catalog (证据目录) as PDF and JSON, every
        deposit's bundle and certificate, the originals the depository holds, the case
        certificate and a manifest of every member's SHA-256; ``cunzheng verify --package``
        checks it offline. Judges' accesses are logged, per deposit too."""
        spool = tempfile.SpooledTemporaryFile(max_size=32 << 20)  # noqa: SIM115 - closed below

        def build() -> str:
            checked = case_report(contract_no, key, depositor, "case_package")
            documents.case_package_zip(
                service, checked.report, spool, depositor=checked.depositor,
                base_url=public_url, issued_at=issued_now(),
            )  # fmt: skip
            if key.role == "judge":
                for item in checked.report.items:
                    if item.index is not None and item.code is not None:
                        log_access(key, parse_code(item.code), item.index, "case_package")
            return checked.report.contract_no

        try:
            contract = await run_in_threadpool(build)
        except BaseException:
            spool.close()
            raise
        size = spool.tell()
        spool.seek(0)

        def chunks() -> Iterator[bytes]:
            try:
                while chunk := spool.read(1 << 20):
                    yield chunk
            finally:
                spool.close()

        headers = _disposition(f"证据包-{contract}.zip") | {"Content-Length": str(size)}
        return StreamingResponse(chunks(), media_type="application/zip", headers=headers)

    @v1.get("/cases/{contract_no:path}", tags=["cases"])
    async def case(contract_no: str, key: CaseReader, depositor: DepositorQuery = None) -> Response:
        """The deposits of a case (by the contract number in their private meta), oldest first,
        with codes, kinds and formats. Judges' accesses are logged."""
        checked = await run_in_threadpool(case_report, contract_no, key, depositor, "case")
        report = checked.report
        deposits = [i.to_object() | {"kind_zh": EVIDENCE_KINDS[i.kind]} for i in report.items]
        return _json({"contract_no": report.contract_no, "depositor": checked.depositor,
                      "count": len(deposits), "complete": report.complete,
                      "deposits": deposits})  # fmt: skip

    # --- the public log ----------------------------------------------------------------------

    @v1.get("/checkpoint", tags=["log"])
    async def checkpoint() -> Response:
        """The latest checkpoint as a C2SP signed note, with the witnesses' cosignatures."""
        head = service.ledger.head()
        note = service.cosigned(head.size, head.note)
        return Response(note, media_type="text/plain; charset=utf-8")

    @v1.get("/checkpoints/{size}", tags=["log"])
    async def checkpoint_at(size: TreeSize) -> Response:
        """Checkpoint ``size`` (one ends every block), with its cosignatures."""
        note = service.cosigned(size, service.ledger.checkpoint(size))
        return Response(note, media_type="text/plain; charset=utf-8")

    @v1.post("/checkpoints/{size}/cosignatures", tags=["log"], status_code=201)
    async def cosign(size: TreeSize, request: Request) -> Response:
        """A configured witness hands in its cosignature line (C2SP cosignature/v1)."""
        message = "a cosignature line is at most 512 bytes"
        line = await read_body(request, 512, message)
        name = service.add_cosignature(size, line)
        return _json({"witness": name, "tree_size": size}, status=201)

    @v1.get("/checkpoints/{size}/timestamp", tags=["log"])
    async def checkpoint_timestamp(size: TreeSize) -> Response:
        """The RFC 3161 token over the SHA-256 of checkpoint ``size``'s body."""
        token = service.store.timestamp(size)
        if token is None:
            raise NotFound(f"checkpoint {size} has no time-stamp (yet)")
        return Response(token, media_type="application/timestamp-token")

    @v1.get("/proofs/inclusion", tags=["log"])
    async def inclusion(
        index: Annotated[int, Query(ge=0, le=MAX_SIZE)],
        size: Annotated[int, Query(ge=1, le=MAX_SIZE)],
    ) -> Response:
        proof = service.ledger.inclusion_proof(index, size)
        return _json({"index": index, "tree_size": size,
                      "hashes": [base64.b64encode(h).decode() for h in proof]})  # fmt: skip

    @v1.get("/proofs/consistency", tags=["log"])
    async def consistency(
        old: Annotated[int, Query(ge=0, le=MAX_SIZE)],
        new: Annotated[int, Query(ge=0, le=MAX_SIZE)],
    ) -> Response:
        proof = service.ledger.consistency_proof(old, new)
        return _json({"old_size": old, "new_size": new,
                      "hashes": [base64.b64encode(h).decode() for h in proof]})  # fmt: skip

    # --- admin -------------------------------------------------------------------------------

    Admin = Annotated[ApiKey, Depends(require("admin"))]  # noqa: N806 - a type alias

    @v1.post("/admin/depositors", tags=["admin"], status_code=201)
    async def add_depositor(body: DepositorIn, _key: Admin) -> Response:
        d = service.registry.register(body.id, body.display_name)
        return _json({"id": d.id, "display_name": d.display_name}, status=201)

    @v1.post("/admin/depositors/{depositor}/keys", tags=["admin"], status_code=201)
    async def add_key(depositor: str, body: KeyIn, _key: Admin) -> Response:
        k = service.registry.add_key(
            depositor, body.public_key.encode(), key_id=body.key_id,
            not_before=body.not_before, not_after=body.not_after,
        )  # fmt: skip
        return _json(k.to_object(), status=201)

    @v1.post("/admin/depositors/{depositor}/keys/{key_id}/revoke", tags=["admin"])
    async def revoke_key(depositor: str, key_id: str, body: RevokeIn, _key: Admin) -> Response:
        return _json(service.registry.revoke_key(depositor, key_id, at=body.at).to_object())

    @v1.post("/admin/api-keys", tags=["admin"], status_code=201)
    async def issue_api_key(body: ApiKeyIn, _key: Admin) -> Response:
        if body.depositor is not None:
            service.registry.get(body.depositor)
        token = service.api_keys.issue(body.role, depositor=body.depositor, label=body.label,
                                       expires_at=body.expires_at)  # fmt: skip
        return _json({"token": token, "note": "shown once; store it safely"}, status=201)

    @v1.delete("/admin/api-keys/{key_id}", tags=["admin"], status_code=204)
    async def revoke_api_key(key_id: str, _key: Admin) -> Response:
        service.api_keys.revoke(key_id)
        return Response(status_code=204)

    @v1.post("/admin/backup", tags=["admin"], status_code=201)
    async def backup(_key: Admin) -> Response:
        """A consistent backup of the running depository, under ``DATA_DIR/backups/`` on the
        server (``cunzheng backup --server`` calls this; ``cunzheng restore`` reads it)."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        dest = service.config.data_dir / "backups" / f"{stamp}-{secrets.token_hex(3)}"
        manifest = await run_in_threadpool(service.backup, dest)
        return _json({"path": str(dest.resolve()), **manifest}, status=201)

    @v1.get("/admin/access-log", tags=["admin"])
    async def access_log(_key: Admin) -> Response:
        return _json({"accesses": [loads(v) for _, v in service.store.record_list("access")]})

    adopt(app, v1)

    # --- C2SP tlog-tiles: tiles and entry bundles --------------------------------------------

    @app.get("/tile/{path:path}", tags=["log"])
    async def tile(path: str) -> Response:
        level, index, width = parse_tile_path(f"tile/{path}")
        if level == ENTRY_BUNDLE_LEVEL:
            start = index * TILE_WIDTH
            if start + width > service.ledger.head_size():
                raise NotFound(f"entry bundle {index} of width {width} does not exist yet")
            leaves = service.store.entries(start, start + width)
            body = b"".join(struct.pack(">H", len(x)) + x for x in leaves)
            return Response(body, media_type="application/octet-stream")
        data = service.ledger.tile(level, index, width)
        return Response(data, media_type="application/octet-stream")

    from .web import web_router

    adopt(app, web_router(service))

    @app.get("/healthz", tags=["operations"])
    async def health() -> Response:
        """Public: tree size, time-stamping lag (entries and seconds, the TSA's last error) and
        the latest checkpoint's age; ``status`` is ``degraded`` while time-stamping lags."""
        return _json(await run_in_threadpool(service.health))

    @app.get("/metrics", tags=["operations"])
    async def metrics(_key: Annotated[ApiKey, Depends(require("admin", "auditor"))]) -> Response:
        """Prometheus text exposition (admin or auditor key: README, Operations)."""
        h = await run_in_threadpool(service.health)
        gauges = {
            "tree_size": ("Entries in the log.", h["tree_size"]),
            "tsa_lag_entries": ("Entries without a trusted time yet.",
                                h["entries_waiting_for_time_stamp"]),
            "tsa_lag_seconds": ("Age of the oldest checkpoint not yet time-stamped.",
                                h["tsa_lag_seconds"]),
            "tsa_up": ("1 if the last time-stamping attempt succeeded.",
                       0 if h["tsa_error"] else 1),
            "checkpoint_age_seconds": ("Age of the latest checkpoint.",
                                       h["checkpoint_age_seconds"] or 0),
        }  # fmt: skip
        return Response(
            service.metrics.render(gauges), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    # Matched in order: what most requests ask for first, the cheapest of them before the
    # others (a route passed over costs a verify answer more, in proportion, than a deposit).
    hot_first(app, [("POST", "/v1/verify"), ("POST", "/v1/deposits"), ("GET", "/v1/checkpoint")])
    app.add_middleware(AccessLog, metrics=service.metrics)

    return app
