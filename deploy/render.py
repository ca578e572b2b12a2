"""Fill the ``${NAME}`` placeholders of a deploy/ template from an environment file.

Usage::

    python deploy/render.py TEMPLATE --env-file /etc/paywatch/paywatch.env [NAME=VALUE ...] > OUT

Only ``${UPPER_CASE}`` placeholders are replaced, so nginx's own ``$host`` or
``$remote_addr`` pass through untouched (unlike envsubst with no list). A
placeholder with no value is an error naming it: a half-rendered config must
never reach nginx or supervisor. ``ENV_FILE`` is the environment file's
absolute path, so the supervisor config can hand it to deploy/with-env.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def read_env_file(path: Path) -> dict[str, str]:
    """Return the KEY=value pairs of an environment file (comments and blank lines skipped).

    The file is also sourced by /bin/sh (deploy/with-env), so a value is either
    bare or wholly inside single or double quotes; the quotes are dropped here
    as the shell would drop them.
    """
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = LINE.match(line)
        if match is None:
            raise ValueError(f"{path}:{number}: not a KEY=value line: {line!r}")
        key, value = match.group(1), match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def render(template: str, values: dict[str, str]) -> str:
    """Return the template with every ``${NAME}`` replaced; raise KeyError naming the missing ones."""
    missing = sorted({name for name in PLACEHOLDER.findall(template) if name not in values})
    if missing:
        raise KeyError(f"no value for {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def main(argv: list[str] | None = None) -> int:
    """Render TEMPLATE to stdout (or --output); return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template", type=Path)
    parser.add_argument("--env-file", type=Path, help="KEY=value file, e.g. /etc/paywatch/paywatch.env")
    parser.add_argument("--output", "-o", type=Path, help="write here instead of stdout")
    parser.add_argument("overrides", nargs="*", metavar="NAME=VALUE", help="values that win over the file's")
    args = parser.parse_args(argv)
    values: dict[str, str] = {}
    if args.env_file:
        values.update(read_env_file(args.env_file))
        values["ENV_FILE"] = str(args.env_file.resolve())
    for item in args.overrides:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"not NAME=VALUE: {item!r}")
        values[name] = value
    try:
        text = render(args.template.read_text(), values)
    except KeyError as exc:
        print(f"{args.template}: {exc.args[0]}", file=sys.stderr)
        return 2
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
