"""A throw-away PostgreSQL cluster (Debian's package) on a free port under a temporary directory.

Never a system service: ``initdb`` and ``pg_ctl`` run from Debian's binaries
against a directory of our own; for tests with fsync off (nothing there must
survive a crash), for benches (``durable=True``) with PostgreSQL's defaults,
as production runs it. ``initdb`` refuses to run as root, so as root they run as the
``postgres`` user (created by Debian's package) through ``runuser``.

Run a command with ``DATABASE_URL`` pointing at a fresh cluster::

    python -m paywatch_dev.postgres -- python -m pytest -m "not browser"

or, in Python::

    with PostgresCluster() as pg:
        os.environ["DATABASE_URL"] = pg.url
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from paywatch_dev.servers import ManagedProcess, free_port

DATABASE = "paywatch"
USER = "paywatch"


def bin_dir() -> Path:
    """Return the directory holding ``initdb`` and ``pg_ctl`` (the newest Debian version)."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found: apt-get install -y postgresql")
    return Path(candidates[-1]).parent


def _run_as() -> list[str]:
    """Return the prefix that runs a command as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return ["runuser", "-u", name, "--"]
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")


class PostgresCluster(ManagedProcess):
    """initdb + pg_ctl start on 127.0.0.1:<free port>; ``url`` is its DATABASE_URL."""

    def __init__(self, port: int | None = None, durable: bool = False) -> None:
        self.port = port or free_port()
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="paywatch-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.url = f"postgres://{USER}@127.0.0.1:{self.port}/{DATABASE}"
        self._bin = bin_dir()
        self._as = _run_as()

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as, *args], capture_output=True, text=True, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
                               f"\n--- server log ---\n{self.log_tail()}")

    @property
    def started(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def start(self) -> PostgresCluster:
        """Create the cluster and its database, start it, and wait until it accepts connections."""
        if self._as:
            user = self._as[2]
            pw = pwd.getpwnam(user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self._run(str(self._bin / "initdb"), "-D", str(self.data), "-U", USER, "-A", "trust",
                  "-E", "UTF8", "--no-locale", "--no-sync")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not self.durable:  # tests: a crash loses nothing they need, and every commit skips its flush
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(str(self._bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log_path), "-o", options,
                  "-w", "-t", "60", "start")
        self._run(str(self._bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, DATABASE)
        return self

    def stop(self) -> None:
        """Stop the server (fast) and remove its directory."""
        if (self.data / "postmaster.pid").exists():
            subprocess.run([*self._as, str(self._bin / "pg_ctl"), "-D", str(self.data), "-m", "fast",
                            "-w", "stop"], capture_output=True, cwd=self.root)
        shutil.rmtree(self.root, ignore_errors=True)


def scratch_database(kind: str, directory: Path) -> tuple[str, PostgresCluster | None]:
    """Return a bench's DATABASE_URL: a started throw-away cluster (stop it) for "postgresql", else a SQLite file.

    The cluster is durable (PostgreSQL's defaults: every commit flushed), as
    production runs it; the tests' clusters skip the flushes.
    """
    if kind == "postgresql":
        cluster = PostgresCluster(durable=True).start()
        return cluster.url, cluster
    return f"sqlite:///{directory / f'bench-{os.getpid()}.sqlite3'}", None


def main(argv: list[str]) -> int:
    """Run ``argv`` (after ``--``) with DATABASE_URL set to a fresh cluster; return its exit code."""
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: python -m paywatch_dev.postgres -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    with PostgresCluster() as cluster:
        print(f"PostgreSQL ({bin_dir().parent.name}) at {cluster.url}", file=sys.stderr, flush=True)
        return subprocess.call(argv, env={**os.environ, "DATABASE_URL": cluster.url})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
