"""The files a simulated cluster writes into its state directory (`StatePaths`): certificates,
keys, the policy in force and the kubeconfigs (`write_kubeconfigs`), and the users they name.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .policy import Policy

ADMIN_USER = "kubernetes-admin"
LIMITED_USER = "jane"
LIMITED_NAMESPACE = "team-a"
METRICS_SERVER_USER = "system:serviceaccount:kube-system:metrics-server"
FRONT_PROXY_CLIENT_CN = "front-proxy-client"


@dataclass(frozen=True, slots=True)
class StatePaths:
    """Where a cluster writes its files (all under `root`)."""

    root: Path

    @property
    def ca_cert(self) -> Path:
        """The cluster CA: signs kubelet and apiserver serving certs and client certs."""
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def kubelet_ca(self) -> Path:
        """The bundle to verify kubelets with (`--kubelet-certificate-authority`): the cluster CA."""
        return self.ca_cert

    @property
    def front_proxy_ca_cert(self) -> Path:
        return self.root / "front-proxy-ca.crt"

    @property
    def front_proxy_ca_key(self) -> Path:
        return self.root / "front-proxy-ca.key"

    @property
    def front_proxy_client_cert(self) -> Path:
        return self.root / "front-proxy-client.crt"

    @property
    def front_proxy_client_key(self) -> Path:
        return self.root / "front-proxy-client.key"

    @property
    def apiserver_cert(self) -> Path:
        return self.root / "apiserver.crt"

    @property
    def apiserver_key(self) -> Path:
        return self.root / "apiserver.key"

    @property
    def admin_cert(self) -> Path:
        return self.root / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.root / "admin.key"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def metrics_server_kubeconfig(self) -> Path:
        return self.root / "metrics-server.kubeconfig"

    @property
    def policy(self) -> Path:
        """A copy of the policy in force, for reference."""
        return self.root / "policy.yaml"

    @property
    def kubelet_certs(self) -> Path:
        return self.root / "kubelets"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_kubeconfigs(paths: StatePaths, api_url: str, ca_pem: bytes, policy: Policy) -> None:
    """`kubeconfig` (contexts admin = token, admin-cert = client certificate, limited = the
    limited user's token in its namespace) and `metrics-server.kubeconfig` (the service account's
    token), both trusting the cluster CA `ca_pem` and owner-only."""
    cluster = {
        "name": "kubesim",
        "cluster": {"server": api_url, "certificate-authority-data": _b64(ca_pem)},
    }
    admin_token = policy.token_for(ADMIN_USER)
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "contexts": [
            {"name": "admin", "context": {"cluster": "kubesim", "user": "admin"}},
            {"name": "admin-cert", "context": {"cluster": "kubesim", "user": "admin-cert"}},
            {
                "name": "limited",
                "context": {"cluster": "kubesim", "user": LIMITED_USER, "namespace": LIMITED_NAMESPACE},
            },
        ],
        "current-context": "admin",
        "users": [
            {"name": "admin", "user": {"token": admin_token}},
            {
                "name": "admin-cert",
                "user": {
                    "client-certificate-data": _b64(paths.admin_cert.read_bytes()),
                    "client-key-data": _b64(paths.admin_key.read_bytes()),
                },
            },
            {"name": LIMITED_USER, "user": {"token": policy.token_for(LIMITED_USER)}},
        ],
    }
    paths.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
    paths.kubeconfig.chmod(0o600)
    sa_config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "contexts": [
            {
                "name": "metrics-server",
                "context": {"cluster": "kubesim", "user": "metrics-server", "namespace": "kube-system"},
            }
        ],
        "current-context": "metrics-server",
        "users": [{"name": "metrics-server", "user": {"token": policy.token_for(METRICS_SERVER_USER)}}],
    }
    paths.metrics_server_kubeconfig.write_text(yaml.safe_dump(sa_config, sort_keys=False))
    paths.metrics_server_kubeconfig.chmod(0o600)
