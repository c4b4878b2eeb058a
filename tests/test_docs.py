"""Docs match the code: every CLI command and option, every schema field, every rule."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.core import TyperArgument, TyperGroup

from epibridge.cli import app
from epibridge.model.docs import generated_blocks, render

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _commands() -> dict[str, Any]:
    """Every command by its full name, sub-commands of groups included (`agreements check`)."""
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    found: dict[str, Any] = {}
    pending = [("", group)]
    while pending:
        prefix, current = pending.pop()
        for name, command in current.commands.items():
            full = f"{prefix}{name}"
            found[full] = command
            if isinstance(command, TyperGroup):
                pending.append((f"{full} ", command))
    return found


def test_every_command_and_option_is_documented() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for name, command in _commands().items():
        assert f"`epibridge {name}`" in text, f"command {name} is not in docs/cli.md"
        for param in command.params:
            if isinstance(param, TyperArgument):
                shown = param.metavar or str(param.name).upper()
                assert f"`{shown}`" in text, f"{name} argument {shown} is not in docs/cli.md"
            else:
                for opt in param.opts + param.secondary_opts:
                    assert f"`{opt}`" in text, f"{name} {opt} is not in docs/cli.md"


def test_every_command_has_help() -> None:
    for name, command in _commands().items():
        assert command.help, f"{name} has no help text"


@pytest.mark.parametrize("doc", sorted(generated_blocks()))
def test_generated_tables_are_current(doc: str) -> None:
    current = (DOCS / doc).read_text(encoding="utf-8")
    assert render(current, generated_blocks()[doc]) == current, (
        f"docs/{doc} is stale: run `uv run python scripts/render_docs.py`"
    )


def test_every_profile_key_is_documented() -> None:
    from epibridge import profiles

    text = (DOCS / "profiles.md").read_text(encoding="utf-8")
    for attr in dir(profiles):
        if re.fullmatch(r"_[A-Z]+_KEYS", attr):
            for key in getattr(profiles, attr):
                assert f"`{key}`" in text, f"profile key {key} ({attr}) not in profiles.md"


def test_docs_links_resolve() -> None:
    for doc in [*DOCS.rglob("*.md"), DOCS.parent / "README.md"]:
        for target in re.findall(r"\]\(([^)#:]+)\)", doc.read_text(encoding="utf-8")):
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


#: Variables read from the environment that are the operating system's, not settings.
_SYSTEM_VARIABLES = {"USER"}


def test_every_environment_variable_read_is_documented() -> None:
    """A setting read from the environment is a setting: docs/ must name it."""
    source = Path(__file__).resolve().parent.parent / "src" / "epibridge"
    pattern = re.compile(r"""environ(?:\.get)?[(\[]\s*["']([A-Z][A-Z0-9_]+)["']""")
    read = {
        name
        for path in source.rglob("*.py")
        for name in pattern.findall(path.read_text(encoding="utf-8"))
    } - _SYSTEM_VARIABLES
    assert "SPARK_DRIVER_MEMORY" in read  # the pattern finds what it should
    docs = "\n".join(p.read_text(encoding="utf-8") for p in DOCS.rglob("*.md"))
    missing = sorted(n for n in read if f"`{n}`" not in docs and f"`${n}`" not in docs)
    assert not missing, f"environment variables read but not documented in docs/: {missing}"


def test_the_complete_profile_example_is_the_shipped_profile() -> None:
    import tomllib

    from epibridge.profiles import shipped

    text = (DOCS / "profiles.md").read_text(encoding="utf-8")
    block = text.split("## A complete example", 1)[1].split("```toml", 1)[1].split("```", 1)[0]
    documented = tomllib.loads(block)
    actual = tomllib.loads(shipped()[documented["profile"]["name"]].read_text(encoding="utf-8"))
    assert documented == actual
