"""k8s_metrics.kubeconfig against a real HTTPS server on loopback (see _tls_server.py).

Every connection variant is checked end to end: the kubeconfig (written as YAML) is loaded, an httpx client
is built from the returned ssl_context and auth, and the server reports the Authorization header, client
certificate CN and SNI it saw. Exec plugins are tiny Python scripts run with sys.executable that log each
invocation to a file. Time-dependent behaviour uses injected clocks.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import os
import re
import ssl
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trustme
from _proxies import Proxy, Tunnel
from _tls_server import TLSServer

from k8s_metrics.kubeconfig import (
    BearerTokenAuth,
    ClusterConnection,
    ConfigError,
    ExecAuth,
    ExecConfig,
    ExecPluginError,
    TokenFileAuth,
    load_default,
    load_incluster,
    load_kubeconfig,
)
from k8s_metrics.kubeconfig import files as kubeconfig_files
from k8s_metrics.kubeconfig.connection import ca_context
from k8s_metrics.kubeconfig.document import Plain, load_document

HOST = "127.0.0.31"
NAMED_HOST = "127.0.0.32"
V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"

# --------------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PKI:
    ca: trustme.CA
    server: trustme.LeafCert  # for 127.0.0.31
    named: trustme.LeafCert  # for the DNS name kubernetes.test only
    client: trustme.LeafCert  # CN=alice
    other_ca: trustme.CA

    def ca_pem(self) -> bytes:
        return self.ca.cert_pem.bytes()

    def ca_data(self) -> str:
        return base64.b64encode(self.ca_pem()).decode()


@pytest.fixture(scope="module")
def pki() -> PKI:
    ca = trustme.CA()
    return PKI(
        ca=ca,
        server=ca.issue_cert(HOST),
        named=ca.issue_cert("kubernetes.test"),
        client=ca.issue_cert("alice.test", common_name="alice"),
        other_ca=trustme.CA(),
    )


@pytest.fixture
def server(pki: PKI) -> Iterator[TLSServer]:
    with TLSServer(HOST, pki.server, client_ca=pki.ca) as srv:
        yield srv


def _scalar(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if value == {}:
        return "{}"
    if value == []:
        return "[]"
    text = str(value)
    if re.fullmatch(r"[A-Za-z0-9./_-][A-Za-z0-9./_:=+-]*", text) and text not in ("null", "true", "false"):
        return text  # plain
    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar


def to_yaml(obj: Any, indent: int = 0) -> str:
    """Block-style YAML as kubectl writes it: sequences at their key's indentation, '- key: v' items."""
    pad = " " * indent
    out: list[str] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(value, dict) and value:
                out.append(f"{pad}{key}:\n{to_yaml(value, indent + 2)}")
            elif isinstance(value, list) and value:
                out.append(f"{pad}{key}:\n{to_yaml(value, indent)}")
            else:
                out.append(f"{pad}{key}: {_scalar(value)}\n")
    else:
        for item in obj:
            if isinstance(item, dict) and item:
                body = to_yaml(item, indent + 2)
                out.append(f"{pad}- {body[indent + 2 :]}")
            else:
                out.append(f"{pad}- {_scalar(item)}\n")
    return "".join(out)


def config_doc(
    server_url: str,
    *,
    cluster: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
    name: str = "test",
    namespace: str | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {"cluster": name, "user": name}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server_url, **(cluster or {})}}],
        "users": [{"name": name, "user": user or {}}],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
        "preferences": {},
    }


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_yaml(doc), encoding="utf-8")
    return path


def get(conn: ClusterConnection, path: str = "/api") -> httpx.Response:
    with conn.httpx_client(trust_env=False) as client:
        return client.get(path)


async def aget(conn: ClusterConnection, path: str = "/api") -> httpx.Response:
    async with conn.httpx_async_client(trust_env=False) as client:
        return await client.get(path)


class Plugin:
    """An exec credential plugin script; answers are taken in order (the last one repeats)."""

    SCRIPT = """
import json, os, pathlib, sys
state = pathlib.Path(sys.argv[1])
log = state / "calls.jsonl"
n = len(log.read_text().splitlines()) if log.exists() else 0  # python -S: no site, quick start
with log.open("a") as f:
    f.write(json.dumps({"argv": sys.argv[2:], "info": json.loads(os.environ["KUBERNETES_EXEC_INFO"]),
                        "env": os.environ.get("PLUGIN_ENV")}) + "\\n")
answers = json.loads((state / "answers.json").read_text())
answer = answers[min(n, len(answers) - 1)]
if "exit" in answer:
    sys.stderr.write(answer.get("stderr", ""))
    sys.exit(answer["exit"])
print(json.dumps(answer["out"]))
"""

    def __init__(self, tmp_path: Path) -> None:
        self.state = tmp_path / "plugin-state"
        self.state.mkdir()
        self.script = tmp_path / "plugin.py"
        self.script.write_text(self.SCRIPT)

    def answer(self, *answers: dict[str, Any]) -> None:
        (self.state / "answers.json").write_text(json.dumps(list(answers)))

    def calls(self) -> list[dict[str, Any]]:
        log = self.state / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def exec_section(self, api_version: str = V1, **extra: Any) -> dict[str, Any]:
        return {
            "apiVersion": api_version,
            "command": sys.executable,
            "args": ["-S", str(self.script), str(self.state), "--flag", "two words"],
            "env": [{"name": "PLUGIN_ENV", "value": "from-kubeconfig"}],
            **extra,
        }

    def config(self, api_version: str = V1, **extra: Any) -> ExecConfig:
        return ExecConfig(
            command=sys.executable,
            args=("-S", str(self.script), str(self.state)),
            api_version=api_version,
            user="someone",
            **extra,
        )


