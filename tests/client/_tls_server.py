"""A real HTTPS server on a loopback address, run in a background thread, that records what it sees.

Used by test_kubeconfig.py to check connections built from kubeconfigs with both ``httpx.Client`` (which
blocks, so the server cannot live on the test's trio loop) and ``httpx.AsyncClient`` under trio.

Each request is answered with JSON ``{"ok": true}``, or with the apiserver's 401 ``Status`` when
``authorized`` is given and the request's ``Authorization`` header is not in it and its client
certificate's CN is not in ``authorized_cns``. The TLS handshake runs in the connection's own thread, so a
client that fails it does not stall the accept loop; failed handshakes are recorded too.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import trustme


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it."""

    path: str
    authorization: str | None
    client_cn: str | None
    sni: str | None


@dataclass
class _State:
    authorized: frozenset[str] | None
    authorized_cns: frozenset[str]
    requests: list[Seen] = field(default_factory=list)
    handshake_errors: list[str] = field(default_factory=list)
    sni: dict[int, str | None] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        state = self.server.state
        conn = self.connection
        assert isinstance(conn, ssl.SSLSocket)
        peer = conn.getpeercert()
        cn: str | None = None
        subject: Any = peer.get("subject", ()) if peer else ()
        for rdn in subject:
            for key, value in rdn:
                if key == "commonName":
                    cn = value
        seen = Seen(self.path, self.headers.get("Authorization"), cn, state.sni.get(id(conn)))
        with state.lock:
            state.requests.append(seen)
        ok = (
            state.authorized is None
            or seen.authorization in state.authorized
            or (cn is not None and cn in state.authorized_cns)
        )
        doc: dict[str, Any]
        if ok:
            status, doc = 200, {"ok": True}
        else:
            status = 401
            doc = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "Unauthorized",
                "reason": "Unauthorized",
                "code": 401,
            }
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], ctx: ssl.SSLContext, state: _State) -> None:
        self.ctx = ctx
        self.state = state
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            with self.state.lock:
                self.state.handshake_errors.append(str(exc))
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]
        finally:
            tls.close()


class TLSServer:
    """``with TLSServer("127.0.0.31", cert, client_ca=ca) as srv: ... srv.url ... srv.requests``."""

    def __init__(
        self,
        host: str,
        cert: trustme.LeafCert,
        *,
        client_ca: trustme.CA | None = None,
        authorized: Collection[str] | None = None,
        authorized_cns: Collection[str] = (),
    ) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(ctx)
        if client_ca is not None:
            client_ca.configure_trust(ctx)
            ctx.verify_mode = ssl.CERT_OPTIONAL
        self.state = _State(None if authorized is None else frozenset(authorized), frozenset(authorized_cns))

        def on_sni(sock: ssl.SSLSocket | ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            with self.state.lock:
                self.state.sni[id(sock)] = name

        ctx.sni_callback = on_sni
        self._server = _Server((host, 0), ctx, self.state)
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def requests(self) -> list[Seen]:
        with self.state.lock:
            return list(self.state.requests)

    @property
    def handshake_errors(self) -> list[str]:
        with self.state.lock:
            return list(self.state.handshake_errors)

    def set_authorized(self, authorized: Collection[str] | None, cns: Collection[str] = ()) -> None:
        with self.state.lock:
            self.state.authorized = None if authorized is None else frozenset(authorized)
            self.state.authorized_cns = frozenset(cns)

    def __enter__(self) -> TLSServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
