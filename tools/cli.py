"""The ``cunzheng`` command."""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives import hashes

from ledger.entry import DIGEST_ALGORITHMS, EVIDENCE_KINDS


@click.group()
@click.version_option(package_name="cunzheng")
def main() -> None:
    """cunzheng (存证): evidence depository and verifier."""


@main.group()
def bench() -> None:
    """Benchmarks: figures to compare before and after a change, not pass/fail tests."""


_QUICK = {"appends": 5000, "proofs": 500, "sizes": "1000,20000", "single": 50, "rounds": 1}
"""What ``bench ledger --quick`` changes: the defaults of these options (any given explicitly
still wins)."""
_CRYPTO_QUICK = {"statements": 50, "batch": 50, "tokens": 20, "rounds": 1}
"""What ``bench crypto --quick`` changes, likewise."""
_HTTP_QUICK = {
    "seconds": 1,
    "warmup": 1,
    "batch": 50,
    "codes": 20,
    "raw_signatures": 200,
    "rounds": 1,
}
"""What ``bench http --quick`` changes, likewise."""
_AUDIT_QUICK = {"size": 3000}
"""What ``bench audit --quick`` changes, likewise."""
_HTTP_ALGS = ("ed25519", "ecdsa-p256-sha256", "rsa-pss-sha256", "rsa-pkcs1v15-sha256", "sm2-sm3")
"""``ledger.entry.SIGNATURE_ALGORITHMS`` (not imported here, to keep the command line light)."""


def _quick_defaults(
    defaults: Mapping[str, object],
) -> Callable[[click.Context, click.Parameter, bool], bool]:
    """An eager ``--quick`` callback: swap in ``defaults`` before the other options are read."""

    def swap(ctx: click.Context, _param: click.Parameter, quick: bool) -> bool:
        if quick:
            ctx.default_map = {**(ctx.default_map or {}), **defaults}
        return quick

    return swap


def _run_and_report(
    run: Callable[..., Any], config: Any, machine: Mapping[str, Any], json_path: Path
) -> None:
    """Run a benchmark, print its table and write its figures as JSON."""
    from rich.console import Console

    from .bench import render

    # The table is about 100 columns wide; Rich assumes 80 when output is not a terminal.
    console = Console(width=None if sys.stdout.isatty() else 120)
    status = Console(stderr=True, log_path=False)
    report = run(config, log=status.log)
    render(report, console)
    document = report.to_json(machine=dict(machine), parameters=config.to_json())
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    console.print(f"figures written to {json_path}")


