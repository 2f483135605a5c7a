"""Reading a contacts file as a stream of rows, whatever the CRM or the spreadsheet wrote.

The file is never held whole: rows come one at a time, so memory stays flat with its size.
Messy rows are the row's problem, never the file's: a row with fewer fields than the header
imports with the missing ones empty, one with more keeps the extras as custom fields (both
reported as warnings with the line); a NUL byte, or bytes that are not text in the file's
encoding, make that row malformed (its line reported), the other rows import.

Delimiter: auto-detected from the header line (comma, semicolon, tab or |) unless given.
Encoding: auto = UTF-8, with or without a byte-order mark (a UTF-16 mark, as Excel's "Unicode
text" writes, is followed too); a file in another encoding (Excel's Windows CSV is cp1252) is
named with ``--encoding`` and every row then decodes. A header that is not UTF-8 stops the
import before anything is written, naming the line and the option.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from agi.errors import AdminError
from agi.importer.rows import (
    MALFORMED,
    WARNING,
    Row,
    RowIssue,
    make_row,
    map_header,
)
from agi.outcomes import PHONE_FIELDS

DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "|"}
DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
SNIFF_BYTES = 64 * 1024
ENCODING_HINT = "--encoding cp1252"  # what Excel on Windows writes; any Python codec name works


_SUSPECT = re.compile("[\x00\udc80-\udcff]")  # a NUL, or a byte the encoding could not read


def _bad_bytes(value: str) -> str | None:
    """The undecodable bytes of ``value`` (kept as surrogates) as \\xNN text, or None."""
    bad = [ch for ch in value if "\udc80" <= ch <= "\udcff"]
    return "".join(f"\\x{ord(ch) - 0xDC00:02x}" for ch in bad[:4]) if bad else None


def choose_delimiter(given: str | None, header_line: str) -> str:
    """The delimiter given (one character, or tab/comma/semicolon/pipe), else the candidate
    found most often in the header line outside quotes (a comma when none is)."""
    if given:
        delimiter = DELIMITER_NAMES.get(given.lower(), given)
        if len(delimiter) != 1:
            raise AdminError(f"--delimiter must be one character (or tab), got {given!r}")
        return delimiter
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for ch in header_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _encoding_of(head: bytes, encoding: str) -> tuple[str, int]:
    """(Python codec, bytes of byte-order mark to skip)."""
    if encoding.lower() != "auto":
        try:
            name = codecs.lookup(encoding).name
        except LookupError:
            raise AdminError(f"--encoding {encoding!r} is not an encoding Python knows (e.g. utf-8, cp1252, "
                             "latin-1, utf-16)") from None
        bom = len(codecs.BOM_UTF8) if name == "utf-8" and head.startswith(codecs.BOM_UTF8) else 0
        return name, bom
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", len(codecs.BOM_UTF8)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", 0  # the codec reads the mark itself
    return "utf-8", 0


class CsvSource:
    """One contacts file: its header mapped to contact fields, then its rows, streamed."""

    def __init__(self, path: str | Path, *, delimiter: str | None = None, encoding: str = "auto",
                 explicit_map: dict[str, str] | None = None, id_field: str | None = None) -> None:
        self.path = Path(path)
        try:
            self._binary: BinaryIO = open(self.path, "rb")
        except OSError as exc:
            raise AdminError(f"cannot read {path}: {exc.strerror}") from None
        try:
            self._open(delimiter, encoding, explicit_map, id_field)
        except BaseException:
            self._binary.close()
            raise

    def _open(self, delimiter: str | None, encoding: str, explicit_map: dict[str, str] | None,
              id_field: str | None) -> None:
        self.size = self.path.stat().st_size
        head = self._binary.read(SNIFF_BYTES)
        self.encoding, skip = _encoding_of(head, encoding or "auto")
        self._binary.seek(skip)
        self._text = io.TextIOWrapper(self._binary, encoding=self.encoding, errors="surrogateescape", newline="")
        sample = head[skip:] if self.encoding != "utf-16" else head[:len(head) // 2 * 2]
        first_line = codecs.decode(sample, self.encoding, "replace").split("\n", 1)[0]
        self.delimiter = choose_delimiter(delimiter, first_line)
        self._reader = csv.reader(self._text, delimiter=self.delimiter)
        self._line = 0
        self.header = self._read_header()
        self.columns = map_header(self.header, explicit_map or {}, id_field)
        self.given = frozenset(name for kind, name in self.columns if kind == "field")
        if not any(kind == "field" and name in PHONE_FIELDS for kind, name in self.columns):
            raise AdminError(
                f"no phone column in the header ({', '.join(self.header)}); name one home, work, cell or "
                "phone, or map it with --map \"Column=phone\""
                + ("" if self.delimiter != "," or len(self.header) > 1 else
                   "; if the fields are separated by something else, give it with --delimiter")
            )

    def close(self) -> None:
        self._text.close()

    @property
    def line(self) -> int:
        """The last line read."""
        return self._line

    def bytes_read(self) -> int:
        try:
            return self._binary.tell()
        except (OSError, ValueError):
            return self.size

    def _next(self, issue: Callable[[RowIssue], None]) -> tuple[int, list[str]] | None:
        """(first line, fields) of the next record, or None at the end; CSV errors are reported."""
        while True:
            start = self._line + 1
            try:
                record = next(self._reader)
            except StopIteration:
                return None
            except csv.Error as exc:
                self._line = self._reader.line_num
                issue(RowIssue(start, MALFORMED, f"CSV error: {exc}"))
                continue
            self._line = self._reader.line_num
            if record:
                return start, record

    def _read_header(self) -> list[str]:
        got = self._next(lambda i: None)
        if got is None:
            raise AdminError("the file is empty: expected a header row, then one contact per row")
        line, header = got
        bad = next((b for b in map(_bad_bytes, header) if b), None)
        if bad:
            raise AdminError(
                f"line {line} (the header) is not UTF-8 (bytes {bad}): the file is in another encoding; "
                f"import it with {ENCODING_HINT} (what Excel on Windows writes) or the file's own encoding; "
                "nothing was imported")
        if any("\x00" in h for h in header):
            raise AdminError(f"line {line} (the header) holds a NUL byte: is this a text (CSV) file? Nothing was imported")
        return [h.strip() for h in header]

    def rows(self, issue: Callable[[RowIssue], None], *, skip_to: int = 0) -> Iterator[Row]:
        """The file's rows after the header as Rows; malformed rows and warnings go to ``issue``.
        Rows starting at or before line ``skip_to`` are read past unchecked (a resumed import)."""
        width = len(self.header)
        while (got := self._next(issue)) is not None:
            line, record = got
            if line <= skip_to:
                continue
            if all(not v.strip() for v in record):
                issue(RowIssue(line, MALFORMED, "every field is empty"))
                continue
            problem = self._malformed(record)
            if problem:
                issue(RowIssue(line, MALFORMED, problem))
                continue
            extra: dict[str, str] = {}
            if len(record) != width:
                record, extra = self._fit(line, record, issue)
            row = self._row(line, record, extra)
            if isinstance(row, RowIssue):
                issue(row)
                continue
            yield row

    def _malformed(self, record: list[str]) -> str | None:
        if not _SUSPECT.search("".join(record)):
            return None
        for i, value in enumerate(record):
            name = self.header[i] if i < len(self.header) else f"field {i + 1}"
            if "\x00" in value:
                return f"a NUL byte in column {name}"
            bad = _bad_bytes(value)
            if bad:
                how = (f"not {self.encoding.upper()} text in column {name} (bytes {bad})"
                       if self.encoding != "utf-8" else f"not UTF-8 in column {name} (bytes {bad})")
                return how + (f": if the file is in another encoding, import it again with {ENCODING_HINT} "
                              "(rows already imported are not imported twice)" if self.encoding == "utf-8" else "")
        return None

    def _fit(self, line: int, record: list[str], issue) -> tuple[list[str], dict[str, str]]:
        """A record with fewer fields than the header padded with empty ones; one with more cut
        to the header, the extras kept as custom fields extra_1, extra_2 ... (both reported)."""
        width = len(self.header)
        if len(record) < width:
            missing = self.header[len(record):]
            issue(RowIssue(line, WARNING, f"{len(record)} fields, the header has {width}: "
                                          f"{', '.join(missing)} left empty"))
            return record + [""] * (width - len(record)), {}
        extra = {f"extra_{i + 1}": v for i, v in enumerate(record[width:]) if v != ""}
        issue(RowIssue(line, WARNING, f"{len(record)} fields, the header has {width}: the extra ones kept as "
                                      + (", ".join(extra) if extra else "nothing (they are empty)")))
        return record[:width], extra

    def _row(self, line: int, record: list[str], extra: dict[str, str]) -> Row | RowIssue:
        values: dict[str, str] = {}
        custom: dict[str, str] = {}
        for (kind, name), value in zip(self.columns, record):
            if kind == "field":
                values[name] = value.strip()
            elif kind == "custom" and value != "":
                custom[name] = value
        custom.update(extra)
        return make_row(line, values, custom, self.given)
