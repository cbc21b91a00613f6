"""A small OAuth 2.1 authorization server for the tests (run with .peers/py2/bin/python).

    oauth_as.py [--log FILE] [--audience AUD] [--token-ttl S]

Binds 127.0.0.1 on a free port and prints its issuer, http://127.0.0.1:PORT, as the first
stdout line. Stdlib http.server plus PyJWT/cryptography (both in the py2 venv). Serves:

  GET  /.well-known/oauth-authorization-server   RFC 8414 metadata (issuer = the URL above)
  POST /register                                 RFC 7591 dynamic client registration (public
                                                 clients, token_endpoint_auth_method "none")
  GET  /authorize                                auto-approves (no login page): checks client_id,
                                                 redirect_uri, PKCE S256 and `resource`, then 302
                                                 to redirect_uri?code=..&state=..&iss=..
  POST /token                                    authorization_code (PKCE verified) and
                                                 refresh_token; an ES256 JWT access token
  GET  /jwks.json                                the public key (kid "as-key-1")

The access token carries iss, aud (the RFC 8707 `resource` the client sent, else --audience),
sub, scope, exp, iat, and the `kid` in its header. Every request is logged as one JSON line
{"method", "path", "params", "status", "error"} to --log (default stderr): `params` are the
query and form parameters, so a test can see that PKCE and `resource` were used.
"""

import argparse
import base64
import hashlib
import json
import os
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _peerutil import die_with_parent  # noqa: E402

KID = "as-key-1"
SCOPES = ["tools:read", "tools:call"]
CODE_TTL_S = 60


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def b64url(n: int) -> str:
    return base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def valid_resource(resource: str) -> bool:
    """RFC 8707 2: an absolute URI without a fragment."""
    parts = urlsplit(resource)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.fragment and "#" not in resource


class State:
    def __init__(self, issuer: str, audience: str | None, token_ttl: int, log):
        self.issuer, self.audience, self.token_ttl, self.log_file = issuer, audience, token_ttl, log
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.lock = threading.Lock()
        self.clients: dict[str, dict] = {}
        self.codes: dict[str, dict] = {}
        self.refresh: dict[str, dict] = {}

    def metadata(self) -> dict:
        i = self.issuer
        return {
            "issuer": i,
            "authorization_endpoint": f"{i}/authorize",
            "token_endpoint": f"{i}/token",
            "registration_endpoint": f"{i}/register",
            "jwks_uri": f"{i}/jwks.json",
            "scopes_supported": SCOPES,
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["none"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
        }

    def jwks(self) -> dict:
        n = self.key.public_key().public_numbers()
        return {"keys": [{"kty": "EC", "crv": "P-256", "x": b64url(n.x), "y": b64url(n.y),
                          "kid": KID, "alg": "ES256", "use": "sig"}]}

    def log(self, entry: dict) -> None:
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self.lock:
            if self.log_file is None:
                sys.stderr.write(line)
                sys.stderr.flush()
            else:
                with open(self.log_file, "a", encoding="utf-8") as f:
                    f.write(line)

    def register(self, body: dict) -> dict:
        uris = body.get("redirect_uris")
        if not isinstance(uris, list) or not uris or not all(isinstance(u, str) and urlsplit(u).scheme for u in uris):
            raise OAuthError(400, "invalid_redirect_uri", "redirect_uris must list absolute URIs")
        method = body.get("token_endpoint_auth_method") or "none"
        if method != "none":
            raise OAuthError(400, "invalid_client_metadata", "only public clients (token_endpoint_auth_method none)")
        client = {
            "client_id": "client-" + secrets.token_hex(8),
            "client_id_issued_at": int(time.time()),
            "redirect_uris": uris,
            "token_endpoint_auth_method": "none",
            "grant_types": body.get("grant_types") or ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_name": body.get("client_name"),
            "scope": body.get("scope"),
        }
        client = {k: v for k, v in client.items() if v is not None}
        with self.lock:
            self.clients[client["client_id"]] = client
        return client

    def authorize(self, q: dict) -> str:
        """Checks the request; returns the redirect Location (errors before the redirect_uri is
        trusted are raised; after it, they go back to the client as RFC 6749 4.1.2.1 says)."""
        client = self.clients.get(q.get("client_id", ""))
        if client is None:
            raise OAuthError(400, "invalid_client", "unknown client_id")
        redirect = q.get("redirect_uri", "")
        if redirect not in client["redirect_uris"]:
            raise OAuthError(400, "invalid_request", "redirect_uri is not registered for this client")

        def back(params: dict) -> str:
            sep = "&" if urlsplit(redirect).query else "?"
            return redirect + sep + urlencode({**params, "state": q.get("state", ""), "iss": self.issuer})

        if q.get("response_type") != "code":
            return back({"error": "unsupported_response_type"})
        if q.get("code_challenge_method") != "S256" or len(q.get("code_challenge", "")) < 43:
            return back({"error": "invalid_request", "error_description": "PKCE S256 code_challenge required"})
        resource = q.get("resource")
        if resource is not None and not valid_resource(resource):
            return back({"error": "invalid_target", "error_description": "resource is not an absolute URI"})
        scope = q.get("scope") or " ".join(SCOPES)
        if any(s not in SCOPES + ["offline_access"] for s in scope.split()):
            return back({"error": "invalid_scope"})
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = {
                "client_id": client["client_id"], "redirect_uri": redirect, "challenge": q["code_challenge"],
                "resource": resource, "scope": scope, "expires": time.time() + CODE_TTL_S,
            }
        return back({"code": code})

    def token(self, form: dict) -> dict:
        grant = form.get("grant_type")
        client_id = form.get("client_id", "")
        if client_id not in self.clients:
            raise OAuthError(401, "invalid_client", "unknown client_id")
        if grant == "authorization_code":
            with self.lock:
                code = self.codes.pop(form.get("code", ""), None)
            if code is None or code["expires"] < time.time() or code["client_id"] != client_id:
                raise OAuthError(400, "invalid_grant", "unknown, used or expired code")
            if form.get("redirect_uri") != code["redirect_uri"]:
                raise OAuthError(400, "invalid_grant", "redirect_uri differs from the authorization request")
            if s256(form.get("code_verifier", "")) != code["challenge"]:
                raise OAuthError(400, "invalid_grant", "PKCE verification failed")
            grant_info = code
        elif grant == "refresh_token":
            with self.lock:
                grant_info = self.refresh.pop(form.get("refresh_token", ""), None)
            if grant_info is None or grant_info["client_id"] != client_id:
                raise OAuthError(400, "invalid_grant", "unknown refresh token")
        else:
            raise OAuthError(400, "unsupported_grant_type", f"grant_type {grant!r}")
        resource = form.get("resource") or grant_info["resource"]
        if form.get("resource") and grant_info["resource"] and form["resource"] != grant_info["resource"]:
            raise OAuthError(400, "invalid_target", "resource differs from the one authorized")
        if resource is not None and not valid_resource(resource):
            raise OAuthError(400, "invalid_target", "resource is not an absolute URI")
        audience = resource or self.audience
        if audience is None:
            raise OAuthError(400, "invalid_target", "no resource sent and no default audience")
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": audience, "sub": "user-" + client_id, "scope": grant_info["scope"],
                  "client_id": client_id, "iat": now, "exp": now + self.token_ttl, "jti": secrets.token_hex(8)}
        access = jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": KID})
        refresh = secrets.token_urlsafe(24)
        with self.lock:
            self.refresh[refresh] = {"client_id": client_id, "resource": grant_info["resource"],
                                     "scope": grant_info["scope"]}
        return {"access_token": access, "token_type": "Bearer", "expires_in": self.token_ttl,
                "scope": grant_info["scope"], "refresh_token": refresh}


def handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # our own JSON log instead
            pass

        def reply(self, status: int, body: dict | None = None, headers: dict | None = None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "no-store")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def handle_one(self, method: str) -> None:
            url = urlsplit(self.path)
            params = {k: v[0] for k, v in parse_qs(url.query).items()}
            body = b""
            if method == "POST":
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            entry = {"method": method, "path": url.path, "params": params, "error": None}
            try:
                status, out, headers = self.route(method, url.path, params, body, entry)
            except OAuthError as e:
                status, out, headers = e.status, {"error": e.error, "error_description": e.description}, None
                entry["error"] = e.error
            entry["status"] = status
            state.log(entry)
            self.reply(status, out, headers)

        def route(self, method, path, params, body, entry):
            if method == "GET" and path == "/.well-known/oauth-authorization-server":
                return 200, state.metadata(), None
            if method == "GET" and path == "/jwks.json":
                return 200, state.jwks(), None
            if method == "POST" and path == "/register":
                try:
                    doc = json.loads(body or b"{}")
                except ValueError:
                    raise OAuthError(400, "invalid_client_metadata", "body is not JSON") from None
                entry["params"] = {k: v for k, v in doc.items() if isinstance(v, (str, list))}
                return 201, state.register(doc), None
            if method == "GET" and path == "/authorize":
                location = state.authorize(params)
                entry["location"] = location
                return 302, None, {"Location": location}
            if method == "POST" and path == "/token":
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                entry["params"] = form
                return 200, state.token(form), None
            raise OAuthError(404, "not_found", f"{method} {path}")

        def do_GET(self):
            self.handle_one("GET")

        def do_POST(self):
            self.handle_one("POST")

    return Handler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log", help="append one JSON line per request here (default: stderr)")
    ap.add_argument("--audience", help="aud for token requests that send no `resource`")
    ap.add_argument("--token-ttl", type=int, default=300, help="access token lifetime, seconds")
    args = ap.parse_args()
    die_with_parent()
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)
    issuer = f"http://127.0.0.1:{server.server_address[1]}"
    server.RequestHandlerClass = handler(State(issuer, args.audience, args.token_ttl, args.log))
    server.daemon_threads = True
    sys.stdout.write(issuer + "\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