def _bench_options(
    *, quick: Mapping[str, object], quick_help: str, json_default: str, dir_help: str
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The options every benchmark has: ``--quick``, ``--json`` and ``--dir``."""

    def add(command: Callable[..., None]) -> Callable[..., None]:
        options = [
            click.option("--quick", is_flag=True, is_eager=True, expose_value=False,
                         callback=_quick_defaults(quick), help=quick_help),
            click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
                         default=Path(json_default), show_default=True,
                         help="Where to write the figures as JSON."),
            click.option("--dir", "work_dir", type=click.Path(file_okay=False, path_type=Path),
                         default=None, help=dir_help),
        ]  # fmt: skip
        for option in reversed(options):
            command = option(command)
        return command

    return add


def _sizes(_ctx: click.Context, _param: click.Parameter, text: str) -> tuple[int, ...]:
    """Parse ``--sizes``: a comma list of tree sizes, returned sorted and distinct."""
    try:
        sizes = tuple(sorted({int(s.replace("_", "")) for s in text.split(",") if s.strip()}))
    except ValueError as exc:
        raise click.BadParameter(f"want a comma list of tree sizes, got {text!r}") from exc
    if not sizes or sizes[0] < 2:
        raise click.BadParameter(f"want tree sizes of at least 2, got {text!r}")
    return sizes


@bench.command("ledger")
@click.option(
    "--appends",
    type=click.IntRange(min=1),
    default=200_000,
    show_default=True,
    help="Realistic deposits appended through the Sequencer.",
)
@click.option(
    "--proofs",
    type=click.IntRange(min=1),
    default=20_000,
    show_default=True,
    help="Proofs per timed pass, per size and kind (one untimed pass warms up).",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Timed rounds of the appends beside the raw RocksDB ceiling, and of the proof passes, "
    "every size's side by side; the median is reported.",
)
@click.option(
    "--sizes",
    default="10000,1000000",
    show_default=True,
    callback=_sizes,
    help="Comma list of proof-ledger sizes; the smallest is the reference.",
)
@click.option("--huge", is_flag=True, help="Also measure proofs at 10^7 leaves (slow).")
@click.option(
    "--single",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Deposits appended one at a time, each awaited.",
)
@click.option(
    "--max-batch",
    type=click.IntRange(min=1),
    default=8192,
    show_default=True,
    help="Sequencer max_batch (deposits per block at most).",
)
@click.option(
    "--store",
    "store_url",
    default=None,
    help="postgresql://… : measure appends on that PostgreSQL server beside its raw COPY "
    "ceiling instead (temporary databases, dropped after; needs CREATEDB).",
)
@_bench_options(
    quick=_QUICK,
    quick_help="Small sizes, for tests: appends 5000, sizes 1000,20000, proofs 500, single 50, "
    "rounds 1.",
    json_default="bench-results/ledger.json",
    dir_help="Directory for the temporary stores (default: the system's).",
)
def bench_ledger(
    appends: int,
    proofs: int,
    rounds: int,
    sizes: tuple[int, ...],
    huge: bool,
    single: int,
    max_batch: int,
    store_url: str | None,
    json_path: Path,
    work_dir: Path | None,
) -> None:
    """Appends/s, their RocksDB and hashing ceilings, proofs/s by tree size, tree bytes per leaf,
    and pymerkle side by side; with --store postgresql://…, appends/s on PostgreSQL beside its
    raw ceiling."""
    # Imported here so that the rest of the command line does not load the benchmark.

    from .bench import HUGE_SIZE, BenchConfig, machine_info, run_ledger_bench

    if store_url is not None:
        if not store_url.startswith(("postgresql://", "postgres://")):
            raise click.BadParameter("only postgresql://… URLs", param_hint="--store")
        from .bench_pg import run_pg_ledger_bench

        if json_path == Path("bench-results/ledger.json"):
            json_path = Path("bench-results/ledger-postgresql.json")
        pg_config = BenchConfig(appends=appends, single=min(single, appends), max_batch=max_batch)
        pg_machine = machine_info(("psycopg", "psycopg-pool", "psycopg-binary"))

        def run_pg(config: BenchConfig, *, log: Callable[[str], None]) -> Any:
            return run_pg_ledger_bench(config, url=store_url, log=log)

        _run_and_report(run_pg, pg_config, pg_machine, json_path)
        return

    if huge:
        sizes = tuple(sorted({*sizes, HUGE_SIZE}))
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    config = BenchConfig(
        appends=appends,
        proofs=proofs,
        rounds=rounds,
        sizes=sizes,
        single=min(single, appends),
        max_batch=max_batch,
        work_dir=work_dir,
    )

    machine = machine_info()  # before the run: the revision measured is the one imported
    _run_and_report(run_ledger_bench, config, machine, json_path)


@bench.command("audit")
@click.option(
    "--size",
    type=click.IntRange(min=1),
    default=1_000_000,
    show_default=True,
    help="Signed deposits in the audited ledger.",
)
@click.option("--huge", is_flag=True, help="Audit 10^7 leaves instead (slow: the build alone).")
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Audit worker processes (0: one per core).",
)
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Build the ledger here and keep it; a later run with the same --keep audits it again.",
)
@_bench_options(
    quick=_AUDIT_QUICK,
    quick_help="Small size, for tests: 3000 deposits.",
    json_default="bench-results/audit.json",
    dir_help="Directory for the temporary ledger (default: the system's).",
)
def bench_audit(
    size: int, huge: bool, workers: int, keep: Path | None, json_path: Path, work_dir: Path | None
) -> None:
    """Full audit replay rate beside the hashlib (2 hashes per leaf) and Ed25519 ceilings."""
    from .bench import machine_info
    from .bench_audit import HUGE_SIZE, AuditConfig, run_audit_bench

    config = AuditConfig(size=HUGE_SIZE if huge else size, workers=workers, keep=keep,
                         work_dir=work_dir)  # fmt: skip
    machine = machine_info(("cryptography", "rocksdict"))
    _run_and_report(run_audit_bench, config, machine, json_path)


@bench.command("crypto")
@click.option(
    "--statements",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Signed deposits per depositor algorithm; every timed pass goes over all of them.",
)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Deposits per Registry.admit call in the batch figure (at most --statements).",
)
@click.option(
    "--tokens",
    type=click.IntRange(min=1),
    default=300,
    show_default=True,
    help="Time-stamp tokens per timed pass, per TSA key.",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Timed rounds after one warm-up pass; the median round is reported.",
)
@_bench_options(
    quick=_CRYPTO_QUICK,
    quick_help="Small sizes, for tests: statements 50, batch 50, tokens 20, rounds 1.",
    json_default="bench-results/crypto.json",
    dir_help="Directory for the TSA's temporary serial files (default: the system's).",
)
def bench_crypto(
    statements: int,
    batch: int,
    tokens: int,
    rounds: int,
    json_path: Path,
    work_dir: Path | None,
) -> None:
    """Signature verifications/s and registry admissions/s per depositor algorithm, and RFC 3161
    tokens stamped and verified per second, each beside the raw library call."""

    from .bench import CRYPTO_PACKAGES, CryptoConfig, machine_info, run_crypto_bench

    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    config = CryptoConfig(
        statements=statements,
        batch=min(batch, statements),
        tokens=tokens,
        rounds=rounds,
        work_dir=work_dir,
    )
    machine = machine_info(CRYPTO_PACKAGES)
    _run_and_report(run_crypto_bench, config, machine, json_path)


@bench.command("http")
@click.option(
    "--seconds",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Timed seconds of each phase.",
)
@click.option(
    "--warmup",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Untimed seconds of load before each phase.",
)
@click.option(
    "--alg",
    type=click.Choice(_HTTP_ALGS),
    default="ed25519",
    show_default=True,
    help="The lender's signature algorithm (RSA keys sign slowly: expect long set-up).",
)
@click.option(
    "--connections",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="wrk connections of the trivial, single-deposit and verify phases.",
)
@click.option(
    "--batch-connections",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="wrk connections of the batch-deposit phase.",
)
@click.option(
    "--batch",
    type=click.IntRange(1, 5000),
    default=1000,
    show_default=True,
    help="Deposits per batch request.",
)
@click.option(
    "--codes",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Deposits made before the verify phase, whose codes it cycles through.",
)
@click.option(
    "--raw-signatures",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="Signatures per pass of the raw verify ceiling.",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Timed passes of the raw verify ceiling; the median is reported.",
)
@click.option(
    "--wrk-threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="wrk threads (at most the smallest connection count).",
)
@_bench_options(
    quick=_HTTP_QUICK,
    quick_help="Short, for tests: 1 s phases, batch 50, codes 20, raw signatures 200, rounds 1.",
    json_default="bench-results/http.json",
    dir_help="Where the server's temporary data and the wrk scripts go (default: the system's).",
)
def bench_http(
    seconds: int,
    warmup: int,
    alg: str,
    connections: int,
    batch_connections: int,
    batch: int,
    codes: int,
    raw_signatures: int,
    rounds: int,
    wrk_threads: int,
    json_path: Path,
    work_dir: Path | None,
) -> None:
    """The served API under wrk: single deposits/s, batched deposits/s and verify-by-code
    requests/s with their latencies, beside a trivial endpoint on the same server and the raw
    signature-verify ceiling. Needs wrk (apt-get install -y wrk)."""

    from .bench import (
        HTTP_PACKAGES,
        HttpConfig,
        WrkMissing,
        find_wrk,
        machine_info,
        run_http_bench,
        wrk_version,
    )

    try:
        wrk = find_wrk()
    except WrkMissing as exc:
        raise click.ClickException(str(exc)) from exc
    if wrk_threads > min(connections, batch_connections):
        raise click.BadParameter(
            f"at most {min(connections, batch_connections)} (one connection per thread at least)",
            param_hint="--wrk-threads",
        )
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    config = HttpConfig(
        seconds=seconds,
        warmup=warmup,
        connections=connections,
        batch_connections=batch_connections,
        batch=batch,
        codes=codes,
        alg=alg,
        raw_signatures=raw_signatures,
        rounds=rounds,
        wrk_threads=wrk_threads,
        work_dir=work_dir,
    )
    machine = machine_info(HTTP_PACKAGES) | {"wrk": wrk_version(wrk)}
    _run_and_report(run_http_bench, config, machine, json_path)


@bench.command("load")
@click.option("--server", required=True, help="The cunzheng server to load (a test instance).")
@click.option(
    "--admin-token-file",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Its admin token (DATA_DIR/admin-token): the run registers its own depositor.",
)
@click.option("--clients", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--seconds", type=click.FloatRange(min=0.1), default=60.0, show_default=True)
@click.option(
    "--verify-share",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Share of requests that verify an earlier deposit; the rest deposit.",
)
@click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Also write the figures as JSON here.",
)  # fmt: skip
def bench_load(
    server: str,
    admin_token_file: Path,
    clients: int,
    seconds: float,
    verify_share: float,
    json_path: Path | None,
) -> None:
    """Mixed deposits and verifications from many clients at once; errors and p50/p95/p99.
    Exit 1 if any request failed."""
    import asyncio

    from .load import LoadConfig, run_load

    config = LoadConfig(clients=clients, seconds=seconds, verify_share=verify_share)
    token = admin_token_file.read_text().strip()
    result = asyncio.run(run_load(server.rstrip("/"), token, config)).to_object()
    for kind in ("deposit", "verify", "all"):
        f = result[kind]
        click.echo(
            f"{kind:8} {f['requests']:7d} requests  {f['per_second']:8.1f}/s  "
            f"p50 {f['p50_ms']:7.2f} ms  p95 {f['p95_ms']:7.2f} ms  p99 {f['p99_ms']:7.2f} ms"
        )
    click.echo(f"{clients} clients, {result['seconds']} s, {result['errors']} errors")
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    if result["errors"]:
        for sample in result["error_samples"]:
            click.echo(f"  {sample}", err=True)
        sys.exit(1)


@main.group()
def tsa() -> None:
    """The built-in RFC 3161 time-stamping authority."""


@tsa.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default="cunzheng TSA", show_default=True, help="Certificate subject CN.")
@click.option(
    "--key-type", type=click.Choice(["ec", "rsa"]), default="ec", show_default=True,
    help="EC P-256 or RSA-3072 signing key.",
)  # fmt: skip
@click.option("--valid-days", type=click.IntRange(min=1), default=1825, show_default=True)
def tsa_init(directory: Path, name: str, key_type: str, valid_days: int) -> None:
    """Create a root CA and a TSA certificate (critical timeStamping EKU) in DIRECTORY."""
    from ledger.authority import issue_tsa_certificates
    from ledger.errors import CunzhengError

    try:
        credentials = issue_tsa_certificates(
            name=name,
            key_type="rsa" if key_type == "rsa" else "ec",
            valid_days=valid_days,
        )
        credentials.write(directory)
    except CunzhengError as exc:
        raise click.ClickException(exc.message) from exc
    fingerprint = credentials.root.fingerprint(hashes.SHA256()).hex()
    click.echo(f"TSA credentials written to {directory} (the key file is readable by you only).")
    click.echo(f"Verifiers trust {directory / 'tsa-root.pem'}: SHA-256 fingerprint {fingerprint}")


@tsa.command("serve")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=3161, show_default=True)
@click.option("--policy", default=None, help="TSA policy OID (default: cunzheng's).")
def tsa_serve(directory: Path, host: str, port: int, policy: str | None) -> None:
    """Answer RFC 3161 requests over HTTP with the credentials in DIRECTORY."""
    from ledger.authority import DEFAULT_POLICY
    from ledger.errors import CunzhengError

    from .tsa_server import TsaServer, open_authority

    try:
        authority, credentials, serials = open_authority(directory, policy=policy or DEFAULT_POLICY)
    except CunzhengError as exc:
        raise click.ClickException(exc.message) from exc
    server = TsaServer(authority, credentials, host=host, port=port)
    click.echo(f"RFC 3161 TSA listening on {server.url} (Ctrl-C to stop)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        serials.close()


@main.group()
def keys() -> None:
    """Depositor signing keys."""


@keys.command("generate")
@click.option(
    "--alg",
    type=click.Choice(["ed25519", "ecdsa-p256-sha256", "rsa-pss-sha256", "sm2-sm3"]),
    default="ed25519",
    show_default=True,
    help="Signature algorithm the key is for.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Writes OUT.key (private, mode 0600) and OUT.pub (register this one).",
)
def keys_generate(alg: str, out: Path) -> None:
    """Make a key pair for signing deposit statements."""
    from ledger.errors import CunzhengError
    from verifier.signature import load_public_key

    from .client import generate_key

    private_path, public_path = out.with_suffix(".key"), out.with_suffix(".pub")
    for path in (private_path, public_path):
        if path.exists():
            raise click.ClickException(f"{path} exists; choose another --out")
    try:
        private, public = generate_key(alg)
    except CunzhengError as exc:
        raise click.ClickException(exc.message) from exc
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    public_path.write_bytes(public)
    click.echo(f"private key: {private_path} (keep it secret; readable by you only)")
    click.echo(f"public key:  {public_path} (register it with the depository)")
    click.echo(f"key id:      {load_public_key(public).key_id}")


def _meta_pairs(
    _ctx: click.Context, _param: click.Parameter, pairs: tuple[str, ...]
) -> dict[str, str]:
    meta = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"want KEY=VALUE, got {pair!r}")
        meta[key] = value
    return meta


@main.command("sign")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--key", "key_path", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path)
)
@click.option("--key-id", required=True, help="The key id the depository registered.")
@click.option("--depositor", required=True, help="Your depositor id.")
@click.option(
    "--kind",
    required=True,
    type=click.Choice(sorted(EVIDENCE_KINDS)),
    help="Evidence kind (DB4401/T 310 Annex B).",
)
@click.option(
    "--meta",
    "meta",
    multiple=True,
    callback=_meta_pairs,
    help="Private metadata KEY=VALUE (repeatable): file name, contract number…",
)
@click.option("--alg", default=None, help="Signature algorithm (default: the key's).")
@click.option(
    "--digest-alg",
    type=click.Choice(sorted(DIGEST_ALGORITHMS)),
    default="sha256",
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Default: FILE.deposit.json",
)
def sign(
    file: Path,
    key_path: Path,
    key_id: str,
    depositor: str,
    kind: str,
    meta: dict[str, str],
    alg: str | None,
    digest_alg: str,
    out: Path | None,
) -> None:
    """Hash FILE locally and write a signed deposit request (the file itself never leaves)."""
    from ledger.entry import Deposit
    from ledger.errors import CunzhengError

    from .client import build_statement, load_private_key, sign_statement

    out = out or file.with_name(file.name + ".deposit.json")
    try:
        key = load_private_key(key_path.read_bytes())
        statement, full_meta, salt = build_statement(
            file,
            depositor=depositor,
            kind=kind,
            meta={"file_name": file.name, **meta},
            digest_alg=digest_alg,
        )
        deposit = Deposit.create(
            statement,
            sign_statement(statement, key, alg=alg, key_id=key_id),
            meta=full_meta,
            salt=salt,
        )
    except CunzhengError as exc:
        raise click.ClickException(exc.message) from exc
    out.write_text(json.dumps(deposit.to_object(), ensure_ascii=False, indent=2) + "\n")
    click.echo(f"{statement.digest}  {file}")
    click.echo(f"signed deposit request written to {out}")


EXIT_INCOMPLETE = 4
"""``cunzheng case check`` exit status when a case lacks an element or has a wrong format."""


def _kind_pairs(_ctx: click.Context, _param: click.Parameter, pairs: tuple[str, ...]) -> Any:
    from ledger.errors import CunzhengError

    from .batch import parse_kind_map

    try:
        return parse_kind_map(pairs)
    except CunzhengError as exc:
        raise click.BadParameter(exc.message) from exc


def _plan(
    directory: Path | None, contract_no: str | None, manifest: Path | None, kind_map: Any
) -> tuple[Path, list[Any]]:
    """(root, planned files) from DIR --case or --manifest; click errors for bad usage."""
    from ledger.errors import CunzhengError

    from .batch import plan_directory, plan_manifest

    if (directory is None) == (manifest is None):
        raise click.UsageError("give a directory with --case, or --manifest (not both)")
    try:
        if manifest is not None:
            if contract_no is not None or kind_map:
                raise click.UsageError("--case and --kind come from the manifest's rows")
            return manifest.parent.resolve(), plan_manifest(manifest)
        assert directory is not None
        if contract_no is None:
            raise click.UsageError("name the case: --case CONTRACT_NO")
        return directory, plan_directory(directory, contract_no, kind_map)
    except CunzhengError as exc:
        details = exc.details.get("files")
        more = "\n  " + "\n  ".join(details) if details else ""
        raise click.ClickException(exc.message + more) from exc


def _print_reports(reports: list[dict[str, Any]], as_json: bool) -> None:
    from .batch import report_lines

    if as_json:
        click.echo(json.dumps({"cases": reports}, ensure_ascii=False, indent=1))
        return
    for report in reports:
        click.echo("\n".join(report_lines(report)))


@main.command("deposit")
@click.argument(
    "directory", required=False, type=click.Path(file_okay=False, exists=True, path_type=Path)
)
@click.option("--case", "contract_no", default=None, help="The case's contract number (合同编号).")
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="CSV or JSON listing file, kind, case[, borrower_commitment] (many cases at once).",
)
@click.option(
    "--kind",
    "kind_map",
    multiple=True,
    callback=_kind_pairs,
    help="GLOB=KIND (repeatable): files matching GLOB are KIND (id or 要素名). Otherwise a "
    "folder or file name starting with the kind decides.",
)
@click.option("--server", required=True, envvar="CUNZHENG_SERVER", help="The depository URL.")
@click.option("--api-key", required=True, envvar="CUNZHENG_API_KEY", help="Your depositor key.")
@click.option(
    "--key", "key_path", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path)
)
@click.option("--key-id", required=True, help="The key id the depository registered.")
@click.option("--depositor", required=True, help="Your depositor id.")
@click.option("--alg", default=None, help="Signature algorithm (default: the key's).")
@click.option(
    "--digest-alg", type=click.Choice(sorted(DIGEST_ALGORITHMS)), default="sha256",
    show_default=True,
)  # fmt: skip
@click.option("--batch-size", type=click.IntRange(1, 5000), default=500, show_default=True)
@click.option("--retries", type=click.IntRange(0, 100), default=8, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def deposit_command(
    directory: Path | None,
    contract_no: str | None,
    manifest: Path | None,
    kind_map: Any,
    server: str,
    api_key: str,
    key_path: Path,
    key_id: str,
    depositor: str,
    alg: str | None,
    digest_alg: str,
    batch_size: int,
    retries: int,
    as_json: bool,
) -> None:
    """Deposit every evidence file of DIR as case --case (or those a --manifest lists): hashed
    and signed here, sent in batches, receipts kept in .cunzheng/receipts/ beside the files.
    Run it again after an interruption: receipted files are skipped and nothing is deposited
    twice. Ends with each case's completeness against DB4401/T 310—2024 Annex B."""
    import urllib.parse

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from ledger.errors import CunzhengError

    from .batch import DepositClient, Planned, prepare, run_batches
    from .client import load_private_key

    root, planned = _plan(directory, contract_no, manifest, kind_map)
    try:
        key = load_private_key(key_path.read_bytes())
    except CunzhengError as exc:
        raise click.ClickException(exc.message) from exc

    def sign_one(root: Path, item: Planned, secret: bytes) -> Any:
        return prepare(root, item, key=key, key_id=key_id, depositor=depositor, secret=secret,
                       alg=alg, digest_alg=digest_alg)  # fmt: skip

    total_bytes = sum(p.path.stat().st_size for p in planned)
    client = DepositClient(server, api_key, retries=retries)
    progress = Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=Console(stderr=True),
    )  # fmt: skip
    try:
        with progress:
            hashed = progress.add_task("哈希 hashing (bytes)", total=total_bytes)
            sent = progress.add_task("存证 depositing (files)", total=len(planned))
            result = run_batches(
                root, planned, client, sign=sign_one, batch_size=batch_size,
                on_hashed=lambda n: progress.advance(hashed, n),
                on_sent=lambda n: progress.advance(sent, n),
            )  # fmt: skip
        reports = []
        for case in sorted({p.contract_no for p in planned}):
            status, body = client.get_json(f"/v1/cases/{urllib.parse.quote(case, safe='')}/check")
            if status == 200:
                reports.append(body)
            else:
                click.echo(f"case {case}: no completeness report (HTTP {status})", err=True)
    except CunzhengError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        client.close()
    summary = {
        "files": len(planned),
        "deposited": len(result.deposited),
        "already_deposited": len(result.duplicate),
        "skipped_receipted": len(result.skipped),
        "failed": result.failed,
        "changed_since_receipt": result.changed,
        "receipts": str(root / ".cunzheng" / "receipts"),
    }
    if as_json:
        click.echo(json.dumps(summary | {"cases": reports}, ensure_ascii=False, indent=1))
    else:
        click.echo(
            f"存证完成 done: {summary['deposited']} deposited, {summary['already_deposited']} "
            f"already in the ledger (retry), {summary['skipped_receipted']} skipped (receipted "
            f"earlier), {len(result.failed)} failed, of {len(planned)} files"
        )
        click.echo(f"receipts: {summary['receipts']}")
        for rel, why in sorted(result.failed.items()):
            click.echo(f"  失败 failed: {rel}: {why}")
        for rel in result.changed:
            click.echo(f"  已变更 changed since its receipt, not deposited again: {rel}")
        _print_reports(reports, False)
    if result.failed or result.changed:
        sys.exit(1)