def credential(api_version: str = V1, expires: float | None = None, **status: Any) -> dict[str, Any]:
    if expires is not None:
        stamp = dt.datetime.fromtimestamp(expires, dt.UTC)
        status["expirationTimestamp"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"out": {"apiVersion": api_version, "kind": "ExecCredential", "status": status}}


# --------------------------------------------------------------------------------------------------
# Tokens, CA, client certificates, TLS options
# --------------------------------------------------------------------------------------------------


def test_token_and_ca_data(tmp_path: Path, pki: PKI, server: TLSServer) -> None:
    path = write(
        tmp_path / "config",
        config_doc(
            server.url + "/",
            cluster={"certificate-authority-data": pki.ca_data()},
            user={"token": "0123"},
            namespace="team-a",
        ),
    )
    conn = load_kubeconfig(path)
    assert conn.server == server.url  # trailing slash removed
    assert conn.namespace == "team-a"
    assert conn.tls_server_name is None
    assert isinstance(conn.auth, BearerTokenAuth)
    assert conn.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_2
    response = get(conn, "/api/v1/nodes")
    assert response.json() == {"ok": True}
    assert [(r.path, r.authorization, r.client_cn) for r in server.requests] == [
        ("/api/v1/nodes", "Bearer 0123", None)
    ]


async def test_token_async_client_under_trio(tmp_path: Path, pki: PKI, server: TLSServer) -> None:
    path = write(
        tmp_path / "config",
        config_doc(server.url, cluster={"certificate-authority-data": pki.ca_data()}, user={"token": "tok"}),
    )
    conn = load_kubeconfig(path)
    response = await aget(conn)
    assert response.status_code == 200
    assert [r.authorization for r in server.requests] == ["Bearer tok"]


def test_files_are_relative_to_the_kubeconfig(tmp_path: Path, pki: PKI, server: TLSServer) -> None:
    conf_dir = tmp_path / "conf"
    (conf_dir / "pki").mkdir(parents=True)
    (conf_dir / "pki" / "ca.crt").write_bytes(pki.ca_pem())
    (conf_dir / "pki" / "alice.crt").write_bytes(pki.client.cert_chain_pems[0].bytes())
    (conf_dir / "pki" / "alice.key").write_bytes(pki.client.private_key_pem.bytes())
    (conf_dir / "token").write_text("from-file\n")
    path = write(
        conf_dir / "config",
        config_doc(
            server.url,
            cluster={"certificate-authority": "pki/ca.crt"},
            user={"client-certificate": "pki/alice.crt", "client-key": "pki/alice.key", "tokenFile": "token"},
        ),
    )
    conn = load_kubeconfig(path)
    assert isinstance(conn.auth, TokenFileAuth)
    assert get(conn).status_code == 200
    assert [(r.authorization, r.client_cn) for r in server.requests] == [("Bearer from-file", "alice")]


def test_client_certificate_data_alone(tmp_path: Path, pki: PKI, server: TLSServer) -> None:
    server.set_authorized(set(), cns={"alice"})
    path = write(
        tmp_path / "config",
        config_doc(
            server.url,
            cluster={"certificate-authority-data": pki.ca_data()},
            user={
                "client-certificate-data": base64.b64encode(pki.client.cert_chain_pems[0].bytes()).decode(),
                "client-key-data": base64.b64encode(pki.client.private_key_pem.bytes()).decode(),
            },
        ),
    )
    conn = load_kubeconfig(path)
    assert conn.auth is None
    assert get(conn).status_code == 200
    assert [(r.authorization, r.client_cn) for r in server.requests] == [(None, "alice")]


def test_basic_auth(tmp_path: Path, pki: PKI, server: TLSServer) -> None:
    path = write(
        tmp_path / "config",
        config_doc(
            server.url,
            cluster={"certificate-authority-data": pki.ca_data()},
            user={"username": "admin", "password": "s3cret: x"},
        ),
    )
    assert get(load_kubeconfig(path)).status_code == 200
    expected = "Basic " + base64.b64encode(b"admin:s3cret: x").decode()
    assert [r.authorization for r in server.requests] == [expected]


def test_server_certificate_is_verified(tmp_path: Path, pki: PKI, server: TLSServer) -> None:
    other = base64.b64encode(pki.other_ca.cert_pem.bytes()).decode()
    path = write(tmp_path / "config", config_doc(server.url, cluster={"certificate-authority-data": other}))
    conn = load_kubeconfig(path)
    with pytest.raises(httpx.ConnectError):
        get(conn)
    assert server.requests == []  # the handshake failed: nothing was sent


def test_insecure_skip_tls_verify(tmp_path: Path, server: TLSServer) -> None:
    path = write(
        tmp_path / "config",
        config_doc(server.url, cluster={"insecure-skip-tls-verify": True}, user={"token": "t"}),
    )
    conn = load_kubeconfig(path)
    assert conn.ssl_context.verify_mode == ssl.CERT_NONE
    assert get(conn).status_code == 200
    assert [r.authorization for r in server.requests] == ["Bearer t"]


def test_tls_server_name(tmp_path: Path, pki: PKI) -> None:
    with TLSServer(NAMED_HOST, pki.named) as named:
        cluster = {"certificate-authority-data": pki.ca_data(), "tls-server-name": "kubernetes.test"}
        path = write(tmp_path / "config", config_doc(named.url, cluster=cluster, user={"token": "t"}))
        conn = load_kubeconfig(path)
        assert conn.tls_server_name == "kubernetes.test"
        assert conn.request_extensions() == {"sni_hostname": "kubernetes.test"}
        assert get(conn).status_code == 200
        assert [(r.sni, r.authorization) for r in named.requests] == [("kubernetes.test", "Bearer t")]

        # Without it, the certificate (for kubernetes.test only) does not match the IP address.
        del cluster["tls-server-name"]
        path = write(tmp_path / "config2", config_doc(named.url, cluster=cluster))
        with pytest.raises(httpx.ConnectError):
            get(load_kubeconfig(path))


