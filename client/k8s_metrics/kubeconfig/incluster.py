"""The in-cluster configuration: a pod's service account, as client-go's ``rest.InClusterConfig``."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from .connection import ClusterConnection, ConfigError, ca_context, normalise_server
from .document import read_file
from .tokens import TokenFileAuth

__all__ = ["DEFAULT_INCLUSTER_ROOT", "incluster_possible", "load_incluster"]

DEFAULT_INCLUSTER_ROOT: Final = "/var/run/secrets/kubernetes.io/serviceaccount"


def load_incluster(
    *, root: str | os.PathLike[str] = DEFAULT_INCLUSTER_ROOT, environ: Mapping[str, str] | None = None
) -> ClusterConnection:
    """Build a connection from a pod's service account.

    Uses ``KUBERNETES_SERVICE_HOST`` and ``KUBERNETES_SERVICE_PORT`` from ``environ`` (default
    ``os.environ``; an IPv6 host is bracketed), ``root/token`` (a :class:`TokenFileAuth`, so rotation is
    followed), ``root/ca.crt`` and the optional ``root/namespace``.

    Raises:
        ConfigError: a variable is unset, or the token or CA file is missing, empty or invalid. (client-go
            falls back to the system trust store when ``ca.crt`` is unreadable; this refuses instead.)
    """
    env = os.environ if environ is None else environ
    host = env.get("KUBERNETES_SERVICE_HOST", "")
    port = env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise ConfigError(
            "not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set"
        )
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    base = Path(root)
    server = normalise_server(f"https://{host}:{port}", "in-cluster")
    auth = TokenFileAuth(base / "token")
    ca_file = base / "ca.crt"
    ssl_context = ca_context(read_file(ca_file, "in-cluster CA"), False, f"in-cluster CA {str(ca_file)!r}")
    namespace = None
    with contextlib.suppress(OSError, UnicodeDecodeError):  # the namespace file is optional
        namespace = (base / "namespace").read_text(encoding="utf-8").strip() or None
    return ClusterConnection(server, ssl_context, auth, None, namespace)


def incluster_possible(root: Path, environ: Mapping[str, str]) -> bool:
    """Whether :func:`load_incluster` could work: the variables are set and the token file exists."""
    return (
        bool(environ.get("KUBERNETES_SERVICE_HOST"))
        and bool(environ.get("KUBERNETES_SERVICE_PORT"))
        and (root / "token").exists()
    )