@main.group("case")
def case_group() -> None:
    """Cases: the deposits of one loan (by contract number), checked against DB4401/T 310—2024
    Annex B."""


@case_group.command("check")
@click.argument("contract_no", required=False)
@click.option("--server", default=None, envvar="CUNZHENG_SERVER", help="Check the deposited case.")
@click.option("--api-key", default=None, envvar="CUNZHENG_API_KEY", help="Depositor or judge key.")
@click.option("--depositor", default=None, help="Whose case (judges, when two lenders share it).")
@click.option(
    "--dir", "directory", type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Check files on disk before depositing, laid out as for cunzheng deposit.",
)  # fmt: skip
@click.option(
    "--manifest", type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Check the cases a deposit manifest lists, on disk.",
)  # fmt: skip
@click.option("--kind", "kind_map", multiple=True, callback=_kind_pairs, help="GLOB=KIND.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def case_check(
    contract_no: str | None,
    server: str | None,
    api_key: str | None,
    depositor: str | None,
    directory: Path | None,
    manifest: Path | None,
    kind_map: Any,
    as_json: bool,
) -> None:
    """Which Annex B elements a case has, lacks, has twice or in a format the standard does not
    list: of a deposited case (--server) or of files on disk (--dir / --manifest). Exit 0 when
    complete, 4 when not."""
    import urllib.parse

    from ledger.errors import CunzhengError

    from .batch import DepositClient, local_reports

    reports: list[dict[str, Any]]
    if directory is not None or manifest is not None:
        if server is not None:
            raise click.UsageError("check either on disk (--dir/--manifest) or --server")
        root, planned = _plan(directory, contract_no, manifest, kind_map)
        reports = [r.to_object() for r in local_reports(root, planned)]
    else:
        if server is None or contract_no is None:
            raise click.UsageError("give CONTRACT_NO with --server, or --dir / --manifest")
        if not api_key:
            raise click.UsageError("a deposited case is read with --api-key (depositor or judge)")
        client = DepositClient(server, api_key, retries=2)
        try:
            params = {"depositor": depositor} if depositor else {}
            path = f"/v1/cases/{urllib.parse.quote(contract_no, safe='')}/check"
            status, body = client.get_json(path, **params)
        except CunzhengError as exc:
            raise click.ClickException(exc.message) from exc
        finally:
            client.close()
        if status != 200:
            zh = body.get("title_zh", "") if isinstance(body, dict) else ""
            detail = body.get("detail", body) if isinstance(body, dict) else body
            raise click.ClickException(f"HTTP {status} {zh}: {detail}")
        reports = [body]
    _print_reports(reports, as_json)
    if not all(r["complete"] for r in reports):
        sys.exit(EXIT_INCOMPLETE)


