"""Evidence file formats, recognised by content (DB4401/T 310—2024 Annex B; DESIGN §8).

Annex B lists, per evidence element, the data formats a court accepts: OFD ("UFO" in the
standard's table), PDF, JPEG (also written JPG), PNG, Excel, DOC, WAV, MP3, MOV, FLV, MP4 and
AVI. A file's name proves nothing about its format, so :func:`sniff` reads its first bytes
(the "magic numbers" each format's specification fixes) and, for the formats that are ZIP
packages (OFD per GB/T 33190—2016, XLSX and DOCX per ISO/IEC 29500) or OLE compound files
(XLS, DOC per [MS-CFB]), the names of the parts or streams inside.

Everything here is pure except :func:`sniff_file`, which reads a file and hands its bytes to
:func:`sniff`. Formats this module can name but the standard does not list (DOCX, M4A, 3GP,
ZIP, OLE compound files of other kinds) are reported by name, so a completeness check can say
which file is in a format the court may refuse, rather than pretend it does not exist.

>>> sniff(b"%PDF-1.7\\n%\\xe2\\xe3\\xcf\\xd3\\n")
'PDF'
>>> sniff(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(8))
'PNG'
>>> sniff(b"GIF89a") is None
True
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
from collections.abc import Mapping

__all__ = [
    "ANNEX_B_FORMATS",
    "CFB_READ_LIMIT",
    "FORMAT_MEDIA_TYPES",
    "HEAD_BYTES",
    "MEDIA_TYPE_FORMATS",
    "format_of_media_type",
    "media_type_of",
    "sniff",
    "sniff_file",
]

ANNEX_B_FORMATS: Mapping[str, frozenset[str]] = {
    "credit_line_contract": frozenset({"OFD", "PDF", "JPEG", "PNG"}),
    "loan_contract": frozenset({"OFD", "PDF", "JPEG", "PNG"}),
    "loan_voucher": frozenset({"OFD", "PDF", "JPEG", "PNG"}),
    "disbursement_voucher": frozenset({"OFD", "PDF", "JPEG", "PNG"}),
    "repayment_details": frozenset({"OFD", "PDF", "JPEG", "PNG", "XLS", "XLSX"}),
    "identity_verification": frozenset({"OFD", "PDF", "JPEG", "PNG"}),
    "loan_process_record": frozenset(
        {"WAV", "MP3", "MOV", "FLV", "MP4", "AVI", "JPEG", "PNG", "OFD", "PDF", "DOC"}
    ),
    "other": frozenset({"OFD", "PDF", "JPEG", "PNG"}),
    "evidence_catalog": frozenset({"OFD", "PDF", "JPEG", "PNG"}),
}
"""Table B.1 "数据格式" per evidence kind (DESIGN §8). JPG is JPEG; UFO is read as OFD; EXCEL is
XLS (BIFF in a compound file) or XLSX (OOXML)."""

FORMAT_MEDIA_TYPES: Mapping[str, str] = {
    "OFD": "application/ofd",
    "PDF": "application/pdf",
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "XLS": "application/vnd.ms-excel",
    "XLSX": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "DOC": "application/msword",
    "DOCX": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "WAV": "audio/wav",
    "MP3": "audio/mpeg",
    "MOV": "video/quicktime",
    "MP4": "video/mp4",
    "M4A": "audio/mp4",
    "3GP": "video/3gpp",
    "FLV": "video/x-flv",
    "AVI": "video/x-msvideo",
    "ZIP": "application/zip",
    "CFB": "application/x-ole-storage",
}
"""The media type a statement declares for each recognised format."""

MEDIA_TYPE_FORMATS: Mapping[str, str] = {
    **{media_type: name for name, media_type in FORMAT_MEDIA_TYPES.items()},
    "image/jpg": "JPEG",
    "image/pjpeg": "JPEG",
    "audio/x-wav": "WAV",
    "audio/wave": "WAV",
    "audio/vnd.wave": "WAV",
    "audio/mp3": "MP3",
    "video/avi": "AVI",
    "video/msvideo": "AVI",
    "application/x-ofd": "OFD",
    "application/x-pdf": "PDF",
}
"""Media type (as a statement declares it) → format name, aliases included."""

HEAD_BYTES = 4096
"""How much of a file :func:`sniff` needs for every format that is not a container."""

CFB_READ_LIMIT = 1 << 30
"""Compound files larger than this are reported as ``CFB`` without reading their directory."""

_CFB_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_MP3_BITRATE_BAD = (0x0, 0xF)
_ISO_QUICKTIME_ATOMS = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


def sniff(data: bytes, *, whole: bool = False) -> str | None:
    """The format of a file from its first bytes (at least :data:`HEAD_BYTES`, or all of it).

    ``whole`` says ``data`` is the entire file: only then can ZIP packages (OFD, XLSX, DOCX) be
    told apart, and OLE compound files (XLS, DOC) be read reliably; otherwise they come back as
    ``ZIP`` / ``CFB``. Returns ``None`` for a format this module does not know.
    """
    if data.startswith(_CFB_MAGIC):
        return _sniff_cfb(data) if whole else "CFB"
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _sniff_zip(data) if whole else "ZIP"
    # PDF 2.0 (ISO 32000-2 §7.5.2) has "%PDF-" first; readers accept it within the first KiB.
    if b"%PDF-" in data[:1024]:
        return "PDF"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(_PNG_MAGIC):
        return "PNG"
    if data[:4] == b"RIFF" and len(data) >= 12:
        return {b"WAVE": "WAV", b"AVI ": "AVI"}.get(data[8:12])
    if data.startswith(b"FLV\x01"):
        return "FLV"
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return _ftyp_brand(data[8:12])
    if len(data) >= 8 and data[4:8] in _ISO_QUICKTIME_ATOMS:
        return "MOV"  # QuickTime before the ftyp atom existed
    if data.startswith(b"ID3") or _mp3_frame(data):
        return "MP3"
    return None


def _ftyp_brand(brand: bytes) -> str:
    """ISO/IEC 14496-12 §4.3 major brand → format (QuickTime is ``qt  ``)."""
    if brand == b"qt  ":
        return "MOV"
    if brand.startswith((b"3gp", b"3g2")):
        return "3GP"
    if brand in (b"M4A ", b"M4B "):
        return "M4A"
    return "MP4"


def _mp3_frame(data: bytes) -> bool:
    """An MPEG audio Layer III frame header (ISO/IEC 11172-3 §2.4.2.3) at offset 0: 11 sync
    bits, a version that is not reserved, layer III, a usable bitrate and sampling rate."""
    if len(data) < 4 or data[0] != 0xFF or data[1] & 0xE0 != 0xE0:
        return False
    version = (data[1] >> 3) & 0b11
    layer = (data[1] >> 1) & 0b11
    bitrate = data[2] >> 4
    sampling = (data[2] >> 2) & 0b11
    return version != 0b01 and layer == 0b01 and bitrate not in _MP3_BITRATE_BAD and sampling != 3


def _sniff_zip(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return "ZIP"
    return _zip_format(names)


def _zip_format(names: list[str]) -> str:
    """OFD: ``OFD.xml`` at the package root (GB/T 33190—2016 §7.1). OOXML: ``xl/`` or
    ``word/`` parts beside ``[Content_Types].xml``."""
    if "OFD.xml" in names:
        return "OFD"
    if "[Content_Types].xml" in names:
        if any(n.startswith("xl/") for n in names):
            return "XLSX"
        if any(n.startswith("word/") for n in names):
            return "DOCX"
    return "ZIP"


def _sniff_cfb(data: bytes) -> str:
    """XLS (a ``Workbook`` or ``Book`` stream) or DOC (``WordDocument``) inside an OLE compound
    file ([MS-CFB] §2.2 header, §2.3 FAT, §2.6 directory entries); ``CFB`` otherwise."""
    names = _cfb_names(data)
    if "WordDocument" in names:
        return "DOC"
    if "Workbook" in names or "Book" in names:
        return "XLS"
    return "CFB"


def _cfb_names(data: bytes) -> set[str]:
    """Names of the directory entries of a compound file, following the FAT chain of the
    directory; an empty set for a file too damaged to read."""
    if len(data) < 512:
        return set()
    shift: int = struct.unpack_from("<H", data, 0x1E)[0]
    if shift not in (9, 12):
        return set()
    sector = 1 << shift
    first_dir: int = struct.unpack_from("<I", data, 0x30)[0]
    difat = struct.unpack_from("<109I", data, 0x4C)

    def at(n: int) -> int:
        return (n + 1) * sector

    fat: list[int] = []
    for fat_sector in difat:
        if fat_sector >= 0xFFFFFFFA or at(fat_sector) + sector > len(data):
            break
        fat.extend(struct.unpack_from(f"<{sector // 4}I", data, at(fat_sector)))
    names: set[str] = set()
    current, seen = first_dir, set()
    while current < 0xFFFFFFFA and current not in seen and at(current) + sector <= len(data):
        seen.add(current)
        base = at(current)
        for offset in range(base, base + sector, 128):
            length = struct.unpack_from("<H", data, offset + 0x40)[0]
            if 2 <= length <= 64 and length % 2 == 0:
                raw = data[offset : offset + length - 2]
                names.add(raw.decode("utf-16-le", errors="replace"))
        current = fat[current] if current < len(fat) else 0xFFFFFFFE
    return names


def sniff_file(path: str | os.PathLike[str]) -> str | None:
    """The format of the file at ``path`` (see :func:`sniff`): its first :data:`HEAD_BYTES`,
    and for ZIP packages their central directory, for compound files the whole file."""
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
        kind = sniff(head)
        if kind == "ZIP":
            f.seek(0)
            try:
                with zipfile.ZipFile(f) as z:
                    return _zip_format(z.namelist())
            except (zipfile.BadZipFile, ValueError, OSError, EOFError):
                return "ZIP"
        if kind == "CFB":
            size = os.fstat(f.fileno()).st_size
            if size > CFB_READ_LIMIT:
                return "CFB"
            f.seek(0)
            return _sniff_cfb(f.read())
    return kind


def media_type_of(format_name: str | None) -> str:
    """The media type a statement declares for a format (``application/octet-stream`` when
    the format is unknown)."""
    if format_name is None:
        return "application/octet-stream"
    return FORMAT_MEDIA_TYPES.get(format_name, "application/octet-stream")


def format_of_media_type(media_type: str) -> str | None:
    """The format a declared media type names, or ``None`` (parameters such as
    ``; charset=`` are ignored)."""
    return MEDIA_TYPE_FORMATS.get(media_type.split(";", 1)[0].strip().lower())
