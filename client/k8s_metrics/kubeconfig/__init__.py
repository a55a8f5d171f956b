"""Connection settings for a kube-apiserver: kubeconfig files, in-cluster service accounts, exec plugins.

The result of every loader is a :class:`ClusterConnection`: a base URL, an :class:`ssl.SSLContext` with
the trust anchors and client certificate already applied, an :class:`httpx.Auth` (or ``None``) and the
cluster's proxy, if any. It works with ``httpx.Client`` and ``httpx.AsyncClient`` (trio or asyncio)::

    conn = load_default()
    with conn.httpx_client() as client:          # or: async with conn.httpx_async_client() as client
        client.get("/apis/metrics.k8s.io/v1beta1/nodes").raise_for_status()

The loaders follow kubectl/client-go:

* :func:`load_kubeconfig`: a file, or ``$KUBECONFIG`` / ``~/.kube/config`` merged like kubectl; what is
  supported and what is refused is listed in :mod:`.files`. Files are read with PyYAML (:mod:`.document`).
* :func:`load_incluster`: ``KUBERNETES_SERVICE_HOST``/``_PORT`` and the service-account directory.
* :func:`load_default`: a kubeconfig if there is one, else the in-cluster service account.

Authentication: :class:`BearerTokenAuth`, :class:`TokenFileAuth` (re-read on rotation),
:class:`ExecAuth` (exec credential plugins), or httpx's basic auth. Every configuration problem is a
:class:`ConfigError` whose message names the file and field.

Modules: :mod:`.connection` (the result, TLS), :mod:`.document` (YAML, typed fields), :mod:`.files`,
:mod:`.incluster`, :mod:`.tokens`, :mod:`.execplugin`.
"""

from .connection import ClusterConnection, ConfigError, ExecPluginError, load_client_certificate
from .execplugin import EXEC_API_VERSIONS, ExecAuth, ExecConfig, ExecCredential
from .files import load_default, load_kubeconfig
from .incluster import DEFAULT_INCLUSTER_ROOT, load_incluster
from .tokens import BearerTokenAuth, TokenFileAuth

__all__ = [
    "DEFAULT_INCLUSTER_ROOT",
    "EXEC_API_VERSIONS",
    "BearerTokenAuth",
    "ClusterConnection",
    "ConfigError",
    "ExecAuth",
    "ExecConfig",
    "ExecCredential",
    "ExecPluginError",
    "TokenFileAuth",
    "load_client_certificate",
    "load_default",
    "load_incluster",
    "load_kubeconfig",
]