@main.command("serve")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="TOML settings file (env CUNZHENG_* and these options override it).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keys, built-in TSA and the store (default ./cunzheng-data).",
)
@click.option("--host", default=None, help="Bind address (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default 8000).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Logs on stderr as text (default) or JSON lines; one access line per request.",
)
@click.option(
    "--store",
    "store_url",
    default=None,
    help="Store URL (default: RocksDB in the data directory). postgresql://… lets several "
    "nodes share one ledger: one is elected sequencer, the others queue deposits for it.",
)
def serve(
    config_file: Path | None,
    data_dir: Path | None,
    host: str | None,
    port: int | None,
    log_format: str | None,
    store_url: str | None,
) -> None:
    """Run the depository: embedded store, built-in TSA, keys made on first run."""
    import socket

    import uvicorn
    from pydantic import ValidationError

    from api.app import create_app
    from api.operations import configure_logging, tune_gc
    from api.service import Service
    from api.settings import load_settings
    from ledger.errors import CunzhengError

    try:
        settings = load_settings(
            config_file,
            data_dir=data_dir,
            host=host,
            port=port,
            log_format=log_format,
            store=store_url,
        )
        configure_logging(settings.log_format, settings.log_level)
        service = Service.open(settings.service_config())
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from exc
    except CunzhengError as exc:
        raise click.ClickException(exc.message) from exc
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        service.close()
        raise click.ClickException(
            f"cannot listen on {settings.host}:{settings.port}: {exc}"
        ) from exc
    sock.listen(2048)  # connections wait in the backlog until uvicorn accepts them
    bound_port = sock.getsockname()[1]
    url = f"http://{settings.host}:{bound_port}"
    service.start()
    public_url = settings.public_base(bound_port)

    def banner() -> None:
        click.echo(f"cunzheng is serving {settings.data_dir.resolve()}")
        click.echo(f"  judge's page:  {url}/")
        click.echo(f"  API docs:      {url}/docs")
        click.echo(f"  checkpoint:    {url}/v1/checkpoint")
        click.echo(
            f"  admin token:   {settings.data_dir.resolve() / 'admin-token'} (readable by you only)"
        )
        if settings.public_url is not None:
            click.echo(f"  public URL:    {public_url} (links and QR codes in certificates)")

    class Server(uvicorn.Server):
        """Prints the banner only once uvicorn accepts on the socket: before that a start-up
        failure would close the socket on connections waiting in its backlog (reset by peer)
        after the banner had told a supervisor or a test that the server was up."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                banner()

    app = create_app(service, limits=settings.limits(), public_url=public_url)
    # Our logging setup stays (log_config=None); AccessLog writes the access lines.
    config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False)
    server = Server(config)
    tune_gc()
    try:
        server.run(sockets=[sock])
    finally:
        service.close()


EXIT_CODES = {"VERIFIED": 0, "MISMATCH": 3, "NOT_FOUND": 4, "INVALID": 5}
"""``cunzheng verify`` exit status per verdict (1 and 2 stay click's: failure, usage)."""
_MARKS = {"passed": "✓", "failed": "✗", "not_applicable": "–", "pending": "…"}


@main.command("verify")
@click.argument(
    "file", required=False, type=click.Path(dir_okay=False, exists=True, path_type=Path)
)
@click.option(
    "--bundle",
    "bundle_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="An offline bundle (JSON) to check; no server needed.",
)
@click.option(
    "--server",
    default=None,
    help="Fetch the bundle of --code from this cunzheng URL (then check it here).",
)
@click.option(
    "--api-key",
    envvar="CUNZHENG_API_KEY",
    default=None,
    help="For --server: a judge, auditor or depositor key (env CUNZHENG_API_KEY).",
)
@click.option(
    "--code", default=None, help="The deposit code you were given (checked against the entry)."
)
@click.option("--digest", default=None, help="alg:hex of the evidence, instead of FILE.")
@click.option("--log-key", default=None, help="The log's verifier key (C2SP vkey) you trust.")
@click.option(
    "--tsa-root",
    "tsa_roots",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="PEM root certificate of a TSA you trust (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--audit-report",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Check a signed audit report instead of a deposit.",
)
@click.option(
    "--auditor-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="With --audit-report: the auditor's Ed25519 public key (PEM) that must have signed it.",
)
@click.option(
    "--trusted-checkpoint",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="With --server: prove the log now extends this checkpoint (say, from an old receipt).",
)
@click.option(
    "--package",
    "package_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Check a whole court package (zip) offline: bundles, files, catalog, manifest.",
)
def verify(
    file: Path | None,
    bundle_path: Path | None,
    server: str | None,
    api_key: str | None,
    code: str | None,
    digest: str | None,
    log_key: str | None,
    tsa_roots: tuple[Path, ...],
    as_json: bool,
    audit_report: Path | None,
    auditor_key: Path | None,
    trusted_checkpoint: Path | None,
    package_path: Path | None,
) -> None:
    """Check one deposit, trusting only the keys given: VERIFIED 核验通过 (exit 0), MISMATCH
    比对结果不一致 (3), NOT_FOUND 尚未存证 (4), INVALID (5). With --package, a whole court
    package: exit 0 when every item passes, 5 otherwise."""
    from cryptography import x509

    from ledger.checkpoint import NoteVerifier
    from ledger.code import parse_code
    from ledger.entry import Digest, digest_file, parse_entry
    from ledger.errors import CunzhengError
    from verifier.bundle import VERDICTS_ZH, Bundle, verify_bundle

    if audit_report is not None:
        _verify_audit_report(audit_report, auditor_key, as_json)
        return
    if log_key is None:
        raise click.UsageError("--log-key is needed to check a deposit")
    if package_path is not None:
        if bundle_path or server or file or digest or code:
            raise click.UsageError("--package checks the package alone: no FILE, --bundle, "
                                   "--server, --digest or --code")  # fmt: skip
        _verify_package(package_path, log_key, tsa_roots, as_json)
        return
    if trusted_checkpoint is not None:
        if server is None:
            raise click.UsageError("--trusted-checkpoint needs --server to fetch the proof")
        _verify_extends(server, trusted_checkpoint, log_key, as_json)
        return
    try:
        if (bundle_path is None) == (server is None):
            raise click.UsageError("give either --bundle FILE or --server URL (with --code)")
        if file is not None and digest is not None:
            raise click.UsageError("give FILE or --digest, not both")
        parsed_code = parse_code(code) if code else None
        verifier = NoteVerifier.parse(log_key)
        roots = [x509.load_pem_x509_certificate(p.read_bytes()) for p in tsa_roots]
        if bundle_path is not None:
            raw = json.loads(bundle_path.read_text(encoding="utf-8"))
        else:
            if parsed_code is None:
                raise click.UsageError("--server needs --code")
            raw = _fetch_bundle(str(server), str(parsed_code), api_key)
            if raw is None:
                _report_not_found(as_json, str(parsed_code), VERDICTS_ZH["NOT_FOUND"])
                sys.exit(EXIT_CODES["NOT_FOUND"])
        bundle = Bundle.from_object(raw)
        presented = Digest.parse(digest) if digest else None
        if file is not None:
            alg = parse_entry(bundle.leaf).statement.digest.alg
            presented = digest_file(str(file), alg)
        report = verify_bundle(
            bundle, log_keys=[verifier], tsa_roots=roots, digest=presented, code=parsed_code
        )
    except CunzhengError as exc:
        raise click.ClickException(f"{exc.message} ({exc.title_zh})") from exc
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    obj = report.to_object()
    if as_json:
        click.echo(json.dumps(obj, ensure_ascii=False, indent=2))
    else:
        click.echo(f"{obj['verdict_zh']}  {obj['verdict']}")
        click.echo(f"  code 存证编码:       {obj['code']}")
        click.echo(f"  depositor 存证方:    {obj['depositor']}")
        click.echo(f"  kind 证据类型:       {obj['kind_zh']} ({obj['kind']})")
        trusted = obj["trusted_time"] or "pending 待签发"
        click.echo(f"  trusted time 可信时间: {trusted}  {obj['tsa'] or ''}")
        for step in obj["steps"]:
            mark = _MARKS[step["status"]]
            click.echo(f"  {mark} {step['step']:<10} {step['message_zh']} / {step['message']}")
    sys.exit(EXIT_CODES[report.verdict])


def _ed25519_private_key(path: Path) -> Any:
    """An auditor's or witness's Ed25519 private key from an unencrypted PEM file."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise click.ClickException(f"cannot read a private key from {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise click.ClickException(f"{path} is not an Ed25519 private key")
    return key


def _write_signed_report(
    report: Any, sign_key: Path, auditor: str, log_key: str, out: Path
) -> None:
    from ledger.entry import format_time
    from ledger.log import now_ms
    from verifier.audit import sign_report

    key = _ed25519_private_key(sign_key)
    signed = sign_report(
        report, auditor=auditor, key=key, log_vkey=log_key, audited_at=format_time(now_ms())
    )
    out.write_text(json.dumps(signed, ensure_ascii=False, indent=2) + "\n")
    click.echo(f"signed audit report written to {out}", err=True)


def _verify_audit_report(path: Path, auditor_key: Path | None, as_json: bool) -> None:
    """Check a signed audit report: exit 0 if signed and clean, 6 if signed but divergent."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_public_key,
    )

    from ledger.errors import CunzhengError
    from verifier.audit import verify_report

    pinned = None
    if auditor_key is not None:
        public = load_pem_public_key(auditor_key.read_bytes())
        if not isinstance(public, Ed25519PublicKey):
            raise click.ClickException(f"{auditor_key} is not an Ed25519 public key")
        pinned = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        report = verify_report(document, auditor_key=pinned)
    except (CunzhengError, ValueError) as exc:
        click.echo(f"INVALID  {getattr(exc, 'message', exc)}")
        sys.exit(EXIT_CODES["INVALID"])
    if as_json:
        click.echo(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        state = "clean 审计通过" if report["clean"] else "DIVERGENT 发现不一致"
        click.echo(
            f"signature valid 签名有效: {document['auditor']}, {document['audited_at']}: "
            f"{state}, {report['entries']} entries up to tree size {report['tree_size']}"
        )
    sys.exit(0 if report["clean"] else 6)


def _verify_package(path: Path, log_key: str, tsa_roots: tuple[Path, ...], as_json: bool) -> None:
    """Check a court package offline (verifier.package); print each item's verdict in Chinese
    and English; exit 0 when all pass, 5 otherwise."""
    from cryptography import x509

    from ledger.checkpoint import NoteVerifier
    from ledger.errors import CunzhengError
    from verifier.package import verify_package

    try:
        verifier = NoteVerifier.parse(log_key)
        roots = [x509.load_pem_x509_certificate(p.read_bytes()) for p in tsa_roots]
    except CunzhengError as exc:
        raise click.ClickException(f"{exc.message} ({exc.title_zh})") from exc
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    report = verify_package(path, log_keys=[verifier], tsa_roots=roots)
    obj = report.to_object()
    if as_json:
        click.echo(json.dumps(obj, ensure_ascii=False, indent=2))
    else:
        click.echo(f"{obj['verdict_zh']}  {obj['verdict']}  {path.name}")
        click.echo(f"  contract 合同编号: {obj['contract_no'] or '—'}   deposits 存证: "
                   f"{obj['deposits']}   failures 未通过: {obj['failures']}")  # fmt: skip
        for c in report.checks:  # "–": a rendering (PDF), shown but proof of nothing
            mark = {"passed": "✓", "failed": "✗"}.get(c.status, "–")
            click.echo(f"  {mark} {c.check:<11} {c.subject}  {c.message_zh} / {c.message}")
    sys.exit(EXIT_CODES[report.verdict])


def _verify_extends(server: str, trusted: Path, log_key: str, as_json: bool) -> None:
    """Prove the log's current checkpoint extends ``trusted`` (RFC 9162 §2.1.4): exit 0 or 5."""
    import urllib.request

    from ledger.checkpoint import NoteVerifier, open_checkpoint
    from ledger.errors import CunzhengError
    from verifier.proof import verify_consistency

    base = server.rstrip("/")
    try:
        verifier = NoteVerifier.parse(log_key)
        old = open_checkpoint(trusted.read_bytes(), [verifier]).checkpoint
        with urllib.request.urlopen(base + "/v1/checkpoint", timeout=30) as r:  # noqa: S310
            new = open_checkpoint(r.read(1 << 20), [verifier]).checkpoint
        query = f"/v1/proofs/consistency?old={old.size}&new={new.size}"
        with urllib.request.urlopen(base + query, timeout=30) as r:  # noqa: S310
            hashes = [base64.b64decode(h) for h in json.loads(r.read())["hashes"]]
        verify_consistency(size1=old.size, size2=new.size, root1=old.root_hash,
                           root2=new.root_hash, path=hashes)  # fmt: skip
    except CunzhengError as exc:
        failed = {"verdict": "INVALID", "message": exc.message, "code": exc.code}
        click.echo(json.dumps(failed) if as_json else f"INVALID  {exc.message}")
        sys.exit(EXIT_CODES["INVALID"])
    except (OSError, ValueError, KeyError) as exc:
        raise click.ClickException(str(exc)) from exc
    result: dict[str, object] = {
        "verdict": "CONSISTENT",
        "old_size": old.size,
        "new_size": new.size,
    }
    message = (
        f"一致 CONSISTENT: the log at size {new.size} extends your checkpoint of size {old.size}"
    )
    click.echo(json.dumps(result) if as_json else message)


def _fetch_bundle(server: str, code: str, api_key: str | None) -> object | None:
    """GET the bundle from a cunzheng server; ``None`` if it has no such deposit."""
    import urllib.error
    import urllib.request

    url = server.rstrip("/") + f"/v1/deposits/{code}/bundle"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:  # noqa: S310
            bundle: object = json.loads(r.read())
            return bundle
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise click.ClickException(f"{url}: HTTP {exc.code} {exc.read()[:300]!r}") from exc
    except urllib.error.URLError as exc:
        raise click.ClickException(f"{url}: {exc.reason}") from exc


def _report_not_found(as_json: bool, code: str, zh: str) -> None:
    if as_json:
        click.echo(
            json.dumps(
                {"verdict": "NOT_FOUND", "verdict_zh": zh, "code": code, "steps": []},
                ensure_ascii=False,
            )
        )
    else:
        click.echo(f"{zh}  NOT_FOUND  {code}")


@main.command("audit")
@click.option(
    "--store",
    "store_dir",
    default=None,
    help="A ledger store directory (opened read-only; a copy or a backup is fine), or a "
    "postgresql://… URL (read-only: a replica is fine).",
)
@click.option(
    "--server",
    default=None,
    help="Or a cunzheng server: its public checkpoints, tiles, entry bundles and registry.",
)
@click.option("--log-key", required=True, help="The log's verifier key (C2SP vkey) you trust.")
@click.option(
    "--tsa-root",
    "tsa_roots",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="PEM root certificate of a TSA you trust (repeatable).",
)
@click.option("--collect", is_flag=True, help="Report every divergence, not only the first.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Remember the last clean audit here, and next time check only what is new.",
)
@click.option(
    "--sign-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="The auditor's Ed25519 private key (PEM): also write a signed report.",
)
@click.option(
    "--auditor",
    default="auditor",
    show_default=True,
    help="Who audits, as named in the signed report.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("audit-report.json"),
    show_default=True,
    help="Where the signed report goes.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Processes checking entries and signatures (0: one per core; 1: this one only).",
)
def audit_command(
    store_dir: str | None,
    server: str | None,
    log_key: str,
    tsa_roots: tuple[Path, ...],
    collect: bool,
    as_json: bool,
    sign_key: Path | None,
    auditor: str,
    out: Path,
    state_path: Path | None,
    workers: int,
) -> None:
    """Replay the whole ledger and check every root, link, signature, token and index.
    Exit 0 when clean, 6 when anything diverges."""
    from cryptography import x509
    from rich.progress import Progress, TextColumn

    from ledger.checkpoint import NoteVerifier
    from ledger.errors import CunzhengError
    from ledger.storage.rocksdb import RocksStore
    from verifier.audit import AuditSource, AuditState, audit
    from verifier.sources import HttpSource

    if (store_dir is None) == (server is None):
        raise click.UsageError("give either --store DIR or --server URL")
    try:
        verifier = NoteVerifier.parse(log_key)
        roots = [x509.load_pem_x509_certificate(p.read_bytes()) for p in tsa_roots]
        resume = None
        if state_path is not None and state_path.exists():
            resume = AuditState.from_object(json.loads(state_path.read_text(encoding="utf-8")))
        store: AuditSource
        if store_dir is not None and store_dir.startswith(("postgresql://", "postgres://")):
            from ledger.storage.postgres import PostgresStore

            store = PostgresStore(store_dir, read_only=True, pool_size=2)
        elif store_dir is not None:
            if not Path(store_dir).is_dir():
                raise click.BadParameter(f"no directory {store_dir}", param_hint="--store")
            store = RocksStore(store_dir, read_only=True)
        else:
            store = HttpSource(str(server))
    except (CunzhengError, ValueError, OSError) as exc:
        raise click.ClickException(getattr(exc, "message", str(exc))) from exc
    try:
        columns = [*Progress.get_default_columns(), TextColumn("{task.fields[rate]}")]
        with Progress(*columns, disable=as_json or not sys.stderr.isatty(), transient=True) as bar:
            task = bar.add_task("replaying", total=None, rate="")

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)
                speed = bar.tasks[0].speed
                if speed:
                    bar.update(task, rate=f"{speed:,.0f} entries/s")

            report = audit(store, log_key=verifier, tsa_roots=roots, collect=collect,
                           progress=progress, resume=resume,
                           workers=workers or os.cpu_count() or 1)  # fmt: skip
    finally:
        if not isinstance(store, HttpSource):
            store.close()
    if state_path is not None and report.state is not None:
        state_path.write_text(json.dumps(report.state.to_object(), indent=2) + "\n")
    if sign_key is not None:
        _write_signed_report(report, sign_key, auditor, log_key, out)
    if as_json:
        click.echo(json.dumps(report.to_object(), ensure_ascii=False, indent=2))
    else:
        verdict = "clean 审计通过" if report.clean else "DIVERGENT 发现不一致"
        click.echo(
            f"{verdict}: {report.entries} entries, {report.checkpoints} checkpoints, "
            f"{report.timestamps} time-stamps"
        )
        for d in report.divergences:
            click.echo(f"  {d.where}: {d.what}: expected {d.expected}, found {d.found}")
    sys.exit(0 if report.clean else 6)


