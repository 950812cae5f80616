"""Multipart uploads read as they arrive: the file is hashed chunk by chunk while it is received,
its size limit is enforced on the bytes that came (not on a declared length), and nothing is
spooled to disk first.

Starlette's ``request.form()`` receives the whole body into a temporary file before the route
runs, so a 1 GiB upload would be taken in full before being refused, and hashed only afterwards.
Here the text fields that come before the file decide how it is hashed (the deposit's own
algorithm, or the algorithm of the deposit a code names); a file that comes first is hashed
with every algorithm a digest may use, so no order of fields is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks
from starlette.requests import ClientDisconnect, Request

from ledger.entry import DIGEST_ALGORITHMS
from ledger.errors import InvalidInput, TooLarge

__all__ = ["FileSink", "StreamedForm", "read_form"]


@dataclass(slots=True)
class FileSink:
    """Where the file's bytes go as they come: every hash in ``algs``, and, when ``keep``, the
    chunks themselves (for an original the depository keeps)."""

    algs: tuple[str, ...]
    keep: bool = False
    limit: int | None = None
    """Refuse as soon as more than this many bytes came (e.g. the size the statement declares)."""
    refuse: Callable[[int], Exception] | None = None
    """The error for a file over ``limit``, given the bytes received so far."""
    size: int = 0
    chunks: list[bytes] = field(default_factory=list)
    _hashes: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._hashes = [hashlib.new(a) for a in self.algs]

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.limit is not None and self.size > self.limit:
            if self.refuse is not None:
                raise self.refuse(self.size)
            raise TooLarge(f"the file is larger than {self.limit} bytes", limit=self.limit)
        for h in self._hashes:
            h.update(chunk)
        if self.keep:
            self.chunks.append(chunk)

    def digest(self, alg: str) -> bytes:
        """The file's digest under ``alg`` (one this sink was hashing)."""
        value: bytes = self._hashes[self.algs.index(alg)].digest()
        return value


ALL_ALGORITHMS = tuple(DIGEST_ALGORITHMS)


@dataclass(slots=True)
class StreamedForm:
    fields: dict[str, str]
    file: FileSink | None
    filename: str | None


async def read_form(
    request: Request,
    *,
    file_field: str,
    text_fields: frozenset[str],
    field_limit: int,
    file_limit: int,
    message: str,
    sink_for: Callable[[dict[str, str]], FileSink],
) -> StreamedForm:
    """Read a ``multipart/form-data`` body with at most one file (``file_field``) and the text
    fields ``text_fields`` (each at most ``field_limit`` bytes). ``sink_for`` gets the text
    fields that came before the file and returns where its bytes go. More than ``file_limit``
    file bytes: :class:`TooLarge` (``message``), at once."""
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidInput("a multipart/form-data body needs a boundary")
    reader = _Reader(file_field, text_fields, field_limit, file_limit, message, sink_for)
    parser = MultipartParser(boundary, reader.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise InvalidInput(f"malformed multipart body: {exc}") from exc
    except ClientDisconnect as exc:
        raise InvalidInput("the upload was cut off before it ended") from exc
    if not reader.ended:
        raise InvalidInput("the multipart body ended before its closing boundary")
    return StreamedForm(reader.fields, reader.sink, reader.filename)


class _Reader:
    def __init__(
        self,
        file_field: str,
        text_fields: frozenset[str],
        field_limit: int,
        file_limit: int,
        message: str,
        sink_for: Callable[[dict[str, str]], FileSink],
    ) -> None:
        self.file_field, self.text_fields = file_field, text_fields
        self.field_limit, self.file_limit, self.message = field_limit, file_limit, message
        self.sink_for = sink_for
        self.fields: dict[str, str] = {}
        self.sink: FileSink | None = None
        self.filename: str | None = None
        self.ended = False
        self._name = b""
        self._value = b""
        self._disposition = b""
        self._part: str | None = None
        self._is_file = False
        self._data = bytearray()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.part_begin,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
            "on_header_field": self.header_field,
            "on_header_value": self.header_value,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_end": self.end,
        }

    def part_begin(self) -> None:
        self._disposition, self._part, self._is_file = b"", None, False
        self._data = bytearray()

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def header_end(self) -> None:
        if self._name.lower() == b"content-disposition":
            self._disposition = self._value
        self._name, self._value = b"", b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name")
        if name is None:
            raise InvalidInput("every multipart part needs a Content-Disposition name")
        self._part = name.decode("utf-8", "replace")
        if self._part == self.file_field:
            if self.sink is not None:
                raise InvalidInput(f"send one file, in the field {self.file_field!r}")
            self._is_file = True
            filename = options.get(b"filename")
            self.filename = None if filename is None else filename.decode("utf-8", "replace")
            self.sink = self.sink_for(dict(self.fields))
        elif self._part not in self.text_fields or self._part in self.fields:
            fields = ", ".join(sorted({self.file_field, *self.text_fields}))
            raise InvalidInput(f"unexpected multipart field {self._part!r}; send {fields}, "
                               "each once")  # fmt: skip

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            assert self.sink is not None
            if self.sink.size + end - start > self.file_limit:
                raise TooLarge(self.message, limit=self.file_limit)
            self.sink.write(data[start:end])
            return
        if len(self._data) + end - start > self.field_limit:
            raise TooLarge(f"the field {self._part!r} is larger than {self.field_limit} bytes",
                           limit=self.field_limit)  # fmt: skip
        self._data += data[start:end]

    def part_end(self) -> None:
        if not self._is_file and self._part is not None:
            try:
                self.fields[self._part] = self._data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInput(f"the field {self._part!r} is not UTF-8 text") from exc

    def end(self) -> None:
        self.ended = True
