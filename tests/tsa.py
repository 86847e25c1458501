"""A local RFC 3161 time-stamp authority for tests: `openssl ts -reply` behind a loopback
HTTP server, with a throwaway CA whose certificate `audit verify` checks tokens against."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"

CONFIG = """
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
certs = $dir/ca.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""
EXTENSIONS = (
    "basicConstraints=CA:FALSE\n"
    "keyUsage=critical,digitalSignature\n"
    "extendedKeyUsage=critical,timeStamping\n"
)


def _openssl(folder: Path, *args: str) -> bytes:
    done = subprocess.run(  # noqa: S603  (fixed arguments, no shell)
        [OPENSSL, *args], cwd=folder, capture_output=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def make_authority(folder: Path) -> Path:
    """A CA and a TSA certificate it signed, in `folder`; returns the openssl ts config."""
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl(
        folder, "req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "30",
        "-subj", "/CN=Portal test TSA CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign",
    )  # fmt: skip
    _openssl(folder, "req", *key, "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", "/CN=TSA")
    (folder / "ext.cnf").write_text(EXTENSIONS)
    _openssl(
        folder, "x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "tsa.crt", "-days", "30", "-extfile", "ext.cnf",
    )  # fmt: skip
    (folder / "serial").write_text("01\n")
    config = folder / "ts.cnf"
    config.write_text(CONFIG.format(dir=folder))
    return config


@dataclass(frozen=True)
class Authority:
    url: str
    ca_file: str
    requests: list[bytes]


@contextmanager
def local_authority() -> Iterator[Authority]:
    """A time-stamp authority on a free loopback port, for as long as the block runs."""
    folder = Path(tempfile.mkdtemp(prefix="portal-tsa-"))
    config = make_authority(folder)
    seen: list[bytes] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802  (http.server's name)
            query = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:  # openssl ts keeps its serial in a file
                seen.append(query)
                (folder / "query.tsq").write_bytes(query)
                _openssl(
                    folder, "ts", "-reply", "-config", str(config), "-queryfile", "query.tsq",
                    "-out", "reply.tsr",
                )  # fmt: skip
                body = (folder / "reply.tsr").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Authority(f"http://127.0.0.1:{server.server_port}/", str(folder / "ca.crt"), seen)
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(folder, ignore_errors=True)
