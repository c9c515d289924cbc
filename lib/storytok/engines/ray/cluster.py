"""Reaching a Ray cluster: RAY_ADDRESS's, or a local one started with WORKERS CPUs.

Ray is an optional extra, so it is imported here and only when an engine call needs it;
without it the user is told which command installs it. RAY_ADDRESS is Ray's own variable
(`host:6379` of a head node, `ray://host:10001` for Ray Client, or `auto`). Before handing
an address to ray.init, which retries an unreachable one for a minute or more, one TCP
connection is tried with a short timeout, so a typo fails in seconds with one line.

A Ray already initialized in this process (a test session, a notebook, a user's own
pipeline) is used as it is.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
from dataclasses import dataclass

from storytok.errors import StorytokError
from storytok.parallel import resolve_workers

CONNECT_TIMEOUT_S = 5.0
SETUP_HINT = "run `make setup-ray` (pip install 'storytok[ray]')"


def require_ray():
    """The ray module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise StorytokError(f"ENGINE=ray needs Ray, which is not installed in {sys.prefix}; {SETUP_HINT}") from None
    return ray


@dataclass
class Cluster:
    address: str | None      # RAY_ADDRESS, None for a local Ray started (or found) in this process
    cpus: int                # CPUs the cluster has for tasks
    started_here: bool       # a local Ray this process started (stopped again by `close`)

    def describe(self) -> str:
        where = f"cluster at {self.address}" if self.address else ("local Ray" if self.started_here else "Ray")
        return f"{where}, {self.cpus} CPU{'s' if self.cpus != 1 else ''}"

    def close(self) -> None:
        if self.started_here:
            import ray
            ray.shutdown()


def connect(workers: int | None = None) -> Cluster:
    """Ray initialized: the one already running in this process, RAY_ADDRESS's cluster, or a
    local one with `workers` CPUs (default: all cores)."""
    ray = require_ray()
    if ray.is_initialized():
        return Cluster(None, _cpus(ray), False)
    address = os.environ.get("RAY_ADDRESS", "").strip() or None
    if address is not None:
        check_reachable(address)
    kwargs = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
                  configure_logging=True)
    try:
        if address is None:
            ray.init(num_cpus=resolve_workers(workers), **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
        if address is None:
            raise StorytokError(f"cannot start a local Ray ({_first_line(e)})") from None
        if _auth_error(e):
            raise StorytokError(f"RAY_ADDRESS={address}: the cluster there wants Ray's authentication token; set "
                                f"RAY_AUTH_MODE=token and give the cluster's token (RAY_AUTH_TOKEN or "
                                f"~/.ray/auth_token), as for any Ray client") from None
        raise StorytokError(f"RAY_ADDRESS={address}: cannot join the Ray cluster there ({_first_line(e)})") from None
    return Cluster(address, _cpus(ray), address is None)


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return (lines[0] if lines else type(e).__name__)[:300]


def _auth_error(e: BaseException) -> bool:
    while e is not None:
        if type(e).__name__ == "AuthenticationError" or "InvalidAuthToken" in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


def _cpus(ray) -> int:
    return max(int(ray.cluster_resources().get("CPU", 1)), 1)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """One TCP connection to host:port of the address (skipped for `auto` and `local`, which
    Ray resolves itself); a one-line StorytokError when nothing answers."""
    if address in ("auto", "local"):
        return
    rest = address.split("://", 1)[1] if "://" in address else address
    host, _, port = rest.rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        raise StorytokError(f"RAY_ADDRESS={address}: expected host:port (a head node, e.g. 10.0.0.5:6379), "
                            f"ray://host:10001, or auto")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as e:
        reason = "timed out" if isinstance(e, socket.timeout) else (e.strerror or str(e))
        raise StorytokError(f"RAY_ADDRESS={address}: no Ray cluster answers there ({reason}); start one with "
                            f"`ray start --head`, or unset RAY_ADDRESS to run a local Ray with WORKERS CPUs") from None