@main.command("backup")
@click.option("--server", default=None, help="A running cunzheng server: it backs itself up.")
@click.option(
    "--admin-token-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="That server's admin token (DATA_DIR/admin-token).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Or a data directory no server is using.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="With --data-dir: the new backup directory.",
)
@click.option(
    "--store",
    "store_url",
    default=None,
    help="With --data-dir: its store, when not RocksDB inside it (postgresql://…).",
)
def backup_command(
    server: str | None,
    admin_token_file: Path | None,
    data_dir: Path | None,
    out: Path | None,
    store_url: str | None,
) -> None:
    """A consistent backup (RocksDB checkpoint or PostgreSQL pg_dump, log key, built-in TSA): of
    a running server (--server, kept under its DATA_DIR/backups/), or of a stopped one's
    --data-dir (and --store) to --out."""
    import httpx

    from ledger.errors import CunzhengError

    if (server is None) == (data_dir is None):
        raise click.UsageError("give either --server URL (with --admin-token-file) or --data-dir")
    if server is not None:
        if admin_token_file is None:
            raise click.UsageError("--server needs --admin-token-file")
        token = admin_token_file.read_text().strip()
        r = httpx.post(f"{server.rstrip('/')}/v1/admin/backup", timeout=600,
                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        if r.status_code != 201:
            raise click.ClickException(f"the server refused: {r.status_code} {r.text}")
        manifest = r.json()
    else:
        from api.service import Service
        from api.settings import load_settings

        if out is None:
            raise click.UsageError("--data-dir needs --out")
        assert data_dir is not None
        try:
            settings = load_settings(None, data_dir=data_dir, store=store_url)
            service = Service.open(settings.service_config())
        except CunzhengError as exc:
            raise click.ClickException(exc.message) from exc
        try:
            manifest = {"path": str(out.resolve()), **service.backup(out)}
        except CunzhengError as exc:
            raise click.ClickException(exc.message) from exc
        finally:
            service.close()
    click.echo(
        f"backed up tree size {manifest['tree_size_at_least']} (at least) to {manifest['path']}"
    )


@main.command("restore")
@click.argument("backup", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--data-dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The new data directory (must not exist, or be empty).",
)
@click.option(
    "--store",
    "store_url",
    default=None,
    help="For a PostgreSQL backup: postgresql://… of a new, empty database to restore into "
    "(pg_restore). A password in the URL is passed to pg_restore in PGPASSWORD only.",
)
def restore_command(backup: Path, data_dir: Path, store_url: str | None) -> None:
    """Make a data directory (and, for PostgreSQL, fill an empty database) from a backup, then
    check the restored log's head checkpoint against the backed-up log key. Audit it next:
    cunzheng audit --store DATA_DIR/ledger (or --store postgresql://…)."""
    import shutil

    from cryptography.hazmat.primitives import serialization

    from ledger.checkpoint import NoteSigner
    from ledger.errors import CunzhengError
    from ledger.log import Ledger
    from ledger.store import Store

    manifest_path = backup / "backup.json"
    if not manifest_path.exists():
        raise click.ClickException(f"{backup} is not a cunzheng backup (no backup.json)")
    manifest = json.loads(manifest_path.read_text())
    kind = manifest.get("store", "rocksdb")
    if kind == "postgresql" and store_url is None:
        raise click.UsageError(
            "this backup is of a PostgreSQL database: give --store postgresql://… naming a new, "
            "empty database to restore it into"
        )
    if kind == "rocksdb" and store_url is not None:
        raise click.UsageError("this backup is of a RocksDB store: it restores into --data-dir")
    if store_url is not None and not store_url.startswith(("postgresql://", "postgres://")):
        raise click.BadParameter("only postgresql://… URLs", param_hint="--store")
    if data_dir.exists() and any(data_dir.iterdir()):
        raise click.ClickException(f"{data_dir} is not empty; restore into a new directory")
    store: Store
    try:
        if store_url is not None:
            from ledger.storage.pg_backup import restore
            from ledger.storage.postgres import PostgresStore

            restore(store_url, backup / "ledger.dump")
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for part in ("ledger", "keys", "tsa"):
            if (backup / part).is_dir():
                shutil.copytree(backup / part, data_dir / part)
        if store_url is not None:
            store = PostgresStore(store_url, pool_size=1)
        else:
            from ledger.storage.rocksdb import RocksStore

            store = RocksStore(data_dir / "ledger")
    except CunzhengError as exc:
        raise click.ClickException(exc.message) from exc
    key = serialization.load_pem_private_key((data_dir / "keys" / "log.key").read_bytes(), None)
    try:
        ledger = Ledger.open(store, NoteSigner(manifest["origin"], key))  # type: ignore[arg-type]
        head, _ = ledger.checked_head()
    except CunzhengError as exc:
        raise click.ClickException(f"the restored log does not check out: {exc.message}") from exc
    finally:
        store.close()
    if head.size < (want := manifest["tree_size_at_least"]):
        raise click.ClickException(f"the restored log has {head.size} entries, the backup {want}")
    serve = f"cunzheng serve --data-dir {data_dir}"
    if store_url is not None:
        serve += " --store <that database's URL>"
    click.echo(f"restored {head.size} entries into {data_dir}"
               f"{' and the database' if store_url else ''}; serve it with: {serve}")  # fmt: skip


@main.group("db")
def db_group() -> None:
    """The PostgreSQL database: schema migrations and the application role."""


@db_group.command("migrate")
@click.option(
    "--store",
    "store_url",
    required=True,
    help="postgresql://… as the role that owns (or will own) the ledger's tables.",
)
@click.option(
    "--app-role",
    default=None,
    help="The role `cunzheng serve` connects as: granted exactly what the service needs "
    "(no UPDATE, DELETE or TRUNCATE on the log, no ownership). Give it after every upgrade.",
)
def db_migrate(store_url: str, app_role: str | None) -> None:
    """Apply the schema migrations as the tables' owner and grant the application role its
    privileges; then serve with --store postgresql://APP_ROLE@…"""
    from ledger.errors import CunzhengError
    from ledger.storage.postgres import PostgresStore

    if not store_url.startswith(("postgresql://", "postgres://")):
        raise click.BadParameter("only postgresql://… URLs", param_hint="--store")
    try:
        store = PostgresStore(store_url, pool_size=1)
        try:
            if app_role is not None:
                store.grant_app_role(app_role)
            version = store.schema_version()
        finally:
            store.close()
    except CunzhengError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"schema at version {version}")
    if app_role is not None:
        click.echo(f"granted {app_role}: serve with --store postgresql://{app_role}@…")


