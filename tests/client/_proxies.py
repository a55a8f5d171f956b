"""A forward proxy on loopback (HTTP ``CONNECT`` and SOCKS5, no authentication), run in background threads,
that records every tunnel it opens.

``hosts`` maps the names clients ask for to the addresses the proxy connects to, so a test can use a
server name that does not resolve at all: a request that reaches the server must have gone through the
proxy. Each tunnel relays bytes both ways until either side closes.
"""

from __future__ import annotations

import select
import socket
import socketserver
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Tunnel:
    """One tunnel: the protocol (``"http"`` or ``"socks5"``), the target as asked, and for HTTP the
    ``Proxy-Authorization`` header sent with the ``CONNECT``."""

    protocol: str
    target: str
    proxy_authorization: str | None = None


@dataclass
class _State:
    hosts: Mapping[str, str]
    tunnels: list[Tunnel] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("peer closed")
        data += chunk
    return data


def _relay(a: socket.socket, b: socket.socket) -> None:
    sockets = [a, b]
    while True:
        readable, _, _ = select.select(sockets, [], [], 30)
        if not readable:
            return
        for sock in readable:
            data = sock.recv(65536)
            if not data:
                return
            (b if sock is a else a).sendall(data)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        client: socket.socket = self.request
        first = client.recv(1, socket.MSG_PEEK)
        if first == b"\x05":
            target, port = self._socks5(client)
            protocol, authorization = "socks5", None
        else:
            target, port, authorization = self._http_connect(client)
            protocol = "http"
        state = self.server.state
        with state.lock:
            state.tunnels.append(Tunnel(protocol, f"{target}:{port}", authorization))
        address = state.hosts.get(target, target)
        try:
            upstream = socket.create_connection((address, port), timeout=10)
        except OSError:
            self._refuse(client, protocol)
            return
        with upstream:
            self._accept(client, protocol)
            _relay(client, upstream)

    def _http_connect(self, client: socket.socket) -> tuple[str, int, str | None]:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                raise ConnectionError("closed before the CONNECT head")
            head += chunk
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        if method != "CONNECT":
            raise ConnectionError(f"not a CONNECT: {lines[0]!r}")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        host, _, port = target.rpartition(":")
        return host.strip("[]"), int(port), headers.get("Proxy-Authorization")

    def _socks5(self, client: socket.socket) -> tuple[str, int]:
        _, count = _read_exact(client, 2)
        _read_exact(client, count)  # offered methods: "no authentication" is always taken
        client.sendall(b"\x05\x00")
        _, command, _, kind = _read_exact(client, 4)
        if command != 1:
            raise ConnectionError("only CONNECT is supported")
        if kind == 1:
            host = socket.inet_ntop(socket.AF_INET, _read_exact(client, 4))
        elif kind == 4:
            host = socket.inet_ntop(socket.AF_INET6, _read_exact(client, 16))
        else:
            host = _read_exact(client, _read_exact(client, 1)[0]).decode("idna")
        return host, int.from_bytes(_read_exact(client, 2), "big")

    @staticmethod
    def _accept(client: socket.socket, protocol: str) -> None:
        if protocol == "http":
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            client.sendall(b"\x05\x00\x00\x01" + bytes(6))

    @staticmethod
    def _refuse(client: socket.socket, protocol: str) -> None:
        if protocol == "http":
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        else:
            client.sendall(b"\x05\x05\x00\x01" + bytes(6))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: _State) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state

    def handle_error(self, request: Any, client_address: Any) -> None:  # a client gave up: not a failure
        pass


class Proxy:
    """The proxy, as a context manager: ``with Proxy({"kubernetes.test": "127.0.0.31"}) as proxy:``."""

    def __init__(self, hosts: Mapping[str, str] | None = None) -> None:
        self._state = _State(dict(hosts or {}))
        self._server = _Server(self._state)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, scheme: str = "http", userinfo: str = "") -> str:
        return f"{scheme}://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"

    @property
    def tunnels(self) -> list[Tunnel]:
        with self._state.lock:
            return list(self._state.tunnels)

    def __enter__(self) -> Proxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
