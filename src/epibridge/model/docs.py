"""Render the reference tables of the docs from the code, so they cannot drift.

``scripts/render_docs.py`` writes these between markers in ``docs/*.md``; a test renders
them again and fails when a doc is stale.
"""

from __future__ import annotations

import pyarrow as pa

from epibridge.model.schema import SCHEMAS

BEGIN = "<!-- BEGIN GENERATED {name} -->"
END = "<!-- END GENERATED {name} -->"


def _type(t: pa.DataType) -> str:
    return {
        "string": "text",
        "date32[day]": "date",
        "int8": "integer",
        "int16": "integer",
        "int32": "integer",
        "int64": "integer",
        "float": "decimal",
        "bool": "true/false",
    }.get(str(t), str(t))


def schema_table(name: str) -> str:
    schema = SCHEMAS[name]
    lines = ["| field | type | required | meaning |", "|---|---|---|---|"]
    for f in schema:
        meta = f.metadata or {}
        desc = meta.get(b"description", b"").decode().replace("|", "\\|")
        lines.append(f"| `{f.name}` | {_type(f.type)} | {'no' if f.nullable else 'yes'} | {desc} |")
    return "\n".join(lines)


def rules_table() -> str:
    from epibridge.pipeline.rules import RULES

    lines = ["| rule | what it catches |", "|---|---|"]
    lines += [f"| `{rule}` | {text} |" for rule, text in RULES.items()]
    return "\n".join(lines)


def replace_block(document: str, name: str, body: str) -> str:
    begin, end = BEGIN.format(name=name), END.format(name=name)
    head, sep, rest = document.partition(begin)
    if not sep:
        raise ValueError(f"marker {begin} not found")
    _, sep2, tail = rest.partition(end)
    if not sep2:
        raise ValueError(f"marker {end} not found")
    return f"{head}{begin}\n{body}\n{end}{tail}"


def render(document: str, blocks: dict[str, str]) -> str:
    for name, body in blocks.items():
        document = replace_block(document, name, body)
    return document


def generated_blocks() -> dict[str, dict[str, str]]:
    """doc file (relative to docs/) -> {block name -> rendered body}."""
    return {
        "data-model.md": {
            name: schema_table(name)
            for name in ("cases", "counts", "denominators", "reporting", "quarantine")
        },
        "validation.md": {"rules": rules_table()},
        "sharing-agreements.md": {
            name: schema_table(name)
            for name in ("release_counts", "release_reporting", "release_denominators")
        },
    }
