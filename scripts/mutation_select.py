"""Per-mutant test selection for scripts/mutate.sh (mutmut 2.x has none of its own).

`build MODULE`: from a coverage run of the focused tests with the test function as dynamic
context (`.mutmut-coverage`), write `.mutmut-select.json`: for each function of MODULE, the
tests that ran any line of its body. Written into the mutation tree as `mutmut_config.py`, this
file is also mutmut's hook: a mutant inside a function body runs only those tests; one at
module level (constants, decorators, class bodies, defaults), in a function no test reached,
or in code only another process ran, runs the whole focused list. Run from the tree.

`test ARGS`: pytest, for mutmut. mutmut 2.x counts a mutant as killed only when the tests exit
with status 1; one that breaks the import of a test file (pytest's status 2, an error while
collecting) would count as surviving. Any failure kills it here.
"""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path

SELECTION = Path(".mutmut-select.json")
_selection: dict[str, list[str]] | None = None


def _functions(source: str) -> list[tuple[int, int]]:
    """(first, last) body line of every function, innermost last."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            spans.append((node.body[0].lineno, node.end_lineno or node.body[-1].lineno))
    return sorted(spans, key=lambda span: span[1] - span[0], reverse=True)


def _node_id(context: str) -> str | None:
    """`tests.a.test_b.test_c` (coverage's test_function context) -> `tests/a/test_b.py::test_c`."""
    module, _, function = context.rpartition(".")
    if not function.startswith("test"):
        return None
    path = Path(*module.split(".")).with_suffix(".py")
    return f"{path}::{function}" if path.is_file() else None


def build(module: str) -> None:
    """Write the selection for MODULE from `.mutmut-coverage`."""
    from coverage import CoverageData

    data = CoverageData(".mutmut-coverage")
    data.read()
    [measured] = [f for f in data.measured_files() if f.endswith(module)]
    by_line = data.contexts_by_lineno(measured)
    lines: dict[str, list[str]] = {}
    for first, last in _functions(Path(module).read_text()):
        contexts = {c for n in range(first, last + 1) for c in by_line.get(n, [])}
        tests = {c: _node_id(c) for c in contexts}
        # Reached by no test, or also outside a test function (a fixture, another thread), or
        # by a test not named as a module's function: run everything.
        selected = sorted(set(tests.values())) if tests and all(tests.values()) else []
        for n in range(first, last + 1):
            lines[str(n)] = selected  # innermost function last: it wins
    SELECTION.write_text(json.dumps(lines))
    narrowed = sum(1 for tests in lines.values() if tests)
    print(f"per-mutant selection: {narrowed} of {len(lines)} function lines narrowed")


def pre_mutation(context) -> None:
    """mutmut's hook: run only the tests that reached the mutated line's function."""
    global _selection
    if _selection is None:
        _selection = json.loads(SELECTION.read_text()) if SELECTION.is_file() else {}
    tests = _selection.get(str(context.current_line_index + 1))
    if tests:
        context.config.test_command = f"{os.environ['MUTATE_PYTEST']} {' '.join(tests)}"


def run_tests(args: list[str]) -> int:
    """pytest with ARGS: 0 if the tests pass, 1 if they fail in any way."""
    import pytest

    return 0 if pytest.main(args) == 0 else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["build"]:
        build(sys.argv[2])
    elif sys.argv[1:2] == ["test"]:
        sys.exit(run_tests(sys.argv[2:]))
