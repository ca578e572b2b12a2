"""README.md's configuration table lists every environment variable the code reads, with the default it uses."""

import re

from tests.envvars import APP_FOLDERS, ROOT, variables_read

FOLDERS = (*APP_FOLDERS, "simulator")
# `env.int("NAME", default=30)`: a default written as a number, which the table must show.
NUMERIC_DEFAULT = re.compile(r"""env\.\w+\(\s*["']([A-Z][A-Z0-9_]*)["']\s*,\s*default=([0-9][0-9_.]*)\s*\)""")


def table() -> dict[str, str]:
    """Return each variable the README's configuration table names, with its row's default cell."""
    section = (ROOT / "README.md").read_text().split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 3:
            for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0]):
                rows[name] = cells[1]
    return rows


def test_the_table_lists_every_variable_the_code_reads() -> None:
    read = variables_read(FOLDERS)
    assert {"DATABASE_URL", "MIDTRANS_SERVER_KEY", "SIMULATOR_NOTIFY_URL"} <= read, "the pattern is stale"
    assert read - set(table()) == set(), "add these to README.md's configuration table"


def test_the_table_lists_nothing_that_nothing_reads() -> None:
    scripts = (ROOT / "scripts" / "run").read_text() + (ROOT / "Makefile").read_text()
    stale = {name for name in set(table()) - variables_read(FOLDERS) if not re.search(rf"\b{name}\b", scripts)}
    assert stale == set()


def test_numeric_defaults_match_the_settings() -> None:
    rows = table()
    settings = (ROOT / "project" / "settings.py").read_text()
    found = NUMERIC_DEFAULT.findall(settings)
    assert len(found) > 20, "the pattern is stale"
    for name, literal in found:
        value = f"{float(literal.replace('_', '')):g}"  # 10.0 → 10, 3.05 → 3.05, 1_000 → 1000
        assert f"`{value}`" in rows[name], f"{name}: README.md does not show the default {value}"
