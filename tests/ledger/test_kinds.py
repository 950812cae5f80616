"""Evidence formats recognised by content, not by file name (ledger/kinds.py)."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from ledger import kinds
from ledger.kinds import ANNEX_B_FORMATS, format_of_media_type, media_type_of, sniff, sniff_file
from tests.cases import samples

WHOLE = {
    "pdf": (samples.pdf_bytes("x"), "PDF"),
    "ofd": (samples.ofd_bytes("x"), "OFD"),
    "jpeg": (samples.jpeg_bytes(), "JPEG"),
    "png": (samples.png_bytes(), "PNG"),
    "xlsx": (samples.xlsx_bytes(), "XLSX"),
    "xls": (samples.xls_bytes(), "XLS"),
    "doc": (samples.doc_bytes(), "DOC"),
    "docx": (samples.docx_bytes(), "DOCX"),
    "wav": (samples.wav_bytes(), "WAV"),
    "mp3-frame": (samples.mp3_bytes(), "MP3"),
    "mp3-id3": (b"ID3\x04\x00\x00" + bytes(100), "MP3"),
    "mov": (samples.mp4_bytes(b"qt  "), "MOV"),
    "mov-no-ftyp": (b"\x00\x00\x00\x08wide\x00\x00\x00\x08mdat", "MOV"),
    "mp4": (samples.mp4_bytes(), "MP4"),
    "3gp": (samples.mp4_bytes(b"3gp5"), "3GP"),
    "m4a": (samples.mp4_bytes(b"M4A "), "M4A"),
    "flv": (b"FLV\x01\x05\x00\x00\x00\x09" + bytes(8), "FLV"),
    "avi": (samples.avi_bytes(), "AVI"),
    "pdf-after-junk": (b"\r\n" * 10 + samples.pdf_bytes("x"), "PDF"),
    "plain-zip": (samples._zip({"a.txt": b"hello"}), "ZIP"),
    "plain-cfb": (samples._cfb("Contents"), "CFB"),
}


@pytest.mark.parametrize("name", sorted(WHOLE))
def test_formats_are_recognised(name: str, tmp_path: Path) -> None:
    data, want = WHOLE[name]
    assert sniff(data, whole=True) == want
    path = tmp_path / "evidence.bin"  # the name says nothing
    path.write_bytes(data)
    assert sniff_file(path) == want


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("empty", b""),
        ("text", "借款合同 HT-2026-0001".encode()),
        ("gif", b"GIF89a" + bytes(20)),
        ("riff-other", b"RIFF\x04\x00\x00\x00WEBP"),
        ("aac-adts-is-not-mp3", b"\xff\xf1\x50\x80" + bytes(20)),
        ("mpeg-layer-ii", b"\xff\xfd\x90\x64" + bytes(20)),
        ("mp3-bad-bitrate", b"\xff\xfb\xf0\x64" + bytes(20)),
        ("mp3-bad-sampling", b"\xff\xfb\x9c\x64" + bytes(20)),
        ("truncated-riff", b"RIFF\x00"),
    ],
)
def test_unknown_content_is_not_guessed(name: str, data: bytes) -> None:
    assert sniff(data, whole=True) is None


def test_a_renamed_file_is_found_out(tmp_path: Path) -> None:
    disguised = tmp_path / "借款合同.pdf"
    disguised.write_bytes(samples.png_bytes())
    assert sniff_file(disguised) == "PNG"


def test_containers_need_the_whole_file() -> None:
    assert sniff(samples.ofd_bytes("x")[:64]) == "ZIP"
    assert sniff(samples.doc_bytes()[:512]) == "CFB"
    assert sniff(samples.doc_bytes()[:600], whole=True) == "CFB"  # damaged: no directory


def test_damaged_containers_do_not_raise() -> None:
    zip_head = samples.xlsx_bytes()[:40]
    assert sniff(zip_head, whole=True) == "ZIP"
    cfb = bytearray(samples.doc_bytes())
    cfb[0x30:0x34] = (0xFFFFFF00).to_bytes(4, "little")  # directory sector beyond the file
    assert sniff(bytes(cfb), whole=True) == "CFB"
    cfb = bytearray(samples.doc_bytes())
    cfb[0x1E] = 7  # impossible sector size
    assert sniff(bytes(cfb), whole=True) == "CFB"


def test_media_types_round_trip() -> None:
    for fmt in {f for formats in ANNEX_B_FORMATS.values() for f in formats}:
        assert format_of_media_type(media_type_of(fmt)) == fmt
    assert format_of_media_type("IMAGE/JPG; q=1") == "JPEG"
    assert format_of_media_type("application/octet-stream") is None
    assert media_type_of(None) == "application/octet-stream"


def test_annex_b_formats() -> None:
    assert ANNEX_B_FORMATS["repayment_details"] >= {"XLS", "XLSX"}
    assert "XLSX" not in ANNEX_B_FORMATS["loan_contract"]
    assert {"WAV", "MP3", "MOV", "FLV", "MP4", "AVI", "DOC"} <= ANNEX_B_FORMATS[
        "loan_process_record"
    ]
    assert "DOCX" not in ANNEX_B_FORMATS["loan_process_record"]


def test_doctests_pass() -> None:
    assert doctest.testmod(kinds).failed == 0
