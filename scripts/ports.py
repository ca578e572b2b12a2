"""Check that the ports `make run` is about to listen on are free; name each taken one and stop.

Usage: python scripts/ports.py NAME=PORT [NAME=PORT ...]   (exit 0: all free; 1: one or more taken)

Standard library only: scripts/run calls it before anything starts.
"""

import errno
import socket
import sys

HOST = "127.0.0.1"  # where make run's processes listen (Procfile)
ADVICE = {
    "REDIS_PORT": "or use that Redis on purpose: REDIS_URL=redis://{host}:{port}/0 make run",
}


def port_taken(port: int, host: str = HOST) -> bool:
    """Return whether a server could not bind ``host:port`` now (something listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers themselves do: a port left in TIME_WAIT by a stopped run is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise  # e.g. a port below 1024 without root: problems() says so
    return False


def free_port_after(port: int, host: str = HOST, taken: set[int] | None = None) -> int | None:
    """Return the first free port above ``port`` (skipping ``taken``), to suggest one."""
    for candidate in range(port + 1, min(port + 100, 65536)):
        try:
            if candidate not in (taken or set()) and not port_taken(candidate, host):
                return candidate
        except OSError:
            continue
    return None


def problems(ports: dict[str, int], host: str = HOST) -> list[str]:
    """Return one plain sentence per port that cannot be used (taken, or given to two processes)."""
    found = []
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port in seen:
            found.append(f"{name} and {seen[port]} are both {port}: give each process its own port.")
            continue
        seen[port] = name
        try:
            taken = port_taken(port, host)
        except OSError as exc:
            found.append(f"{name}={port} cannot be used: {exc.strerror}.")
            continue
        if taken:
            message = f"{name}={port} is taken: another program already listens on {host}:{port}."
            other = free_port_after(port, host, set(ports.values()))
            if other is not None:
                message += f" Stop it, or choose another port: make run {name}={other}"
            if name in ADVICE:
                message += f", {ADVICE[name].format(host=host, port=port)}"
            found.append(message + ".")
    return found


def parse(arguments: list[str]) -> dict[str, int]:
    """Return {NAME: port} from NAME=PORT arguments; raise ValueError naming a bad one."""
    ports = {}
    for argument in arguments:
        name, _, value = argument.partition("=")
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise ValueError(f"{name or argument} must be a port number (1-65535), not {value!r}")
        ports[name] = int(value)
    return ports


def main(argv: list[str] | None = None) -> int:
    """Check the NAME=PORT arguments; print what is wrong to stderr; return the exit code."""
    try:
        ports = parse(sys.argv[1:] if argv is None else argv)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    found = problems(ports)
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
