"""Subset the dashboard's fonts from Debian's fonts-noto-core into the web package.

The dashboard serves its own fonts (no web font service: it must work offline), so each
script the region writes in renders the same everywhere: Latin with Vietnamese, Khmer,
Lao and Thai. Each font is cut down with fontTools to the code points its script needs
(layout features kept: Khmer, Lao and Thai need their shaping tables), hinting dropped,
and saved as WOFF (zlib; WOFF2 would need brotli, which is not installed). The OFL
licence text is copied from the Debian package's copyright file, and ``SOURCES.md``
names the package version the files were cut from.

Run: ``uv run python scripts/fonts.py`` (needs ``apt-get install fonts-noto-core``).
"""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

from fontTools import subset  # type: ignore[import-untyped]
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]

NOTO = Path("/usr/share/fonts/truetype/noto")
COPYRIGHT = Path("/usr/share/doc/fonts-noto-core/copyright")
OUT = Path(__file__).resolve().parents[1] / "src" / "epibridge" / "web" / "static" / "fonts"
PACKAGE = "fonts-noto-core"

# Joiners, the dotted circle shown under a lone combining mark, and the no-break space.
_SHAPING = [0x00A0, 0x200B, 0x200C, 0x200D, 0x25CC]
_LATIN = [
    *range(0x20, 0x7F),
    *range(0xA0, 0x100),
    0x102,
    0x103,
    0x110,
    0x111,
    0x128,
    0x129,
    0x131,
    0x152,
    0x153,
    0x168,
    0x169,
    0x1A0,
    0x1A1,
    0x1AF,
    0x1B0,
    *range(0x300, 0x305),
    0x309,
    0x323,
    *range(0x1EA0, 0x1EFA),  # Vietnamese precomposed letters
    *range(0x2010, 0x2028),  # dashes, quotes, bullets, ellipsis
    0x2030,
    0x2039,
    0x203A,
    0x20AB,  # dong sign
    0x20AC,
    0x2122,
    *range(0x2190, 0x2194),  # arrows
    0x2212,
    0x2248,
    0x2264,
    0x2265,
    0x25B2,
    0x25BC,
]
#: (output file stem, source TTF, code points, the CSS unicode-range it serves)
FONTS = [
    ("NotoSans-Regular", "NotoSans-Regular.ttf", _LATIN),
    ("NotoSans-Bold", "NotoSans-Bold.ttf", _LATIN),
    (
        "NotoSansKhmer-Regular",
        "NotoSansKhmer-Regular.ttf",
        [*range(0x1780, 0x1800), *range(0x19E0, 0x1A00), *_SHAPING],
    ),
    ("NotoSansLao-Regular", "NotoSansLao-Regular.ttf", [*range(0x0E80, 0x0F00), *_SHAPING]),
    ("NotoSansThai-Regular", "NotoSansThai-Regular.ttf", [*range(0x0E00, 0x0E80), *_SHAPING]),
]


def _subset(source: Path, codepoints: list[int], out: Path) -> int:
    options = subset.Options()
    options.layout_features = ["*"]
    options.hinting = False
    options.desubroutinize = True
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 13, 14]  # keep copyright and licence names
    options.flavor = "woff"
    font = TTFont(source)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=codepoints)
    subsetter.subset(font)
    font.flavor = "woff"
    font.save(out)
    return out.stat().st_size


def _licence() -> str:
    """The OFL 1.1 text from the Debian copyright file (its ``License: OFL-1.1`` stanza)."""
    text = COPYRIGHT.read_text(encoding="utf-8")
    match = re.search(r"^License: OFL-1\.1\n((?: .*\n?)+)", text, re.MULTILINE)
    if match is None:
        raise SystemExit(f"no OFL-1.1 licence text in {COPYRIGHT}")
    lines = [line[1:] if line.startswith(" ") else line for line in match.group(1).splitlines()]
    body = "\n".join("" if line == "." else line for line in lines).strip()
    return (
        "Noto fonts: Copyright 2010, 2012-2020 Google Inc.; 2015-2020 Google LLC.\n"
        "This Font Software is licensed under the SIL Open Font License, Version 1.1.\n\n"
        "SIL OPEN FONT LICENSE Version 1.1 - 26 February 2007\n\n" + body + "\n"
    )


def _version() -> str:
    answer = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", PACKAGE], capture_output=True, text=True, check=True
    )
    return answer.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for stem, source, codepoints in FONTS:
        size = _subset(NOTO / source, codepoints, out / f"{stem}.woff")
        rows.append(f"| `{stem}.woff` | `{NOTO / source}` | {len(set(codepoints))} | {size:,} |")
        print(f"{stem}.woff: {size:,} bytes")
    (out / "OFL.txt").write_text(_licence(), encoding="utf-8")
    version = _version()
    (out / "SOURCES.md").write_text(
        "# Fonts\n\n"
        f"Subsets of the Noto fonts in Debian's `{PACKAGE}` package, version `{version}`,\n"
        "made by `scripts/fonts.py` with fontTools (layout tables kept, hinting dropped,\n"
        "WOFF). Licensed under the SIL Open Font License 1.1 (`OFL.txt`, from the Debian\n"
        "package's copyright file); Copyright 2012 Google Inc. / the Noto Project Authors.\n\n"
        "| file | cut from | code points | bytes |\n|---|---|---|---|\n" + "\n".join(rows) + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