async def test_tls_server_name_async(tmp_path: Path, pki: PKI) -> None:
    with TLSServer(NAMED_HOST, pki.named) as named:
        cluster = {"certificate-authority-data": pki.ca_data(), "tls-server-name": "kubernetes.test"}
        path = write(tmp_path / "config", config_doc(named.url, cluster=cluster))
        assert (await aget(load_kubeconfig(path))).status_code == 200
        assert [r.sni for r in named.requests] == ["kubernetes.test"]


# --------------------------------------------------------------------------------------------------
# proxy-url, through a real proxy on loopback (see _proxies.py)
# --------------------------------------------------------------------------------------------------

# The server's name resolves nowhere: only the proxy knows where it is, so an answer proves the tunnel.
PROXIED = "kubernetes.test"


@pytest.mark.parametrize("scheme", ["http", "socks5"])
def test_proxy_url(tmp_path: Path, pki: PKI, scheme: str) -> None:
    with TLSServer(NAMED_HOST, pki.named) as named, Proxy({PROXIED: NAMED_HOST}) as proxy:
        cluster = {"certificate-authority-data": pki.ca_data(), "proxy-url": proxy.url(scheme)}
        doc = config_doc(f"https://{PROXIED}:{named.port}", cluster=cluster, user={"token": "t"})
        conn = load_kubeconfig(write(tmp_path / "config", doc))
        assert conn.proxy == proxy.url(scheme)
        assert get(conn).status_code == 200
        assert proxy.tunnels == [Tunnel(scheme, f"{PROXIED}:{named.port}")]
        assert [(r.sni, r.authorization) for r in named.requests] == [(PROXIED, "Bearer t")]


async def test_proxy_url_async_with_proxy_credentials(tmp_path: Path, pki: PKI) -> None:
    with TLSServer(NAMED_HOST, pki.named) as named, Proxy({PROXIED: NAMED_HOST}) as proxy:
        cluster = {"certificate-authority-data": pki.ca_data(), "proxy-url": proxy.url("http", "me:secret")}
        doc = config_doc(f"https://{PROXIED}:{named.port}", cluster=cluster)
        assert (await aget(load_kubeconfig(write(tmp_path / "config", doc)))).status_code == 200
        basic = "Basic " + base64.b64encode(b"me:secret").decode()
        assert proxy.tunnels == [Tunnel("http", f"{PROXIED}:{named.port}", basic)]


def test_socks5_proxy_keeps_the_tls_server_name(tmp_path: Path, pki: PKI) -> None:
    # An address only the proxy can reach, and a certificate for a name: SNI and verification use the name.
    with TLSServer(NAMED_HOST, pki.named) as named, Proxy({"192.0.2.1": NAMED_HOST}) as proxy:
        cluster = {
            "certificate-authority-data": pki.ca_data(),
            "tls-server-name": PROXIED,
            "proxy-url": proxy.url("socks5"),
        }
        doc = config_doc(f"https://192.0.2.1:{named.port}", cluster=cluster)
        assert get(load_kubeconfig(write(tmp_path / "config", doc))).status_code == 200
        assert proxy.tunnels == [Tunnel("socks5", f"192.0.2.1:{named.port}")]
        assert [r.sni for r in named.requests] == [PROXIED]


# --------------------------------------------------------------------------------------------------
# Contexts and $KUBECONFIG
# --------------------------------------------------------------------------------------------------


def two_context_doc(url: str, pki: PKI) -> dict[str, Any]:
    return {
        "clusters": [{"name": "c", "cluster": {"server": url, "certificate-authority-data": pki.ca_data()}}],
        "users": [{"name": "u1", "user": {"token": "one"}}, {"name": "u2", "user": {"token": "two"}}],
        "contexts": [
            {"name": "first", "context": {"cluster": "c", "user": "u1"}},
            {"name": "second", "context": {"cluster": "c", "user": "u2", "namespace": "ns2"}},
        ],
        "current-context": "first",
    }


def test_context_selection(tmp_path: Path, pki: PKI, server: TLSServer) -> None:
    path = write(tmp_path / "config", two_context_doc(server.url, pki))
    get(load_kubeconfig(path))
    second = load_kubeconfig(path, context="second")
    assert second.namespace == "ns2"
    get(second)
    assert [r.authorization for r in server.requests] == ["Bearer one", "Bearer two"]
    with pytest.raises(ConfigError, match=r"context 'third' not found in .*config"):
        load_kubeconfig(path, context="third")


def test_kubeconfig_merge_first_wins(
    tmp_path: Path, pki: PKI, server: TLSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "ca.crt").write_bytes(pki.ca_pem())
    a = write(
        tmp_path / "a" / "config",
        {
            "clusters": [{"name": "c", "cluster": {"server": server.url, "certificate-authority": "ca.crt"}}],
            "users": [{"name": "u1", "user": {"token": "from-a"}}],
            "contexts": [{"name": "ctx-a", "context": {"cluster": "c", "user": "u1"}}],
            "current-context": "ctx-a",
        },
    )
    b = write(
        tmp_path / "b" / "config",
        {
            "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.99:1"}}],
            "users": [{"name": "u1", "user": {"token": "from-b"}}, {"name": "u2", "user": {"token": "b2"}}],
            "contexts": [
                {"name": "ctx-a", "context": {"cluster": "c", "user": "u2"}},
                {"name": "ctx-b", "context": {"cluster": "c", "user": "u2"}},
            ],
            "current-context": "ctx-b",
        },
    )
    missing = tmp_path / "missing"
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(missing), str(a), "", str(b), str(a)]))
    get(load_default())  # ctx-a from a: a's user u1, a's cluster c with a's relative CA
    get(load_default("ctx-b"))  # ctx-b from b, but cluster c and its CA path from a
    get(load_kubeconfig(context="ctx-b"))
    assert [r.authorization for r in server.requests] == ["Bearer from-a", "Bearer b2", "Bearer b2"]


