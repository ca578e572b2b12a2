"""deploy/'s files agree with the code: every variable documented, every template fillable."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy"))
import render  # noqa: E402  (deploy/render.py is a script, not a package)

from tests.envvars import variables_read  # noqa: E402

EXAMPLE = ROOT / "deploy" / "paywatch.env.example"
TEMPLATES = sorted((ROOT / "deploy").rglob("*.template"))
# Read by the code but not production settings: the test database's name, the demo admin's password.
NOT_PRODUCTION = {"TEST_DATABASE_NAME", "DEMO_ADMIN_PASSWORD"}


def documented() -> set[str]:
    """Return the names the example sets or shows commented out."""
    return set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", EXAMPLE.read_text(), re.MULTILINE))


def test_the_env_example_lists_every_variable_the_code_reads() -> None:
    read = variables_read()
    assert read, "no variable found: the pattern is stale"
    assert read - NOT_PRODUCTION - documented() == set()


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_every_template_renders_from_the_example(template: Path) -> None:
    values = {**render.read_env_file(EXAMPLE), "ENV_FILE": "/etc/paywatch/paywatch.env"}
    text = render.render(template.read_text(), values)
    assert "${" not in text


def test_render_names_a_missing_value_and_leaves_nginx_variables_alone() -> None:
    assert render.render("a ${ONE} $host", {"ONE": "1"}) == "a 1 $host"
    with pytest.raises(KeyError, match="TWO"):
        render.render("${ONE} ${TWO}", {"ONE": "1"})


def test_the_tests_and_benches_run_daphne_with_productions_options() -> None:
    """The Procfile, deploy/'s supervisor program and the test stack start daphne with the same options."""
    from paywatch_dev.stack import DAPHNE_OPTIONS

    options = " ".join(DAPHNE_OPTIONS)
    assert options in (ROOT / "Procfile").read_text()
    assert options in (ROOT / "deploy" / "supervisor" / "paywatch.conf.template").read_text()
