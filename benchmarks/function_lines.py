"""Lines of a module and of each of its top-level functions, as JSON: how much a file (e.g. the CLI)
does itself.

    python benchmarks/function_lines.py adaptor/cli.py
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path


def function_lines(path: Path) -> dict[str, object]:
    source = path.read_text()
    functions = {
        node.name: node.end_lineno - node.lineno + 1
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef) and node.end_lineno is not None
    }
    return {"module": str(path), "lines": len(source.splitlines()), "functions": functions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("module", type=Path)
    print(json.dumps(function_lines(parser.parse_args().module), indent=1))


if __name__ == "__main__":
    main()
