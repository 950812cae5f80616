"""A realistic sample case, generated: the files a lender holds for one internet micro-loan,
each in a format DB4401/T 310—2024 Annex B lists for its element (DESIGN §8).

Contents are small but real enough for content sniffing: a PDF with a header, body and trailer,
a PNG with a valid IHDR/IEND, an XLSX with the OOXML parts, an OFD package with ``OFD.xml``, an
MP4 ``ftyp`` box, a WAV RIFF header, an MP3 frame header.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

__all__ = [
    "COMPLETE_CASE",
    "avi_bytes",
    "doc_bytes",
    "docx_bytes",
    "jpeg_bytes",
    "mp3_bytes",
    "mp4_bytes",
    "ofd_bytes",
    "pdf_bytes",
    "png_bytes",
    "wav_bytes",
    "write_case",
    "xls_bytes",
    "xlsx_bytes",
]


def pdf_bytes(text: str) -> bytes:
    """A small, valid one-page PDF showing ``text`` (ASCII), with a correct xref table."""
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def png_bytes(seed: int = 0) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    raw = b"".join(b"\x00" + bytes((seed + x + y) % 256 for x in range(8)) for y in range(8))
    ihdr = struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def jpeg_bytes(seed: int = 0) -> bytes:
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return (
        b"\xff\xd8\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0 + bytes([seed]) + b"\xff\xd9"
    )


def _zip(parts: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)
    return buffer.getvalue()


def xlsx_bytes(rows: int = 3) -> bytes:
    cells = "".join(
        f'<row r="{r}"><c r="A{r}"><v>{r}</v></c><c r="B{r}"><v>{1000 - r * 100}</v></c></row>'
        for r in range(1, rows + 1)
    )
    return _zip(
        {
            "[Content_Types].xml": b'<?xml version="1.0"?><Types xmlns="http://schemas.'
            b'openxmlformats.org/package/2006/content-types"/>',
            "_rels/.rels": b'<?xml version="1.0"?><Relationships/>',
            "xl/workbook.xml": b'<?xml version="1.0"?><workbook/>',
            "xl/worksheets/sheet1.xml": f'<?xml version="1.0"?><worksheet><sheetData>{cells}'
            "</sheetData></worksheet>".encode(),
        }
    )


def docx_bytes() -> bytes:
    return _zip(
        {
            "[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
            "word/document.xml": b'<?xml version="1.0"?><document/>',
        }
    )


def ofd_bytes(text: str) -> bytes:
    return _zip(
        {
            "OFD.xml": b'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="http://www.'
            b'ofdspec.org/2016" Version="1.0" DocType="OFD"><ofd:DocBody><ofd:DocRoot>Doc_0/'
            b"Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>",
            "Doc_0/Document.xml": f"<Document>{text}</Document>".encode(),
        }
    )


def _cfb(stream_name: str) -> bytes:
    """A minimal OLE compound file ([MS-CFB]): header, one FAT sector, one directory sector
    holding the root entry and one stream entry named ``stream_name``."""
    sector = 512
    header = bytearray(sector)
    header[0:8] = bytes.fromhex("d0cf11e0a1b11ae1")
    struct.pack_into("<HHH", header, 0x18, 0x3E, 3, 0xFFFE)
    struct.pack_into("<H", header, 0x1E, 9)  # 512-byte sectors
    struct.pack_into("<H", header, 0x20, 6)
    struct.pack_into("<I", header, 0x2C, 1)  # one FAT sector
    struct.pack_into("<I", header, 0x30, 1)  # directory starts at sector 1
    struct.pack_into("<I", header, 0x38, 4096)
    struct.pack_into("<I", header, 0x3C, 0xFFFFFFFE)
    struct.pack_into("<I", header, 0x44, 0xFFFFFFFE)
    difat = [0] + [0xFFFFFFFF] * 108
    struct.pack_into("<109I", header, 0x4C, *difat)
    fat = [0xFFFFFFFD, 0xFFFFFFFE] + [0xFFFFFFFF] * 126
    fat_sector = struct.pack("<128I", *fat)

    def entry(name: str, kind: int) -> bytes:
        raw = name.encode("utf-16-le") + b"\x00\x00"
        e = bytearray(128)
        e[: len(raw)] = raw
        struct.pack_into("<HBB", e, 0x40, len(raw), kind, 1)
        struct.pack_into("<III", e, 0x44, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
        return bytes(e)

    directory = entry("Root Entry", 5) + entry(stream_name, 2) + bytes(256)
    return bytes(header) + fat_sector + directory


def doc_bytes() -> bytes:
    return _cfb("WordDocument")


def xls_bytes() -> bytes:
    return _cfb("Workbook")


def mp4_bytes(brand: bytes = b"isom") -> bytes:
    ftyp = brand + b"\x00\x00\x02\x00" + brand + b"mp41"
    return struct.pack(">I", 8 + len(ftyp)) + b"ftyp" + ftyp + struct.pack(">I", 8) + b"mdat"


def wav_bytes() -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    data = bytes(160)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data"
    body += struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def avi_bytes() -> bytes:
    return b"RIFF" + struct.pack("<I", 4) + b"AVI " + b"LIST" + bytes(8)


def mp3_bytes() -> bytes:
    return b"\xff\xfb\x90\x64" + bytes(413)  # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz


COMPLETE_CASE: dict[str, tuple[str, bytes]] = {
    "额度合同.pdf": ("credit_line_contract", pdf_bytes("credit line agreement")),
    "借款合同.pdf": ("loan_contract", pdf_bytes("loan contract HT-2026-0001")),
    "借款合同-补充协议.ofd": ("loan_contract", ofd_bytes("supplement")),
    "借款借据.pdf": ("loan_voucher", pdf_bytes("IOU")),
    "放款凭证.png": ("disbursement_voucher", png_bytes(1)),
    "还款及欠款明细.xlsx": ("repayment_details", xlsx_bytes()),
    "身份证正面.jpg": ("identity_verification", jpeg_bytes(1)),
    "身份证反面.jpg": ("identity_verification", jpeg_bytes(2)),
    "人脸识别.png": ("identity_verification", png_bytes(2)),
    "借款流程录屏.mp4": ("loan_process_record", mp4_bytes()),
    "借款流程录音.wav": ("loan_process_record", wav_bytes()),
    "证据目录.pdf": ("evidence_catalog", pdf_bytes("evidence catalog")),
}
"""File name → (evidence kind, content) of a complete case (every required element present)."""


def write_case(
    root: Path, files: dict[str, tuple[str, bytes]] = COMPLETE_CASE, *, by_kind: bool = True
) -> dict[Path, str]:
    """Write the case's files under ``root`` (in one folder per kind when ``by_kind``, the
    naming convention ``cunzheng deposit`` reads); returns path → kind."""
    out = {}
    for name, (kind, data) in files.items():
        path = root / kind / name if by_kind else root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out[path] = kind
    return out
