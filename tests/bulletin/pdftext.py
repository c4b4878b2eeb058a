"""Just enough PDF reading to test the bulletin: objects, page count and the page text.

fpdf2 writes text in embedded TrueType fonts as glyph codes (Identity-H), so the words
are not in the file as such; each font's ToUnicode CMap maps the codes back. This reads
an **uncompressed** fpdf2 file (``render_pdf(..., compress=False)``): the objects, the
``/Count`` of the page tree, and the text of every content stream, decoded font by font.
"""

from __future__ import annotations

import re

_OBJECT = re.compile(rb"(\d+) 0 obj(.*?)endobj", re.DOTALL)
_FONTS = re.compile(rb"/Font\s*<<(.*?)>>", re.DOTALL)
_REF = re.compile(rb"/(\w+)\s+(\d+) 0 R")
_CHARS = re.compile(rb"<([0-9A-Fa-f]{4})>\s*<([0-9A-Fa-f]+)>")
_RANGES = re.compile(rb"<([0-9A-Fa-f]{4})>\s*<([0-9A-Fa-f]{4})>\s*<([0-9A-Fa-f]+)>")
_TOKENS = re.compile(rb"/(\w+)\s+[\d.]+\s+Tf|\(((?:\\.|[^\\()])*)\)\s*Tj|(\bET\b)", re.DOTALL)
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def objects(data: bytes) -> dict[int, bytes]:
    return {int(m.group(1)): m.group(2) for m in _OBJECT.finditer(data)}


def page_count(data: bytes) -> int:
    found = [
        int(m.group(1))
        for body in objects(data).values()
        if b"/Type /Pages" in body
        for m in [re.search(rb"/Count (\d+)", body)]
        if m is not None
    ]
    assert len(found) == 1, "one page tree"
    return found[0]


def _cmap(body: bytes) -> dict[int, str]:
    out: dict[int, str] = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", body, re.DOTALL):
        for code, uni in _CHARS.findall(block):
            out[int(code, 16)] = bytes.fromhex(uni.decode()).decode("utf-16-be")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", body, re.DOTALL):
        for first, last, uni in _RANGES.findall(block):
            start = int(uni, 16)
            for i, code in enumerate(range(int(first, 16), int(last, 16) + 1)):
                out[code] = chr(start + i)
    return out


def _unescape(raw: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i : i + 1] == b"\\":
            nxt = raw[i + 1 : i + 2]
            octal = re.match(rb"[0-7]{1,3}", raw[i + 1 : i + 4])
            if octal:
                out.append(int(octal.group(0), 8))
                i += 1 + len(octal.group(0))
                continue
            out += _ESCAPES.get(nxt, nxt)
            i += 2
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


def text(data: bytes) -> str:
    """The text of every content stream: one line per text object (BT ... ET)."""
    held = objects(data)
    fonts: dict[bytes, dict[int, str]] = {}
    for body in held.values():
        for block in _FONTS.findall(body):
            for name, number in _REF.findall(block):
                unicode_ref = re.search(rb"/ToUnicode (\d+) 0 R", held[int(number)])
                if unicode_ref is not None:
                    fonts[name] = _cmap(held[int(unicode_ref.group(1))])
    lines: list[str] = []
    for body in held.values():
        if b"stream" not in body or b"BT" not in body:
            continue
        current: dict[int, str] = {}
        line: list[str] = []
        for font, raw, end in _TOKENS.findall(body):
            if font:
                current = fonts.get(font, {})
            elif end:
                lines.append("".join(line))
                line = []
            else:
                codes = _unescape(raw)
                line.append(
                    "".join(
                        current.get(int.from_bytes(codes[i : i + 2], "big"), "\ufffd")
                        for i in range(0, len(codes) - 1, 2)
                    )
                )
    return "\n".join(lines)
