"""`telemetra errors-table`: the error reference (docs/errors.md) written from the error classes.

Every ``TelemetraError`` subclass that reaches clients gives a row for its ``code`` and one for each of its
``variants``; the table lies between two markers so that the prose around it is kept. `--write` rewrites it,
`--check` exits 1 when it is stale (a test does the same).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NamedTuple

import typer

from telemetra.cli.common import app
from telemetra.errors import TelemetraError

__all__ = ["ErrorRow", "error_rows", "errors_table", "with_table", "ERRORS_DOC", "START", "END"]

START, END = "<!-- errors:start -->", "<!-- errors:end -->"
ERRORS_DOC = Path("docs") / "errors.md"


class ErrorRow(NamedTuple):
    status: int
    code: str
    meaning: str
    raised_as: str


def _subclasses(cls: type[TelemetraError]) -> list[type[TelemetraError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub))
    return found


def _meaning(cls: type[TelemetraError]) -> str:
    """The class's own message, else the first paragraph of its docstring (never a parent's words)."""
    if "default_message" in cls.__dict__:
        return cls.default_message
    if cls.__doc__:
        return " ".join(cls.__doc__.split("\n\n")[0].split())
    raise ValueError(f"{cls.__name__} ({cls.code}) says nothing of its meaning: give it a default_message")


def error_rows() -> list[ErrorRow]:
    """Every code a client may receive, by status then code (a code declared twice keeps its first row)."""
    # Error classes defined beside their service (the pipeline's, a transport's, an adapter's) exist once
    # their modules are imported: the app imports every one of them.
    import telemetra.api.app  # noqa: F401

    rows: dict[str, ErrorRow] = {}
    for cls in _subclasses(TelemetraError):
        if not cls.sent_to_clients:
            continue
        own = cls.__dict__.get("variants", {})
        for code, meaning in [(cls.code, _meaning(cls)), *own.items()]:
            rows.setdefault(code, ErrorRow(cls.status, code, meaning, cls.__name__))
    return sorted(rows.values(), key=lambda row: (row.status, row.code))


def errors_table() -> str:
    """The markdown table of ``error_rows``."""
    lines = ["| status | code | meaning |", "|---|---|---|"]
    pipe = "\\|"  # a | inside a cell would end it
    lines += [f"| {row.status} | `{row.code}` | {row.meaning.replace('|', pipe)} |" for row in error_rows()]
    return "\n".join(lines)


def with_table(text: str) -> str:
    """``text`` with the table between its markers replaced by the current one."""
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"the markers {START} and {END} are missing")
    return f"{head}{START}\n{errors_table()}\n{END}{tail}"


@app.command("errors-table")
def errors_table_command(
    path: Annotated[Path, typer.Option("--path", help="The page holding the table.")] = ERRORS_DOC,
    write: Annotated[bool, typer.Option("--write", help="Rewrite the table in the page.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when the page's table is stale.")] = False,
) -> None:
    """Print the table of error codes (status, code, meaning), or rewrite or check it in docs/errors.md."""
    if not write and not check:
        typer.echo(errors_table())
        return
    current = path.read_text(encoding="utf-8")
    fresh = with_table(current)
    if check:
        if fresh != current:
            typer.echo(f"{path} is stale: run `telemetra errors-table --write`", err=True)
            raise typer.Exit(1)
        return
    path.write_text(fresh, encoding="utf-8")
    typer.echo(f"wrote {path}")
