"""Kubeconfig files written by the real ``kubectl config`` (set-cluster, set-credentials, set-context,
use-context), loaded by k8s_metrics.kubeconfig and used against a real HTTPS server: what kubectl writes
(quoting, embedded and referenced files, exec sections, proxy-url) is what the loader must read."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _proxies import Proxy, Tunnel
from _tls_server import TLSServer
from test_kubeconfig import NAMED_HOST, PKI, V1, Plugin, credential, get, pki, server

from k8s_metrics.kubeconfig import load_kubeconfig

__all__ = ["pki", "server"]  # fixtures, imported for this module's tests


def _kubectl() -> str:
    """kubectl 1.33 beside the real ``kubectl``: the plain one on PATH is a dispatcher that asks the
    cluster for its version before every command, config commands included."""
    plain = shutil.which("kubectl")
    if plain is None:
        return "kubectl-not-on-PATH"  # a missing kubectl fails the tests, never skips them
    return str(Path(os.path.realpath(plain)).parent / "kubectl.1.33")


KUBECTL = _kubectl()


def kubectl_config(kubeconfig: Path, *args: str) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(kubeconfig.parent)}
    subprocess.run(
        [KUBECTL, "config", f"--kubeconfig={kubeconfig}", *args],
        check=True,
        capture_output=True,
        env=env,
        timeout=60,
    )


def files(tmp_path: Path, pki: PKI) -> dict[str, Path]:
    paths = {"ca": tmp_path / "ca.crt", "cert": tmp_path / "alice.crt", "key": tmp_path / "alice.key"}
    paths["ca"].write_bytes(pki.ca_pem())
    paths["cert"].write_bytes(pki.client.cert_chain_pems[0].bytes())
    paths["key"].write_bytes(pki.client.private_key_pem.bytes())
    return paths


def test_embedded_ca_token_and_namespace(tmp_path: Path, pki: PKI, server: TLSServer) -> None:
    path, f = tmp_path / "config", files(tmp_path, pki)
    kubectl_config(path, "set-cluster", "c", f"--server={server.url}", f"--certificate-authority={f['ca']}",
                   "--embed-certs=true")  # fmt: skip
    kubectl_config(path, "set-credentials", "u", "--token=0123")  # kubectl quotes it: "0123"
    kubectl_config(path, "set-context", "ctx", "--cluster=c", "--user=u", "--namespace=shop")
    kubectl_config(path, "use-context", "ctx")
    text = path.read_text()
    assert 'token: "0123"' in text and "certificate-authority-data: " in text
    conn = load_kubeconfig(path)
    assert (conn.server, conn.namespace, conn.proxy) == (server.url, "shop", None)
    assert get(conn).status_code == 200
    assert [r.authorization for r in server.requests] == ["Bearer 0123"]


def test_referenced_files_and_client_certificate(tmp_path: Path, pki: PKI, server: TLSServer) -> None:
    path, f = tmp_path / "config", files(tmp_path, pki)
    kubectl_config(path, "set-cluster", "c", f"--server={server.url}", f"--certificate-authority={f['ca']}")
    kubectl_config(path, "set-credentials", "alice", f"--client-certificate={f['cert']}",
                   f"--client-key={f['key']}")  # fmt: skip
    kubectl_config(path, "set-context", "ctx", "--cluster=c", "--user=alice")
    kubectl_config(path, "use-context", "ctx")
    assert "client-key: alice.key" in path.read_text()  # kubectl writes it relative to the kubeconfig
    assert get(load_kubeconfig(path)).status_code == 200
    assert [(r.client_cn, r.authorization) for r in server.requests] == [("alice", None)]


def test_basic_auth_with_a_yaml_word_as_password(tmp_path: Path, pki: PKI, server: TLSServer) -> None:
    path, f = tmp_path / "config", files(tmp_path, pki)
    kubectl_config(path, "set-cluster", "c", f"--server={server.url}", f"--certificate-authority={f['ca']}")
    kubectl_config(path, "set-credentials", "admin", "--username=admin", "--password=yes")
    kubectl_config(path, "set-context", "ctx", "--cluster=c", "--user=admin")
    assert get(load_kubeconfig(path, context="ctx")).status_code == 200
    assert [r.authorization for r in server.requests] == ["Basic " + base64.b64encode(b"admin:yes").decode()]


def test_exec_plugin(tmp_path: Path, pki: PKI, server: TLSServer) -> None:
    path, f = tmp_path / "config", files(tmp_path, pki)
    plugin = Plugin(tmp_path)
    plugin.answer(credential(token="from-plugin"))
    kubectl_config(path, "set-cluster", "c", f"--server={server.url}", f"--certificate-authority={f['ca']}")
    kubectl_config(path, "set-credentials", "u", f"--exec-command={sys.executable}",
                   f"--exec-api-version={V1}", "--exec-arg=-S", f"--exec-arg={plugin.script}",
                   f"--exec-arg={plugin.state}",
                   "--exec-env=PLUGIN_ENV=from-kubectl", "--exec-interactive-mode=Never",
                   "--exec-provide-cluster-info=true")  # fmt: skip
    kubectl_config(path, "set-context", "ctx", "--cluster=c", "--user=u")
    kubectl_config(path, "use-context", "ctx")
    assert get(load_kubeconfig(path)).status_code == 200
    assert [r.authorization for r in server.requests] == ["Bearer from-plugin"]
    [call] = plugin.calls()
    assert call["env"] == "from-kubectl"
    assert call["info"]["spec"]["cluster"] == {
        "server": server.url,
        "certificate-authority-data": pki.ca_data(),
    }


@pytest.mark.parametrize("scheme", ["http", "socks5"])
def test_proxy_url_and_insecure(tmp_path: Path, pki: PKI, scheme: str) -> None:
    with TLSServer(NAMED_HOST, pki.named) as named, Proxy({"kubernetes.test": NAMED_HOST}) as proxy:
        path = tmp_path / "config"
        kubectl_config(path, "set-cluster", "c", f"--server=https://kubernetes.test:{named.port}",
                       f"--proxy-url={proxy.url(scheme)}", "--insecure-skip-tls-verify=true")  # fmt: skip
        kubectl_config(path, "set-context", "ctx", "--cluster=c")
        kubectl_config(path, "use-context", "ctx")
        assert "insecure-skip-tls-verify: true" in path.read_text()
        assert get(load_kubeconfig(path)).status_code == 200
        assert proxy.tunnels == [Tunnel(scheme, f"kubernetes.test:{named.port}")]


def test_kubectl_reads_what_it_wrote(tmp_path: Path) -> None:
    # The same file as kubectl sees it: the loader and kubectl agree on the current context's fields.
    path = tmp_path / "config"
    kubectl_config(path, "set-cluster", "c", "--server=https://127.0.0.31:6443", "--tls-server-name=k.test")
    kubectl_config(path, "set-context", "ctx", "--cluster=c", "--namespace=ns")
    kubectl_config(path, "use-context", "ctx")
    view = subprocess.run(
        [KUBECTL, "config", "view", f"--kubeconfig={path}", "--minify", "-o",
         "jsonpath={.clusters[0].cluster.server} {.clusters[0].cluster.tls-server-name} "
         "{.contexts[0].context.namespace}"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    conn = load_kubeconfig(path)
    assert view == f"{conn.server} {conn.tls_server_name} {conn.namespace}"
