#!/usr/bin/env python3
"""Parses every .bicep file under a directory with pycep-parser and prints one JSON document.

Used by tests/deploy_template.rs, which checks the template against the binary's settings table.

Output: {"files": {"<path relative to the directory>": <pycep JSON of that file>, ...}}

pycep's JSON drops the difference between an identifier (`location`) and a string literal
(`'location'`): both become "location". We keep it by marking identifiers, so the output has
{"$ref": "name"} wherever the Bicep source names a parameter, variable, resource, module or
property, and plain strings only for literals. `${...}` interpolations stay inside their string.

Exit codes: 0 ok; 1 a file failed to parse (its path and the parser's message on stderr);
3 pycep-parser is not installed (how to get it on stderr).
"""

import json
import sys
from pathlib import Path

PIN = "pycep-parser==0.7.1"

try:
    from lark import Token
    from pycep import BicepParser
    from pycep.transformer import BicepToJson
except ImportError as e:  # pragma: no cover - depends on the environment
    sys.stderr.write(
        f"pycep-parser is not installed for {sys.executable} ({e}).\n"
        "Run .ci/test (it creates target/pycep-venv), or by hand:\n"
        "  python3 -m venv target/pycep-venv && "
        "target/pycep-venv/bin/pip install -r tests/python/requirements-bicep.txt\n"
        "then point PYCEP_PYTHON at target/pycep-venv/bin/python.\n"
    )
    sys.exit(3)


class Ident(str):
    """A string that was an identifier in the source."""


class MarkingTransformer(BicepToJson):
    # The grammar sends identifiers (token STRING) and quoted strings (QUOTED_INTERPOLATION)
    # through the same `string` rule; keep the identifiers recognisable.
    def string(self, arg):
        tok = arg[0]
        if isinstance(tok, Token) and tok.type == "STRING":
            return Ident(str(tok))
        return super().string(arg)


def mark(value):
    if isinstance(value, Ident):
        return {"$ref": str(value)}
    if isinstance(value, dict):
        return {k: mark(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mark(v) for v in value]
    return value


def main() -> int:
    if len(sys.argv) != 2:
        sys.stderr.write("usage: bicep_to_json.py DIR\n")
        return 2
    root = Path(sys.argv[1])
    files = sorted(root.rglob("*.bicep"))
    if not files:
        sys.stderr.write(f"no .bicep files under {root}\n")
        return 1
    parser = BicepParser()
    out = {}
    for path in files:
        rel = path.relative_to(root).as_posix()
        try:
            # The same steps as BicepParser.parse, with the marking transformer.
            tree = parser._create_tree(text=None, file_path=path)
            out[rel] = mark(MarkingTransformer(add_line_numbers=False).transform(tree))
        except Exception as e:  # noqa: BLE001 - report any parser failure with the file
            sys.stderr.write(f"{path}: Bicep parse failed ({PIN}): {type(e).__name__}: {e}\n")
            return 1
    json.dump({"files": out}, sys.stdout, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