@main.command("witness")
@click.option("--server", required=True, help="The cunzheng service to witness.")
@click.option("--log-key", required=True, help="The log's verifier key (C2SP vkey).")
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="This witness's Ed25519 private key (PEM).",
)
@click.option("--name", required=True, help="This witness's name, e.g. witness.example.cn/w1.")
@click.option(
    "--state",
    "state_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where this witness remembers the last checkpoint it cosigned.",
)
def witness_command(server: str, log_key: str, key_path: Path, name: str, state_path: Path) -> None:
    """Cosign the log's newest checkpoint if it extends the last one seen; hand the
    cosignature to the server. A fork is refused and reported (exit 7)."""
    import urllib.request

    from ledger.checkpoint import Checkpoint, NoteVerifier, split_note
    from ledger.errors import CunzhengError
    from verifier.witness import ForkDetected, Witness

    key = _ed25519_private_key(key_path)
    base = server.rstrip("/")

    def get(path: str) -> bytes:
        with urllib.request.urlopen(base + path, timeout=30) as r:  # noqa: S310
            body: bytes = r.read(1 << 20)
            return body

    try:
        witness = Witness(name=name, key=key, log_key=NoteVerifier.parse(log_key), state=state_path)
        click.echo(f"witness vkey: {witness.verifier.vkey}", err=True)
        note = get("/v1/checkpoint")
        size = Checkpoint.parse(split_note(note)[0]).size
        old = witness.last()
        proof: list[bytes] = []
        if old is not None and 0 < old.size < size:
            answer = json.loads(get(f"/v1/proofs/consistency?old={old.size}&new={size}"))
            proof = [base64.b64decode(h) for h in answer["hashes"]]
        line = witness.cosign(note, proof)
    except ForkDetected as exc:
        click.echo(f"FORK 日志分叉: {exc.message} {exc.details}", err=True)
        sys.exit(7)
    except (CunzhengError, OSError, ValueError) as exc:
        raise click.ClickException(getattr(exc, "message", str(exc))) from exc
    request = urllib.request.Request(  # noqa: S310
        f"{base}/v1/checkpoints/{size}/cosignatures", data=line, method="POST",
        headers={"Content-Type": "text/plain"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30):  # noqa: S310
            pass
    except OSError as exc:
        raise click.ClickException(f"the server did not take the cosignature: {exc}") from exc
    click.echo(f"cosigned checkpoint {size}")


if __name__ == "__main__":
    main()
