"""Write the generated reference tables into docs/ (run after changing a schema or rule)."""

from __future__ import annotations

from pathlib import Path

from epibridge.model.docs import generated_blocks, render

DOCS = Path(__file__).resolve().parent.parent / "docs"


def main() -> None:
    for name, blocks in generated_blocks().items():
        path = DOCS / name
        path.write_text(render(path.read_text(encoding="utf-8"), blocks), encoding="utf-8")
        print(f"rendered {path}")


if __name__ == "__main__":
    main()
