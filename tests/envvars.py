"""The environment variables the code reads, found in its source: shared by the tests that check their docs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The apps and the settings; the simulator (its own process) is listed separately where its docs are checked.
APP_FOLDERS = ("project", "checkout", "realtime", "reconcile")
_NAME = r"""["']([A-Z][A-Z0-9_]*)["']"""
READ = re.compile(
    rf"""(?:env\.\w+|os\.environ\.get|os\.getenv)\(\s*{_NAME}"""  # env.int("NAME", …), os.environ.get("NAME")
    rf"""|os\.environ\[\s*{_NAME}\s*\]"""                       # os.environ["NAME"]
    rf"""|{_NAME}\s+(?:not\s+)?in\s+os\.environ"""              # "NAME" in os.environ
    rf"""|^\w*ENV\w*\s*=\s*{_NAME}""",                          # MULTIPROC_ENV = "NAME", then os.environ[MULTIPROC_ENV]
    re.MULTILINE,
)


def variables_read(folders: tuple[str, ...] = APP_FOLDERS) -> set[str]:
    """Return the names of the environment variables that the Python files under ``folders`` read."""
    return {name for folder in folders for path in (ROOT / folder).rglob("*.py")
            for match in READ.findall(path.read_text()) for name in match if name}
