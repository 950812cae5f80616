"""Deposit certificates (存证证书) and the evidence catalog (证据目录) as PDF, with Chinese text in
an embedded CJK font and QR codes that open the judge's page with the deposit code filled in.

A certificate states only what a verification established: it is made from a :class:`Bundle`
and the :class:`Report` of :func:`~verifier.bundle.verify_bundle` over it, and refuses any
report whose verdict is not ``VERIFIED``. It is a readable summary; the bundle, checked with
``cunzheng verify``, is the proof.

The font is WenQuanYi Micro Hei (Debian ``fonts-wqy-microhei``) or any TrueType/OpenType font
with CJK glyphs named by the environment variable ``CUNZHENG_CJK_FONT``; fpdf2 embeds the subset
used. Without one, :class:`FontMissing` says which package to install.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import segno
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from ledger.entry import EVIDENCE_KINDS
from ledger.errors import Unavailable, VerificationFailed
from ledger.merkle import leaf_hash
from verifier.bundle import Bundle, Report

__all__ = [
    "FONT_ENV",
    "FONT_PATHS",
    "DepositFacts",
    "FontMissing",
    "case_certificate",
    "catalog_pdf",
    "deposit_certificate",
    "find_cjk_font",
    "judge_url",
]

FONT_ENV = "CUNZHENG_CJK_FONT"
FONT_PATHS: tuple[str, ...] = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # Debian, Ubuntu: fonts-wqy-microhei
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",  # Fedora: wqy-microhei-fonts
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",  # Debian: fonts-wqy-zenhei
)
_BEIJING = dt.timezone(dt.timedelta(hours=8), "UTC+8")
_MARGIN = 16.0
_GREY = (110, 110, 110)


class FontMissing(Unavailable):
    """No CJK font to embed: the certificate cannot be drawn (fpdf2 refuses CJK text in a core
    font rather than print boxes)."""

    code = "cjk_font_missing"
    title_zh = "缺少中文字体，无法生成存证证书"


def find_cjk_font(environ: Mapping[str, str] | None = None) -> Path:
    """The CJK font to embed: ``$CUNZHENG_CJK_FONT`` if set (it must exist), else the first of
    :data:`FONT_PATHS` that exists; :class:`FontMissing` naming the package otherwise."""
    env = os.environ if environ is None else environ
    chosen = env.get(FONT_ENV)
    if chosen:
        if not Path(chosen).is_file():
            raise FontMissing(f"{FONT_ENV}={chosen} is not a font file", path=chosen)
        return Path(chosen)
    for path in FONT_PATHS:
        if Path(path).is_file():
            return Path(path)
    raise FontMissing(
        "no CJK font for the certificate: install the Debian package fonts-wqy-microhei "
        f"(apt-get install fonts-wqy-microhei), or set {FONT_ENV} to a font with Chinese glyphs",
        tried=list(FONT_PATHS),
    )


def judge_url(base_url: str, code: str) -> str:
    """The judge's page with ``code`` filled in (the page reads ``?code=``).

    >>> judge_url("https://cz.example.cn/", "CZ-0000-0000-0000-0000-9")
    'https://cz.example.cn/?code=CZ-0000-0000-0000-0000-9'
    """
    return f"{base_url.rstrip('/')}/?code={code}"


@dataclass(frozen=True, slots=True)
class DepositFacts:
    """What a certificate states about one deposit, all from a verified bundle."""

    code: str
    index: int
    kind: str
    kind_zh: str
    depositor: str
    depositor_name: str | None
    alg: str
    digest_hex: str
    size: int
    media_type: str
    captured_at: str
    received_at: str
    trusted_time: dt.datetime | None
    tsa: str | None
    origin: str
    tree_size: int
    root_b64: str
    checkpoint_time_ms: int | None
    proof_hashes: int
    leaf_hash_hex: str
    steps: tuple[tuple[str, str, str], ...]
    """(step, status, Chinese message) as the verification reported them."""

    @classmethod
    def of(cls, bundle: Bundle, report: Report) -> DepositFacts:
        """The facts of a ``VERIFIED`` report; :class:`VerificationFailed` for any other."""
        if report.verdict != "VERIFIED" or report.entry is None or report.checkpoint is None:
            raise VerificationFailed(
                f"no certificate for a deposit that does not verify (verdict {report.verdict})",
                verdict=report.verdict,
                failed=[s.name for s in report.steps if s.status == "failed"],
            )
        entry, cp = report.entry, report.checkpoint
        s = entry.statement
        return cls(
            code=str(entry.code), index=bundle.index, kind=s.kind,
            kind_zh=EVIDENCE_KINDS.get(s.kind, s.kind), depositor=s.depositor,
            depositor_name=bundle.depositor_name, alg=s.digest.alg, digest_hex=s.digest.hex,
            size=s.size, media_type=s.media_type, captured_at=s.captured_at,
            received_at=entry.received_at, trusted_time=report.trusted_time, tsa=report.tsa,
            origin=cp.origin, tree_size=cp.size,
            root_b64=base64.b64encode(cp.root_hash).decode(), checkpoint_time_ms=cp.time_ms,
            proof_hashes=len(bundle.proof), leaf_hash_hex=leaf_hash(bundle.leaf).hex(),
            steps=tuple((st.name, st.status, st.message_zh) for st in report.steps),
        )  # fmt: skip


# --- drawing ---------------------------------------------------------------------------------


class _Doc(FPDF):
    """A4 portrait, the CJK font as ``CJK``, a footer with the page number and the title."""

    def __init__(self, *, title: str, issued_at: dt.datetime, font: Path) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.doc_title = title
        self.set_margins(_MARGIN, _MARGIN, _MARGIN)
        self.set_auto_page_break(True, margin=_MARGIN)
        try:
            self.add_font("CJK", fname=str(font))
        except Exception as exc:  # fpdf2 raises several types for an unusable font file
            raise FontMissing(f"cannot use the font {font}: {exc}", path=str(font)) from exc
        self.set_title(title)
        self.set_author("cunzheng 存证")
        self.set_creator("cunzheng")
        self.set_lang("zh-CN")
        self.set_creation_date(issued_at)
        self.add_page()

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("CJK", size=7.5)
        self.set_text_color(*_GREY)
        self.cell(0, 5, f"{self.doc_title} · 第 {self.page_no()} 页 / 共 {{nb}} 页", align="C")
        self.set_text_color(0)

    def heading(self, zh: str, en: str) -> None:
        self.set_font("CJK", size=22)
        self.cell(0, 11, zh, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font("CJK", size=9)
        self.set_text_color(*_GREY)
        self.cell(0, 5, en, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0)
        self.ln(3)

    def section(self, zh: str, en: str) -> None:
        if self.will_page_break(16):
            self.add_page()
        self.ln(1)
        self.set_font("CJK", size=11.5)
        self.cell(0, 7, f"{zh}  ", new_x=XPos.END)
        self.set_font("CJK", size=8)
        self.set_text_color(*_GREY)
        self.cell(0, 7, en, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0)
        y = self.get_y()
        self.set_draw_color(180)
        self.line(self.l_margin, y, self.w - self.r_margin, y)
        self.ln(1.5)

    def field(self, zh: str, en: str, value: str, *, mono: bool = False, width: float = 0) -> None:
        """A labelled value: Chinese label over a small English one, the value beside them."""
        label_w = 40.0
        value_w = (width or (self.w - self.l_margin - self.r_margin)) - label_w
        if self.will_page_break(10):
            self.add_page()
        x, y = self.l_margin, self.get_y()
        self.set_font("Courier" if mono else "CJK", size=9 if mono else 10)
        self.set_xy(x + label_w, y)
        self.multi_cell(value_w, 4.6, value, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        end = self.get_y()
        self.set_xy(x, y)
        self.set_font("CJK", size=10)
        self.cell(label_w, 4.6, zh, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font("CJK", size=6.5)
        self.set_text_color(*_GREY)
        self.cell(label_w, 3, en, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0)
        self.set_y(max(end, self.get_y()) + 0.8)

    def note(self, text: str, size: float = 8) -> None:
        self.set_font("CJK", size=size)
        self.set_text_color(*_GREY)
        self.multi_cell(0, size * 0.5, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0)

    def qr(self, data: str, x: float, y: float, size: float) -> None:
        """``data`` as a QR code (ISO/IEC 18004, level M), drawn as vector squares with its
        four-module quiet zone inside ``size``."""
        matrix = segno.make(data, error="m", micro=False).matrix
        n = len(matrix)
        module = size / (n + 8)
        self.set_fill_color(255)
        self.rect(x, y, size, size, style="F")
        self.set_fill_color(0)
        for r, row in enumerate(matrix):
            c = 0
            while c < n:
                if row[c]:
                    start = c
                    while c < n and row[c]:
                        c += 1
                    # A hair taller than a module, so rows meet without seams when rasterized.
                    self.rect(x + (4 + start) * module, y + (4 + r) * module,
                              (c - start) * module, module * 1.02, style="F")  # fmt: skip
                else:
                    c += 1
        self.set_fill_color(255)

    def bytes(self) -> bytes:
        return bytes(self.output())


def _beijing(t: dt.datetime | str | None) -> str:
    """``2026-01-02 18:04:05（北京时间）``; ``None`` → 待签发 (pending)."""
    if t is None:
        return "尚待签发 (pending)"
    if isinstance(t, str):
        t = dt.datetime.fromisoformat(t)
    local = t.astimezone(_BEIJING)
    utc = t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{local:%Y-%m-%d %H:%M:%S}（北京时间） / {utc}"


def _size(n: int) -> str:
    return f"{n:,} 字节 (bytes)"


def _ms(ms: int | None) -> str:
    return "—" if ms is None else _beijing(dt.datetime.fromtimestamp(ms / 1000, dt.UTC))


def _wrap_hex(text: str, width: int = 64) -> str:
    return "\n".join(text[i : i + width] for i in range(0, len(text), width))


_STATUS_ZH = {"passed": "通过", "failed": "未通过", "not_applicable": "不适用", "pending": "待完成"}
_STEP_ZH = {
    "digest": "文件摘要",
    "code": "存证编码",
    "signature": "存证方签名",
    "checkpoint": "日志检查点签名",
    "inclusion": "日志收录证明",
    "timestamp": "可信时间戳",
    "meta": "元数据承诺",
    "entry": "存证记录",
}


def deposit_certificate(
    bundle: Bundle,
    report: Report,
    *,
    page_url: str,
    issued_at: dt.datetime,
    font: Path | None = None,
) -> bytes:
    """The certificate of one deposit, as PDF bytes (the same inputs give the same bytes).

    ``page_url`` is what the QR code opens (:func:`judge_url`); ``issued_at`` is printed and
    set as the document's creation date."""
    f = DepositFacts.of(bundle, report)
    pdf = _Doc(title=f"存证证书 {f.code}", issued_at=issued_at, font=font or find_cjk_font())
    pdf.heading("存证证书", "DEPOSIT CERTIFICATE · 电子证据存证")
    # The code and the QR code side by side.
    top = pdf.get_y()
    qr_size = 40.0
    qr_x = pdf.w - _MARGIN - qr_size
    pdf.qr(page_url, qr_x, top, qr_size)
    pdf.set_font("CJK", size=7)
    pdf.set_xy(qr_x - 4, top + qr_size)
    pdf.cell(qr_size + 8, 4, "扫码核验 · Scan to verify", align="C")
    pdf.set_xy(_MARGIN, top + 2)
    width = qr_x - _MARGIN - 4
    pdf.set_font("CJK", size=10)
    pdf.cell(width, 6, "存证编码 Deposit code", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Courier", style="B", size=17)
    pdf.cell(width, 10, f.code, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("CJK", size=8)
    pdf.set_text_color(*_GREY)
    pdf.multi_cell(width, 4, f"核验网址 Verify at: {page_url}",
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)  # fmt: skip
    pdf.set_text_color(0)
    pdf.ln(2)
    pdf.field("证据要素", "evidence kind", f"{f.kind_zh}（{f.kind}）", width=width + 4)
    pdf.field("存证方", "depositor", _depositor(f), width=width + 4)
    pdf.set_y(max(pdf.get_y(), top + qr_size + 6))

    pdf.section("证据文件", "Evidence file")
    pdf.field("摘要算法", "algorithm", f.alg.upper())
    pdf.field("文件摘要", "digest", _wrap_hex(f.digest_hex), mono=True)
    pdf.field("文件大小", "size", _size(f.size))
    pdf.field("媒体类型", "media type", f.media_type)

    pdf.section("可信时间", "Trusted time (RFC 3161)")
    pdf.field("可信时间", "trusted time (genTime)", _beijing(f.trusted_time))
    pdf.field("时间戳机构", "time-stamping authority", f.tsa or "—")
    pdf.field("存证接收时间", "received by the log", _beijing(f.received_at))
    pdf.field("存证方记录时间", "captured (depositor's clock)", _beijing(f.captured_at))

    pdf.section("日志收录", "Inclusion in the append-only log (RFC 9162)")
    pdf.field("日志", "log origin", f.origin)
    pdf.field("记录序号", "index", str(f.index))
    pdf.field("叶子哈希", "leaf hash (SHA-256)", _wrap_hex(f.leaf_hash_hex), mono=True)
    checkpoint = f"规模 {f.tree_size}（tree size），{_ms(f.checkpoint_time_ms)}"
    pdf.field("检查点", "checkpoint", checkpoint)
    pdf.field("检查点根哈希", "root hash (base64)", f.root_b64, mono=True)
    pdf.field("收录证明", "inclusion proof",
              f"{f.proof_hashes} 个哈希，由叶子哈希推算至检查点根哈希，验证一致")  # fmt: skip

    pdf.section("核验结论", "Verification at issue")
    steps = "；".join(f"{_STEP_ZH.get(n, n)}{_STATUS_ZH.get(s, s)}" for n, s, _ in f.steps)
    pdf.field("结论", "verdict", f"核验通过（VERIFIED）：{steps}")
    pdf.field("签发时间", "issued at", _beijing(issued_at))
    pdf.ln(2)
    pdf.note(
        "本证书是存证记录的可读摘要。存证记录由存证方以其登记密钥签名，收录于只可追加的默克尔日志，"
        "日志检查点经可信时间戳机构（RFC 3161）签发时间戳。核验以离线验证包为准：任何人可用 "
        f"cunzheng verify --server <本库网址> --code {f.code} --log-key <日志公钥> "
        "--tsa-root <时间戳根证书> 独立核验，无需信任本服务器。\n"
        "This certificate summarises the deposit record; the offline bundle is the proof. "
        "Anyone can check it with `cunzheng verify`, trusting only the log key and TSA roots."
    )
    return pdf.bytes()


def _depositor(f: DepositFacts) -> str:
    return f"{f.depositor_name}（{f.depositor}）" if f.depositor_name else f.depositor


def case_certificate(
    contract_no: str,
    deposits: Sequence[tuple[Bundle, Report]],
    *,
    page_url: Callable[[str], str],
    issued_at: dt.datetime,
    completeness: Mapping[str, Any] | None = None,
    font: Path | None = None,
) -> bytes:
    """The certificate of a case: its contract number and one row per deposit (kind, code,
    digest, trusted time and a QR code opening ``page_url(code)``), oldest first.

    ``completeness``: the JSON form of :class:`ledger.cases.CaseReport`, summarised if given."""
    if not deposits:
        raise VerificationFailed("a case certificate needs at least one deposit")
    facts = [DepositFacts.of(b, r) for b, r in deposits]
    pdf = _Doc(title=f"案件存证证书 {contract_no}", issued_at=issued_at,
               font=font or find_cjk_font())  # fmt: skip
    pdf.heading("案件存证证书", "CASE DEPOSIT CERTIFICATE · 电子证据存证")
    pdf.field("合同编号", "contract number", contract_no)
    depositors = sorted({_depositor(f) for f in facts})
    pdf.field("存证方", "depositor", "、".join(depositors))
    pdf.field("存证数量", "deposits", f"{len(facts)} 项，全部核验通过（all VERIFIED）")
    if completeness is not None:
        pdf.field("要素完整性", "completeness (DB4401/T 310—2024 附录B)",
                  _completeness_line(completeness))  # fmt: skip
    pdf.field("签发时间", "issued at", _beijing(issued_at))

    pdf.section("存证明细", "Deposits of the case")
    widths = (10.0, 38.0, 96.0, 30.0)  # no · kind · code, digest, time · QR
    row_h = 30.0
    for no, f in enumerate(facts, start=1):
        if pdf.will_page_break(row_h):
            pdf.add_page()
        x, y = pdf.l_margin, pdf.get_y()
        pdf.set_draw_color(200)
        pdf.rect(x, y, sum(widths), row_h)
        pdf.set_xy(x, y + 2)
        pdf.set_font("CJK", size=10)
        pdf.cell(widths[0], 5, str(no), align="C")
        pdf.set_xy(x + widths[0], y + 2)
        pdf.multi_cell(widths[1], 5, f.kind_zh, new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.set_font("CJK", size=7)
        pdf.set_text_color(*_GREY)
        pdf.multi_cell(widths[1], 3.5, f.kind, new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.set_text_color(0)
        cx = x + widths[0] + widths[1]
        pdf.set_xy(cx, y + 2)
        pdf.set_font("Courier", style="B", size=11)
        pdf.cell(widths[2], 6, f.code, new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.set_font("Courier", size=7.5)
        pdf.multi_cell(widths[2], 3.4, f"{f.alg}:\n{_wrap_hex(f.digest_hex, 48)}",
                       new_x=XPos.LEFT, new_y=YPos.NEXT)  # fmt: skip
        pdf.set_font("CJK", size=7.5)
        pdf.multi_cell(widths[2], 3.8, f"可信时间 {_beijing(f.trusted_time)}",
                       new_x=XPos.LEFT, new_y=YPos.NEXT)  # fmt: skip
        pdf.multi_cell(widths[2], 3.8, f"日志序号 {f.index} · 检查点规模 {f.tree_size}",
                       new_x=XPos.LEFT, new_y=YPos.NEXT)  # fmt: skip
        qr = row_h - 2
        pdf.qr(page_url(f.code), x + sum(widths[:3]) + (widths[3] - qr) / 2, y + 1, qr)
        pdf.set_xy(x, y + row_h)
    pdf.ln(3)
    pdf.note(
        "每行二维码打开法官核验页面并填入该项存证编码。每项存证另有存证证书与离线验证包，"
        "可用 cunzheng verify 独立核验。\n"
        "Each QR code opens the judge's page with that deposit's code; every deposit also has "
        "its own certificate and offline bundle, checkable with `cunzheng verify`."
    )
    return pdf.bytes()


def _completeness_line(report: Mapping[str, Any]) -> str:
    zh = str(report.get("complete_zh") or "")
    missing = [EVIDENCE_KINDS.get(k, k) for k in report.get("missing") or ()]
    if missing:
        zh += "；缺少：" + "、".join(missing)
    others = [i.get("message_zh", "") for i in report.get("issues") or ()
              if i.get("code") != "missing"]  # fmt: skip
    if others:
        zh += "；" + "；".join(o for o in others if o)
    return zh


def catalog_pdf(
    catalog: Mapping[str, Any], *, issued_at: dt.datetime, font: Path | None = None
) -> bytes:
    """The evidence catalog (证据目录) of a court package, printable: one row per item of the
    catalog JSON (:mod:`verifier.package`), then the completeness against Annex B."""
    contract_no = str(catalog["contract_no"])
    pdf = _Doc(title=f"证据目录 {contract_no}", issued_at=issued_at, font=font or find_cjk_font())
    pdf.heading("证据目录", "EVIDENCE CATALOG")
    pdf.field("合同编号", "contract number", contract_no)
    if catalog.get("depositor"):
        pdf.field("存证方", "depositor", str(catalog["depositor"]))
    pdf.field("日志", "log origin", str(catalog.get("origin") or "—"))
    pdf.field("编制时间", "issued at", _beijing(issued_at))
    pdf.ln(2)
    pdf.set_font("CJK", size=8)
    pdf.set_draw_color(160)
    with pdf.table(
        col_widths=(8, 34, 26, 44, 28, 34),
        line_height=4.2,
        text_align=("CENTER", "LEFT", "LEFT", "LEFT", "RIGHT", "LEFT"),
        first_row_as_headings=True,
        headings_style=FontFace(emphasis="", fill_color=(235, 235, 235)),
    ) as table:
        table.row(("序号", "证据名称 file", "证据要素 kind", "存证编码 / 摘要 code / digest",
                   "大小 size", "可信时间 trusted time"))  # fmt: skip
        for item in catalog["items"]:
            digest = str(item["digest"])
            alg, _, hexd = digest.partition(":")
            table.row((
                str(item["no"]),
                str(item.get("file_name") or "—"),
                str(item.get("kind_zh") or item["kind"]),
                f"{item['code']}\n{alg}:{hexd[:16]}…",
                f"{int(item['size']):,}",
                _beijing(item.get("trusted_time")).replace(" / ", "\n"),
            ))  # fmt: skip
    completeness = catalog.get("completeness")
    if isinstance(completeness, Mapping):
        pdf.section("要素完整性", "Completeness against DB4401/T 310—2024 Annex B")
        pdf.field("结论", "result", _completeness_line(completeness))
        for element in completeness.get("elements") or ():
            status = {"present": "已提供", "missing": "缺少", "not_provided": "未提供（非必备）"}
            pdf.field(
                str(element.get("name_zh")), str(element.get("kind")),
                f"{status.get(str(element.get('status')), element.get('status'))}"
                f"（{element.get('count', 0)} 份）",
            )  # fmt: skip
    pdf.ln(2)
    pdf.note(
        "本目录所列每项证据的离线验证包位于 bundles/，存证证书位于 certificates/，原件（如有）位于 "
        "files/；manifest.json 列出每个文件的 SHA-256。用 cunzheng verify --package 可离线核验整个"
        "证据包。\nEach item's bundle is in bundles/, its certificate in certificates/, the "
        "original (if held) in files/; manifest.json lists every member's SHA-256. "
        "`cunzheng verify --package` checks the whole package offline."
    )
    return pdf.bytes()
