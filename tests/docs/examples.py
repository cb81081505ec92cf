"""The shell examples of a documentation page, and the notation that says what each should answer.

A page's fenced ``sh`` blocks run in order, as one script, as a reader would paste them. After a command, a
comment line ``# → STATUS [BODY]`` says what its last HTTP request answered: the status, and optionally the
JSON body, in which ``…`` stands for any value (``"id": …``), the rest of a list (``[{"a": 1}, …]``), or any
text inside a string (``"tlmd_…"``); an object lists only the fields that matter. The body may go on over the
following comment lines. A block whose first line is ``# not run here: <why>`` is shown to the reader but
not run (it starts the server, or changes the machine).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Step",
    "Expectation",
    "steps_of",
    "skipped_blocks",
    "script_of",
    "parse_expected",
    "matches",
    "ANY",
    "SKIP_MARK",
]

SKIP_MARK = "# not run here"
ARROW = "# →"
ANY = "\u2026ANY"
_BLOCK = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)


@dataclass
class Expectation:
    status: int
    body: str  # the expected body as written (may be empty)
    line: int  # where it is on the page, for messages


@dataclass
class Step:
    command: str
    line: int
    expect: list[Expectation] = field(default_factory=list)


def steps_of(page: str) -> list[Step]:
    """The commands of the page's runnable ``sh`` blocks, each with the expectations written after it."""
    steps: list[Step] = []
    for block in _BLOCK.finditer(page):
        if block.group(1) not in ("sh", "bash", "shell"):
            continue
        body = block.group(2)
        if body.lstrip().startswith(SKIP_MARK):
            continue
        first_line = page.count("\n", 0, block.start(2)) + 1
        steps.extend(_steps_of_block(body, first_line))
    return steps


def skipped_blocks(page: str) -> list[tuple[int, str]]:
    """The ``sh`` blocks marked not to run: (line, the reason given after the mark)."""
    out = []
    for block in _BLOCK.finditer(page):
        body = block.group(2).lstrip()
        if block.group(1) in ("sh", "bash", "shell") and body.startswith(SKIP_MARK):
            first = body.splitlines()[0]
            out.append((page.count("\n", 0, block.start(2)) + 1, first[len(SKIP_MARK) :].lstrip(":").strip()))
    return out


def _steps_of_block(body: str, first_line: int) -> list[Step]:
    steps: list[Step] = []
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        line, number = lines[i], first_line + i
        stripped = line.strip()
        if stripped.startswith(ARROW):
            expected = [stripped[len(ARROW) :].strip()]
            while i + 1 < len(lines) and re.match(r"^\s*#\s{2,}\S", lines[i + 1]):
                i += 1
                expected.append(lines[i].strip().lstrip("#").strip())
            status, _, rest = " ".join(expected).partition(" ")
            if not steps:
                raise ValueError(f"line {number}: an expectation with no command before it")
            steps[-1].expect.append(Expectation(int(status), rest.strip(), number))
        elif stripped and not stripped.startswith("#"):
            command = [line]
            while command[-1].rstrip().endswith("\\") or _open_quote(command) or _open_compound(command):
                i += 1
                command.append(lines[i])
            steps.append(Step("\n".join(command), number))
        i += 1
    return steps


_OPENS = re.compile(r"^\s*(for|while|until|if|case)\b")
_CLOSES = re.compile(r"^\s*(done|fi|esac)\b")


def _open_compound(command: list[str]) -> bool:
    """True inside a loop or a condition (``for … done``): one step, its body run as a whole."""
    depth = sum(1 for line in command if _OPENS.match(line)) - sum(1 for line in command if _CLOSES.match(line))
    return depth > 0


def _open_quote(command: list[str]) -> bool:
    """True while a quoted string (a JSON body over several lines) is still open; quotes inside the other
    kind of quotes, and in a trailing comment (`# the tenant's key`), do not count."""
    quote = ""
    for line in command:
        previous = " "
        for ch in line:
            if quote:
                if ch == quote and not (quote == '"' and previous == "\\"):
                    quote = ""
            elif ch in "'\"":
                quote = ch
            elif ch == "#" and previous in " \t":
                break  # a comment, to the end of the line
            previous = ch
    return quote == "'"


def script_of(steps: list[Step], trace: str) -> str:
    """A bash script running the steps; ``curl`` keeps each answer's status and body under ``trace``."""
    out = [
        "set -eo pipefail",
        f"__trace={trace}",
        "__step=0",
        "curl() {",
        '  local out="$__trace/$__step"; local rc=0',
        '  command curl -sS -o "$out.body" -w \'%{http_code}\' "$@" > "$out.status" || rc=$?',
        '  cat "$out.body"',
        "  [ $rc -eq 0 ] || [ $rc -eq 28 ]  # 28: a stream ended by its --max-time, as the example asks",
        "}",
    ]
    for n, step in enumerate(steps):
        out.append(f"__step={n}")
        out.append(f"echo '@@step {n}' >&2")
        out.append(step.command)
    return "\n".join(out) + "\n"


def parse_expected(text: str) -> Any:
    """The expected body as data: ``…`` becomes ANY where it stands for a value or the rest of a list, is
    dropped where it stands for more fields of an object, and stays inside strings (a wildcard there)."""
    out: list[str] = []
    stack: list[str] = []
    in_string = escaped = False
    i = 0
    while i < len(text):
        ch = text[i]
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif ch in "{[":
            stack.append(ch)
            out.append(ch)
        elif ch in "}]":
            stack.pop()
            out.append(ch)
        elif ch == "…":
            previous = "".join(out).rstrip()[-1:]
            member_position = stack and stack[-1] == "{" and previous in ("{", ",")
            if member_position:
                if previous == ",":  # `, …}`: drop the comma before it
                    while out and out[-1] != ",":
                        out.pop()
                    out.pop()
                else:  # `{…, "a": 1}`: drop the comma after it
                    rest = text[i + 1 :].lstrip()
                    if rest.startswith(","):
                        i = len(text) - len(rest)
            else:
                out.append(json.dumps(ANY))
        else:
            out.append(ch)
        i += 1
    return json.loads("".join(out))


def matches(expected: Any, actual: Any) -> bool:
    if expected == ANY:
        return True
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and matches(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return False
        if expected and expected[-1] == ANY:
            head = expected[:-1]
            return len(actual) >= len(head) and all(matches(e, a) for e, a in zip(head, actual, strict=False))
        return len(expected) == len(actual) and all(matches(e, a) for e, a in zip(expected, actual, strict=True))
    if isinstance(expected, str) and "…" in expected:
        pattern = ".*".join(re.escape(part) for part in expected.split("…"))
        return isinstance(actual, str) and re.fullmatch(pattern, actual, re.S) is not None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    return expected == actual
