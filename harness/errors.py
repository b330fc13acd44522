"""The one exception type that reaches users as a single clear line."""


class UplabError(Exception):
    """A user-facing error: one line naming the problem and the fix."""


def printable(text: str) -> str:
    """`text` as one line without terminal escapes: control characters (ESC, newline, BEL) are
    written as \\x1b, \\n, \\x07. Messages quote paths, ids and YAML from files a user may not trust."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))


def yaml_problem(e: Exception) -> str:
    """Where and what a YAML parser error is, on one line: ` at line L, column C: problem`."""
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    return f"{where}: {problem}"