def test_load_default_uses_home_kube_config(
    tmp_path: Path, pki: PKI, server: TLSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    write(tmp_path / ".kube" / "config", two_context_doc(server.url, pki))
    get(load_default())
    assert [r.authorization for r in server.requests] == ["Bearer one"]


def test_load_default_falls_back_to_incluster(
    tmp_path: Path, pki: PKI, server: TLSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = incluster_root(tmp_path / "sa", pki, token="sa-token")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nothing-here"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", HOST)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(server.port))
    monkeypatch.setattr(kubeconfig_files, "DEFAULT_INCLUSTER_ROOT", str(root))
    get(load_default())
    assert [r.authorization for r in server.requests] == ["Bearer sa-token"]
    with pytest.raises(ConfigError, match="context 'x' requested but there is no kubeconfig"):
        load_default("x")


def test_load_default_with_nothing_explains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(kubeconfig_files, "DEFAULT_INCLUSTER_ROOT", str(tmp_path / "sa"))
    with pytest.raises(ConfigError, match=r"no kubeconfig \(~/.kube/config\) and not in a cluster"):
        load_default()
    with pytest.raises(ConfigError, match=r"no kubeconfig: ~/.kube/config does not exist"):
        load_kubeconfig()


# --------------------------------------------------------------------------------------------------
# In-cluster
# --------------------------------------------------------------------------------------------------


def incluster_root(root: Path, pki: PKI, *, token: str, namespace: str | None = None) -> Path:
    """A service-account directory laid out as kubelet does: files are symlinks into ..data."""
    data = root / "..2024_01_01_00_00_00.000000001"
    data.mkdir(parents=True)
    (data / "token").write_text(token)
    (data / "ca.crt").write_bytes(pki.ca_pem())
    if namespace is not None:
        (data / "namespace").write_text(namespace + "\n")
    (root / "..data").symlink_to(data.name)
    for name in ("token", "ca.crt", "namespace"):
        (root / name).symlink_to(f"..data/{name}")
    return root


def rotate(root: Path, token: str) -> None:
    """Kubelet's atomic update: a new timestamped directory, then ..data swapped with a rename."""
    new = root / "..2024_01_01_01_00_00.000000002"
    new.mkdir()
    (new / "token").write_text(token)
    (new / "ca.crt").write_bytes((root / "ca.crt").read_bytes())
    (root / "..data_tmp").symlink_to(new.name)
    os.replace(root / "..data_tmp", root / "..data")


def test_incluster_with_rotation(tmp_path: Path, pki: PKI, server: TLSServer) -> None:
    root = incluster_root(tmp_path / "sa", pki, token="first", namespace="kube-system")
    env = {"KUBERNETES_SERVICE_HOST": HOST, "KUBERNETES_SERVICE_PORT": str(server.port)}
    conn = load_incluster(root=root, environ=env)
    assert (conn.server, conn.namespace, conn.tls_server_name) == (server.url, "kube-system", None)
    with conn.httpx_client(trust_env=False) as client:
        client.get("/api")
        rotate(root, "second")  # noticed at once: the symlink swap changes the file identity stat sees
        client.get("/api")
    assert [r.authorization for r in server.requests] == ["Bearer first", "Bearer second"]


async def test_incluster_async(tmp_path: Path, pki: PKI, server: TLSServer) -> None:
    root = incluster_root(tmp_path / "sa", pki, token="tok")
    env = {"KUBERNETES_SERVICE_HOST": HOST, "KUBERNETES_SERVICE_PORT": str(server.port)}
    conn = load_incluster(root=root, environ=env)
    assert conn.namespace is None
    assert (await aget(conn)).status_code == 200
    assert [r.authorization for r in server.requests] == ["Bearer tok"]


