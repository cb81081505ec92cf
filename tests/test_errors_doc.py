"""docs/errors.md lists every error code the server may send, written from the error classes."""

from __future__ import annotations

import ast
from pathlib import Path

from typer.testing import CliRunner

from telemetra.cli import app
from telemetra.cli.errors_table import END, START, error_rows, errors_table, with_table

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "telemetra"
ERRORS_DOC = ROOT / "docs" / "errors.md"


def _code_parameters(trees: list[ast.Module]) -> dict[str, int | None]:
    """Functions of the package that take a ``code`` parameter: its position (None: keyword-only)."""
    found: dict[str, int | None] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names = [a.arg for a in node.args.posonlyargs + node.args.args]
                if "code" in names:
                    found[node.name] = names.index("code") - (1 if names[0] in ("self", "cls") else 0)
                elif "code" in [a.arg for a in node.args.kwonlyargs]:
                    found[node.name] = None
    return found


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def codes_in_source() -> dict[str, str]:
    """Every error code written in the package: ``code="..."`` arguments (by keyword or by position), a class's
    ``code = "..."``, a ``code`` parameter's default, and the ``code`` of a hand-built error body."""
    files = sorted(PACKAGE.rglob("*.py"))
    trees = [ast.parse(path.read_text(), str(path)) for path in files]
    takes_code = _code_parameters(trees)
    codes: dict[str, str] = {}
    for path, tree in zip(files, trees, strict=True):
        where = str(path.relative_to(ROOT))
        for node in ast.walk(tree):
            values: list[ast.AST | None] = []
            if isinstance(node, ast.Call):
                values += [k.value for k in node.keywords if k.arg == "code"]
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                index = takes_code.get(name or "")
                if index is not None and index < len(node.args):
                    values.append(node.args[index])
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                positional = [a.arg for a in node.args.posonlyargs + node.args.args]
                with_default = positional[len(positional) - len(node.args.defaults) :]
                defaults = dict(zip(with_default, node.args.defaults, strict=True))
                kw_only = [a.arg for a in node.args.kwonlyargs]
                defaults.update(zip(kw_only, node.args.kw_defaults, strict=True))
                values.append(defaults.get("code"))
            elif isinstance(node, ast.ClassDef):
                for statement in node.body:
                    if isinstance(statement, ast.Assign):
                        for target in statement.targets:
                            if isinstance(target, ast.Name) and target.id == "code":
                                values.append(statement.value)
                            elif isinstance(target, ast.Tuple) and isinstance(statement.value, ast.Tuple):
                                names = [getattr(t, "id", None) for t in target.elts]
                                if "code" in names:
                                    values.append(statement.value.elts[names.index("code")])
            elif isinstance(node, ast.Dict):
                keys = [_literal(k) for k in node.keys]
                if "code" in keys and "error" in keys:
                    values.append(node.values[keys.index("code")])
            for value in values:
                code = _literal(value)
                if code:
                    codes.setdefault(code, f"{where}:{getattr(value, 'lineno', '?')}")
    return codes


def test_every_code_raised_is_documented() -> None:
    documented = {row.code for row in error_rows()}
    raised = codes_in_source()
    assert len(raised) > 80, sorted(raised)  # the scan finds the codes (a broken scan would pass vacuously)
    missing = {code: where for code, where in raised.items() if code not in documented and code != "config_error"}
    assert not missing, f"codes sent but declared in no error class (add them to its `variants`): {missing}"


def test_the_scan_finds_codes_given_by_position_and_by_keyword() -> None:
    raised = codes_in_source()
    # by position (domain helpers), by keyword, as a class attribute, as a default, in a hand-built body
    for code in ("invalid_key", "invalid_timestamp", "missing_api_key", "rule_not_found", "headers_too_large"):
        assert code in raised, code
    assert "batch_rejected" in raised


def test_every_code_has_one_status_and_its_own_meaning() -> None:
    rows = error_rows()
    assert len({row.code for row in rows}) == len(rows)
    for row in rows:
        assert 400 <= row.status < 600 and len(row.meaning) > 10, row
    by_code = {row.code: row for row in rows}
    assert by_code["rule_not_found"].status == 404 and by_code["overloaded"].status == 503
    assert by_code["device_inactive"].status == 403 and by_code["too_many_buckets"].status == 422


def test_the_reference_page_is_current() -> None:
    """`telemetra errors-table --write` rewrites docs/errors.md; a code added without it fails here."""
    text = ERRORS_DOC.read_text()
    assert text.count(START) == 1 and text.count(END) == 1
    assert with_table(text) == text, "docs/errors.md is stale: run `telemetra errors-table --write`"
    for row in error_rows():
        assert f"| {row.status} | `{row.code}` |" in text, row


def test_the_readme_links_the_reference_and_holds_no_table_of_its_own() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "docs/errors.md" in readme
    assert "| 404 `device_not_found`" not in readme and START not in readme


def test_the_command_checks_and_rewrites(tmp_path) -> None:
    page = tmp_path / "errors.md"
    page.write_text(f"# Errors\n\nprose kept\n\n{START}\n| stale |\n{END}\n\nafter\n")
    runner = CliRunner()
    stale = runner.invoke(app, ["errors-table", "--check", "--path", str(page)])
    assert stale.exit_code == 1 and "stale" in stale.output
    assert runner.invoke(app, ["errors-table", "--write", "--path", str(page)]).exit_code == 0
    assert runner.invoke(app, ["errors-table", "--check", "--path", str(page)]).exit_code == 0
    text = page.read_text()
    assert "prose kept" in text and text.endswith(f"{END}\n\nafter\n") and errors_table() in text
