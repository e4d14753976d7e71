"""A self-signed certificate for 127.0.0.1, made with the openssl CLI, for tests of the HTTPS webhook."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

NO_OPENSSL = "the openssl CLI is not installed; it makes the webhook's test certificate"


def have_openssl() -> bool:
    return shutil.which("openssl") is not None


def self_signed(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) in ``directory``: EC P-256, one day, valid for localhost and 127.0.0.1."""
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=xpushare-webhook",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key