def test_incluster_ipv6_and_errors(tmp_path: Path, pki: PKI) -> None:
    root = incluster_root(tmp_path / "sa", pki, token="tok")
    conn = load_incluster(
        root=root, environ={"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    )
    assert conn.server == "https://[fd00::1]:443"
    with pytest.raises(ConfigError, match="KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set"):
        load_incluster(root=root, environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1"})
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    with pytest.raises(ConfigError, match=r"cannot read token file '.*empty/token'"):
        load_incluster(root=tmp_path / "empty", environ=env)
    (root / "..data" / "ca.crt").unlink()
    with pytest.raises(ConfigError, match=r"in-cluster CA: cannot read '.*sa/ca.crt'"):
        load_incluster(root=root, environ=env)


# --------------------------------------------------------------------------------------------------
# TokenFileAuth
# --------------------------------------------------------------------------------------------------


def test_token_file_rereads_on_change_and_every_60s(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "token"
    path.write_text("aaaa\n")
    now = [0.0]
    auth = TokenFileAuth(path, clock=lambda: now[0])
    assert auth.token() == "aaaa"
    path.write_text("bbbbbb")  # size changed: noticed at once
    assert auth.token() == "bbbbbb"
    before = os.stat(path)
    path.write_text("cccccc")  # same inode, size and (restored) mtime: invisible to stat
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert auth.token() == "bbbbbb"
    now[0] = 59.999
    assert auth.token() == "bbbbbb"
    now[0] = 60.0
    assert auth.token() == "cccccc"
    path.unlink()  # unreadable later: keep the last good token, and say so
    with caplog.at_level(logging.WARNING, logger="k8s_metrics.kubeconfig"):
        assert auth.token() == "cccccc"
    assert "cannot read token file" in caplog.text
    with pytest.raises(ConfigError, match=r"token file .* is empty"):
        (tmp_path / "empty").write_text(" \n")
        TokenFileAuth(tmp_path / "empty")


def test_token_file_retries_once_on_401(tmp_path: Path, pki: PKI, server: TLSServer) -> None:
    path = tmp_path / "token"
    path.write_text("old")
    auth = TokenFileAuth(path, clock=lambda: 0.0)
    before = os.stat(path)
    path.write_text("new")  # a change stat cannot see, so only the 401 reveals it
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    server.set_authorized({"Bearer new"})
    ctx = ca_context(pki.ca_pem(), False, "test")
    with httpx.Client(verify=ctx, auth=auth, trust_env=False) as client:
        assert client.get(server.url + "/api").status_code == 200
        server.set_authorized({"Bearer newer"})
        assert client.get(server.url + "/api").status_code == 401  # file unchanged: no retry
    assert [r.authorization for r in server.requests] == ["Bearer old", "Bearer new", "Bearer new"]


# --------------------------------------------------------------------------------------------------
# Exec plugins
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("api_version", [V1, V1BETA1])
def test_exec_token_cached_and_cluster_info(
    tmp_path: Path, pki: PKI, server: TLSServer, api_version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLUGIN_ENV", "from-parent")  # the kubeconfig's env overrides the inherited one
    plugin = Plugin(tmp_path)
    plugin.answer(credential(api_version, expires=4102444800, token="exec-token"))  # 2100-01-01
    cluster = {
        "certificate-authority-data": pki.ca_data(),
        "extensions": [
            {"name": "client.authentication.k8s.io/exec", "extension": {"audience": "x", "n": 3, "on": True}},
            {"name": "other", "extension": {"ignored": True}},
        ],
    }
    user = {"exec": plugin.exec_section(api_version, provideClusterInfo=True, installHint="pip install x")}
    conn = load_kubeconfig(write(tmp_path / "config", config_doc(server.url, cluster=cluster, user=user)))
    assert isinstance(conn.auth, ExecAuth)
    for _ in range(3):
        assert get(conn).status_code == 200
    assert [r.authorization for r in server.requests] == ["Bearer exec-token"] * 3
    calls = plugin.calls()
    assert len(calls) == 1  # run once at load time, then cached
    assert calls[0]["argv"] == ["--flag", "two words"]
    assert calls[0]["env"] == "from-kubeconfig"
    assert calls[0]["info"] == {
        "apiVersion": api_version,
        "kind": "ExecCredential",
        "spec": {
            "interactive": False,
            "cluster": {
                "server": server.url,
                "certificate-authority-data": pki.ca_data(),
                "config": {"audience": "x", "n": 3, "on": True},
            },
        },
    }


def test_exec_without_cluster_info(tmp_path: Path, pki: PKI, server: TLSServer) -> None:
    plugin = Plugin(tmp_path)
    plugin.answer(credential(V1, token="t"))
    user = {"exec": plugin.exec_section(V1)}
    cluster = {"certificate-authority-data": pki.ca_data()}
    get(load_kubeconfig(write(tmp_path / "config", config_doc(server.url, cluster=cluster, user=user))))
    assert plugin.calls()[0]["info"] == {
        "apiVersion": V1,
        "kind": "ExecCredential",
        "spec": {"interactive": False},
    }


def test_exec_client_certificate(tmp_path: Path, pki: PKI, server: TLSServer) -> None:
    server.set_authorized(set(), cns={"alice"})
    plugin = Plugin(tmp_path)
    plugin.answer(
        credential(
            V1BETA1,
            clientCertificateData=pki.client.cert_chain_pems[0].bytes().decode(),
            clientKeyData=pki.client.private_key_pem.bytes().decode(),
        )
    )
    user = {"exec": plugin.exec_section(V1BETA1)}
    cluster = {"certificate-authority-data": pki.ca_data()}
    conn = load_kubeconfig(write(tmp_path / "config", config_doc(server.url, cluster=cluster, user=user)))
    assert len(plugin.calls()) == 1  # ran at load time so that the certificate is in the SSLContext
    assert get(conn).status_code == 200
    assert [(r.authorization, r.client_cn) for r in server.requests] == [(None, "alice")]


def test_exec_is_skipped_when_a_token_is_present(tmp_path: Path, pki: PKI, server: TLSServer) -> None:
    plugin = Plugin(tmp_path)
    user = {"token": "static", "exec": plugin.exec_section(V1)}
    cluster = {"certificate-authority-data": pki.ca_data()}
    get(load_kubeconfig(write(tmp_path / "config", config_doc(server.url, cluster=cluster, user=user))))
    assert plugin.calls() == []
    assert [r.authorization for r in server.requests] == ["Bearer static"]


def test_exec_expiry_with_clock(tmp_path: Path) -> None:
    plugin = Plugin(tmp_path)
    plugin.answer(credential(V1, expires=1200, token="a"), credential(V1, expires=1300, token="b"))
    now = [1000.0]
    auth = ExecAuth(plugin.config(V1), clock=lambda: now[0])
    assert auth.cached() is None
    assert auth.credential().token == "a"
    now[0] = 1199.999
    assert auth.credential().token == "a"
    assert len(plugin.calls()) == 1
    now[0] = 1200.0  # expired at expirationTimestamp, as client-go
    assert auth.cached() is None
    cred = auth.credential()
    assert (cred.token, cred.expires_at) == ("b", 1300.0)
    assert len(plugin.calls()) == 2


def test_exec_reruns_once_on_401(tmp_path: Path, pki: PKI, server: TLSServer) -> None:
    plugin = Plugin(tmp_path)
    plugin.answer(
        credential(V1, token="stale"), credential(V1, token="fresh"), credential(V1, token="fresh2")
    )
    server.set_authorized({"Bearer fresh"})
    auth = ExecAuth(plugin.config(V1), clock=lambda: 0.0)
    ctx = ca_context(pki.ca_pem(), False, "test")
    with httpx.Client(verify=ctx, auth=auth, trust_env=False, base_url=server.url) as client:
        assert client.get("/a").status_code == 200  # stale -> 401 -> plugin again -> fresh -> 200
        assert client.get("/b").status_code == 200  # cached
        server.set_authorized({"Bearer never"})
        assert client.get("/c").status_code == 401  # re-run once (fresh2), still 401: given up
    assert [(r.path, r.authorization) for r in server.requests] == [
        ("/a", "Bearer stale"),
        ("/a", "Bearer fresh"),
        ("/b", "Bearer fresh"),
        ("/c", "Bearer fresh"),
        ("/c", "Bearer fresh2"),
    ]
    assert len(plugin.calls()) == 3


async def test_exec_async_refresh_under_trio(tmp_path: Path, pki: PKI, server: TLSServer) -> None:
    plugin = Plugin(tmp_path)
    plugin.answer(credential(V1, expires=100, token="t1"), credential(V1, expires=200, token="t2"))
    now = [0.0]
    auth = ExecAuth(plugin.config(V1), clock=lambda: now[0])
    ctx = ca_context(pki.ca_pem(), False, "test")
    async with httpx.AsyncClient(verify=ctx, auth=auth, trust_env=False, base_url=server.url) as client:
        await client.get("/first")  # runs the plugin in a worker thread
        now[0] = 150.0
        async with trio.open_nursery() as nursery:  # concurrent requests after expiry: one refresh
            for i in range(5):
                nursery.start_soon(client.get, f"/again/{i}")
    assert sorted(r.authorization or "" for r in server.requests) == ["Bearer t1"] + ["Bearer t2"] * 5
    assert len(plugin.calls()) == 2


def test_exec_async_under_asyncio(tmp_path: Path, pki: PKI, server: TLSServer) -> None:
    plugin = Plugin(tmp_path)
    plugin.answer(credential(V1, token="aio"))
    auth = ExecAuth(plugin.config(V1))
    ctx = ca_context(pki.ca_pem(), False, "test")

    async def main() -> int:
        async with httpx.AsyncClient(verify=ctx, auth=auth, trust_env=False) as client:
            return (await client.get(server.url + "/api")).status_code

    assert asyncio.run(main()) == 200
    assert [r.authorization for r in server.requests] == ["Bearer aio"]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"exit": 3, "stderr": "error: not logged in\n"}, r"failed with exit code 3: error: not logged in"),
        ({"out": "not json"}, r"output is not an ExecCredential"),
        (
            {"out": {"kind": "ExecCredential", "apiVersion": V1BETA1, "status": {"token": "t"}}},
            "returned apiVersion",
        ),
        ({"out": {"kind": "ExecCredential", "apiVersion": V1}}, "ExecCredential has no status"),
        ({"out": {"kind": "ExecCredential", "apiVersion": V1, "status": {}}}, "neither a token nor"),
        (credential(V1, clientKeyData="k"), "only one of clientCertificateData and clientKeyData"),
        (credential(V1, token="t", expirationTimestamp="tomorrow"), "expirationTimestamp: 'tomorrow' is not"),
    ],
)
def test_exec_failures_are_explained(tmp_path: Path, answer: dict[str, Any], message: str) -> None:
    plugin = Plugin(tmp_path)
    plugin.answer(answer)
    user = {"exec": plugin.exec_section(V1)}
    path = write(tmp_path / "config", config_doc("https://127.0.0.31:1", user=user))
    with pytest.raises(ExecPluginError, match=re.escape(message) if "(" in message else message) as info:
        load_kubeconfig(path)
    assert f"exec plugin {sys.executable!r} for user 'test'" in str(info.value)


def test_exec_missing_command_shows_install_hint(tmp_path: Path) -> None:
    user = {
        "exec": {
            "apiVersion": V1,
            "command": "k8s-metrics-no-such-plugin",
            "installHint": "Install it with: pip install the-plugin",
        }
    }
    path = write(tmp_path / "config", config_doc("https://127.0.0.31:1", user=user))
    with pytest.raises(ExecPluginError) as info:
        load_kubeconfig(path)
    assert str(info.value) == (
        "exec plugin 'k8s-metrics-no-such-plugin' for user 'test': executable 'k8s-metrics-no-such-plugin' "
        "not found\n\nInstall it with: pip install the-plugin"
    )


def test_exec_relative_command_resolves_against_kubeconfig(tmp_path: Path) -> None:
    user = {"exec": {"apiVersion": V1, "command": "./bin/plugin"}}
    path = write(tmp_path / "conf" / "config", config_doc("https://127.0.0.31:1", user=user))
    with pytest.raises(ExecPluginError, match=re.escape(repr(str(tmp_path / "conf" / "bin" / "plugin")))):
        load_kubeconfig(path)


def test_exec_config_errors(tmp_path: Path) -> None:
    for section, message in [
        ({"command": "x"}, r"exec.apiVersion: None is not supported"),
        (
            {"command": "x", "apiVersion": "client.authentication.k8s.io/v1alpha1"},
            "v1alpha1' is not supported",
        ),
        ({"apiVersion": V1}, r"exec.command: must be set"),
        ({"apiVersion": V1, "command": "x", "env": [{"value": "v"}]}, r"exec.env\[0\].name: must be set"),
    ]:
        path = write(tmp_path / "config", config_doc("https://127.0.0.31:1", user={"exec": section}))
        with pytest.raises(ConfigError, match=message):
            load_kubeconfig(path)
    with pytest.raises(ExecPluginError, match="interactiveMode Always is not supported"):
        ExecAuth(ExecConfig(command="x", interactive_mode="Always")).credential()


# --------------------------------------------------------------------------------------------------
# Configuration errors name the file and field
# --------------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read kubeconfig '.*nope': No such file or directory"):
        load_kubeconfig(tmp_path / "nope")


@pytest.mark.parametrize(
    ("cluster", "user", "message"),
    [
        ({"certificate-authority-data": "not base64!"}, {}, r"\['test'\].cluster in .*: not valid base64"),
        (
            {"certificate-authority-data": base64.b64encode(b"hello").decode()},
            {},
            r"cluster in .*\.certificate-authority: no PEM certificate found",
        ),
        (
            {"certificate-authority": "missing.crt"},
            {},
            r"cluster in .*\.certificate-authority: cannot read '.*",
        ),
        (
            {"certificate-authority": "a", "certificate-authority-data": "YQ=="},
            {},
            "both certificate-authority-data and certificate-authority are set",
        ),
        (
            {"certificate-authority-data": "YQ==", "insecure-skip-tls-verify": True},
            {},
            "cannot be combined with insecure-skip-tls-verify",
        ),
        ({"insecure-skip-tls-verify": "maybe"}, {}, r"insecure-skip-tls-verify: expected true or false"),
        (
            {"proxy-url": "ftp://proxy:21"},
            {},
            r"proxy-url: 'ftp://proxy:21' is not supported; the scheme must be http, https or socks5",
        ),
        (
            {"proxy-url": "http://proxy:3128", "tls-server-name": "kubernetes.test"},
            {},
            r"proxy-url: tls-server-name cannot be used through an http\(s\) proxy; use a socks5 proxy-url",
        ),
        ({}, {"client-certificate-data": "YQ=="}, "client-certificate and client-key must be given together"),
        (
            {},
            {"client-certificate-data": "YQ==", "client-key-data": "YQ=="},
            r"client-certificate/client-key: cannot load the client certificate and key",
        ),
        ({}, {"token": "t", "username": "u"}, "more than one authentication method"),
        ({}, {"tokenFile": "missing-token"}, r"cannot read token file '.*missing-token'"),
        ({}, {"auth-provider": {"name": "gcp"}}, r"user in .*\.auth-provider: auth-provider plugins are not"),
        ({}, {"as": "admin"}, r"user in .*\.as: impersonation is not supported"),
        ({}, {"token": ["a", "list"]}, r"user in .*\.token: expected a string"),
    ],
)
def test_bad_fields_are_named(
    tmp_path: Path, cluster: dict[str, Any], user: dict[str, Any], message: str
) -> None:
    path = write(tmp_path / "config", config_doc("https://127.0.0.31:1", cluster=cluster, user=user))
    with pytest.raises(ConfigError, match=message):
        load_kubeconfig(path)


def test_mismatched_client_key(tmp_path: Path, pki: PKI) -> None:
    other = pki.ca.issue_cert("bob.test")
    user = {
        "client-certificate-data": base64.b64encode(pki.client.cert_chain_pems[0].bytes()).decode(),
        "client-key-data": base64.b64encode(other.private_key_pem.bytes()).decode(),
    }
    path = write(tmp_path / "config", config_doc("https://127.0.0.31:1", user=user))
    with pytest.raises(ConfigError, match="KEY_VALUES_MISMATCH"):
        load_kubeconfig(path)


def test_broken_references(tmp_path: Path) -> None:
    doc = config_doc("https://127.0.0.31:1")
    doc["contexts"][0]["context"]["user"] = "ghost"
    with pytest.raises(ConfigError, match=r"user 'ghost' \(of context 'test'\) not found in .*config"):
        load_kubeconfig(write(tmp_path / "config", doc))
    doc["contexts"][0]["context"] = {"cluster": "nowhere"}
    with pytest.raises(ConfigError, match=r"cluster 'nowhere' \(of context 'test'\) not found"):
        load_kubeconfig(write(tmp_path / "config", doc))
    del doc["current-context"]
    with pytest.raises(ConfigError, match="no context chosen and no current-context set"):
        load_kubeconfig(write(tmp_path / "config", doc))
    doc = config_doc("https://127.0.0.31:1")
    del doc["clusters"][0]["cluster"]["server"]
    with pytest.raises(ConfigError, match=r"clusters\['test'\].cluster in .*\.server: must be set"):
        load_kubeconfig(write(tmp_path / "config", doc))
    doc["clusters"][0]["cluster"]["server"] = "ftp://example"
    with pytest.raises(ConfigError, match="is not an http\\(s\\) URL"):
        load_kubeconfig(write(tmp_path / "config", doc))
    doc = config_doc("https://127.0.0.31:1")
    doc["users"].append(doc["users"][0])
    with pytest.raises(ConfigError, match="users: duplicate name 'test'"):
        load_kubeconfig(write(tmp_path / "config", doc))


def test_context_without_user_and_bare_host(tmp_path: Path) -> None:
    doc = config_doc("127.0.0.31:6443")
    doc["contexts"][0]["context"] = {"cluster": "test"}
    conn = load_kubeconfig(write(tmp_path / "config", doc))
    assert (conn.server, conn.auth) == ("https://127.0.0.31:6443", None)


def test_yaml_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("clusters:\n- name: a\n  cluster:\n    server: x\n   bad: indentation\n")
    with pytest.raises(ConfigError, match=r"config: line 5: did not find expected key$"):
        load_kubeconfig(path)


def test_json_kubeconfig(tmp_path: Path, pki: PKI, server: TLSServer) -> None:
    doc = config_doc(server.url, cluster={"certificate-authority-data": pki.ca_data()}, user={"token": "j"})
    doc["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = False
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc, indent=2))
    get(load_kubeconfig(path))
    assert [r.authorization for r in server.requests] == ["Bearer j"]


