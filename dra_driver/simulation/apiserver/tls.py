"""Optional HTTPS for the embedded API server: a throw-away self-signed certificate for 127.0.0.1.

The certificate is made with the ``openssl`` command (no Python crypto dependency is needed for a test
server) and trusted by the kubeconfig the server writes (``certificate-authority-data``), so clients
verify it like a real cluster's serving certificate.
"""

from __future__ import annotations

import base64
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from api.errors import XPUShareError


class TlsError(XPUShareError):
    """No serving certificate could be made or loaded."""


@dataclass(frozen=True)
class ServingCert:
    cert: Path
    key: Path

    def authority_data(self) -> str:
        """The certificate as a kubeconfig's ``certificate-authority-data`` (it signs itself)."""
        return base64.b64encode(self.cert.read_bytes()).decode()

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as err:
            raise TlsError(f"load serving certificate {self.cert}: {err}") from err
        return context


def make_serving_cert(directory: Path, host: str) -> ServingCert:
    """A self-signed EC certificate for ``host`` (an IP address), localhost and 127.0.0.1, valid a year."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TlsError("TLS needs the openssl command to make a self-signed certificate; it was not found")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "apiserver.crt", directory / "apiserver.key"
    names = sorted({f"IP:{host}", "IP:127.0.0.1", "DNS:localhost"})
    command = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
               "-nodes", "-days", "365", "-subj", "/CN=xpushare-sim-apiserver",
               "-addext", f"subjectAltName={','.join(names)}", "-keyout", str(key), "-out", str(cert)]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        detail = getattr(err, "stderr", b"") or b""
        raise TlsError(f"make a self-signed certificate with openssl: {err} {detail.decode(errors='replace')}"
                       ) from err
    key.chmod(0o600)
    return ServingCert(cert, key)
