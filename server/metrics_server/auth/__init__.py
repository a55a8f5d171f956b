"""TLS serving, authentication and authorization of the metrics API (the apiserver library's).

* `serving.serve_https`: hypercorn under trio, TLS only, certificate files reloaded, client CAs
  swapped at run time (`tls`), self-signed fallback (`certs`), client certificate handed to the
  app through the ASGI TLS extension (`peercert`, a shim over hypercorn 0.18.0 internals).
* `middleware.AuthMiddleware`: request info (`requestinfo`) -> authentication (`authn`,
  certificate checks in `clientcert`) -> authorization (`authz`), answering 401/403/500 itself.
* `authconfig.AuthenticationConfigSource`: client CA and request-header settings from the
  `extension-apiserver-authentication` ConfigMap, kept current; `reviews`: `TokenReviewer` and
  `AccessReviewer` (TokenReview / SubjectAccessReview with TTL caches).
* `user`: the shared UserInfo / Attributes / Decision types; `errors`: the exceptions.
"""