# --------------------------------------------------------------------------------------------------
# The YAML reader
# --------------------------------------------------------------------------------------------------

GKE_STYLE = """\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTg==
    server: https://34.1.2.3
  name: gke_proj_zone_c
contexts:
- context:
    cluster: gke_proj_zone_c
    user: gke_proj_zone_c
  name: gke_proj_zone_c
current-context: gke_proj_zone_c
kind: Config
preferences: {}
users:
- name: gke_proj_zone_c
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args: null
      command: gke-gcloud-auth-plugin
      installHint: Install gke-gcloud-auth-plugin for use with kubectl by following
        https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl#install_plugin
      provideClusterInfo: true
"""


def test_yaml_gke_style() -> None:
    doc = load_document(GKE_STYLE, "gke")
    assert isinstance(doc, dict)
    users: Any = doc["users"]
    exec_section = users[0]["user"]["exec"]
    assert exec_section == {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "args": None,
        "command": "gke-gcloud-auth-plugin",
        "installHint": "Install gke-gcloud-auth-plugin for use with kubectl by following "
        "https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl#install_plugin",
        "provideClusterInfo": "true",
    }
    assert doc["preferences"] == {}
    assert doc["clusters"] == [
        {"cluster": {"certificate-authority-data": "LS0tLS1CRUdJTg==", "server": "https://34.1.2.3"},
         "name": "gke_proj_zone_c"}
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 'it''s' # c\nb: \"t\\tx\\u00e9\\U0001F600\"\n", {"a": "it's", "b": "t\txé😀"}),
        ("a: [1, \"two\", {x: y, 'q': r}, []]\nb: {}\n",
         {"a": ["1", "two", {"x": "y", "q": "r"}, []], "b": {}}),
        ("- - a\n  - b\n- k: v\n  k2: v2\n-\n- ~\n", [["a", "b"], {"k": "v", "k2": "v2"}, None, None]),
        ("f: |\n  l1\n   l2\n\ng: >-\n  a\n  b\n\n  c\nh: x\n", {"f": "l1\n l2\n", "g": "a b\nc", "h": "x"}),
        ("k: |+\n  keep\n\n", {"k": "keep\n\n"}),
        ('a: "multi\n  line   quoted"\nb: \'one\n\n  two\'\n', {"a": "multi line   quoted", "b": "one\ntwo"}),
        ('a: "esc \\\n  aped"\n', {"a": "esc aped"}),
        ("a: plain\n  continued\n\n  after blank\nb: 1\n", {"a": "plain continued\nafter blank", "b": "1"}),
        ("---\nurl: http://a:1/b?c=d#frag # comment\nempty:\nn: null\n...\n", {"url": "http://a:1/b?c=d#frag",
         "empty": None, "n": None}),
        ('{"a": [true, null, 1.5], "b": "\\ud83d\\ude00"}', {"a": [True, None, 1.5], "b": "😀"}),
        ("{\n  \"a\": {\n    \"b\": [\n      1,\n      2\n    ]\n  }\n}\n", {"a": {"b": ["1", "2"]}}),
        ("", None),
        ("# only a comment\n", None),
        ("key : spaced\n", {"key": "spaced"}),
        ("a:\n  - x\n  - y\nb:\n- z\n", {"a": ["x", "y"], "b": ["z"]}),
        # The whole of YAML: anchors and aliases, merge keys, tags, complex keys, directives.
        ("base: &b {server: s, n: 1}\nx: *b\ny:\n  <<: *b\n  n: 2\n",
         {"base": {"server": "s", "n": "1"}, "x": {"server": "s", "n": "1"}, "y": {"server": "s", "n": "2"}}),
        ("a: !!str x\nb: !!int 5\nc: 0123\nd: yes\ne: 1e3\n",
         {"a": "x", "b": 5, "c": "0123", "d": "yes", "e": "1e3"}),
        ("%YAML 1.1\n---\n? complex\n: x\n", {"complex": "x"}),
    ],
)  # fmt: skip
def test_yaml_documents(text: str, expected: object) -> None:
    assert load_document(text, "src") == expected


def test_yaml_plain_scalars_are_marked() -> None:
    doc = load_document("a: true\nb: 'true'\nc: !!bool true\n", "src")
    assert isinstance(doc, dict)
    assert isinstance(doc["a"], Plain)
    assert not isinstance(doc["b"], Plain)
    assert doc["c"] is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: *ref\n", "line 1: found undefined alias"),
        ("a: 1\n---\nb: 2\n", "line 2: more than one YAML document"),
        ("a: 1\na: 2\n", "line 2: duplicate key 'a'"),
        ("a:\n\tb: 1\n", "line 2: found character that cannot start any token"),
        ("a: b: c\n", "line 1: mapping values are not allowed in this context"),
        ("a: [1, 2\n", "line 2: did not find expected ',' or ']'"),
        ('a: "\\q"\n', "line 1: found unknown escape character"),
        ("- a\nb: 1\n", "line 2: did not find expected '-' indicator"),
    ],
)
def test_yaml_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^src: {re.escape(message)}$"):
        load_document(text, "src")
