"""HTTPS with a self-signed certificate that the written kubeconfig trusts."""

from __future__ import annotations

import shutil
import ssl
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client, config, watch

from dra_driver.simulation.apiserver import ApiServer
from tests.integration.apiserver import objects

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


def test_https_with_the_kubeconfig_verifies_and_serves(tmp_path: Path) -> None:
    with ApiServer(tls_dir=tmp_path / "tls") as server:
        assert server.url.startswith("https://127.0.0.1:")
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        api = config.new_client_from_config(config_file=str(kubeconfig))
        try:
            core = client.CoreV1Api(api)
            assert "default" in {ns.metadata.name for ns in core.list_namespace().items}
            core.create_node(objects.node("n1"))
            stream = watch.Watch()
            events = [e["object"].metadata.name for e in stream.stream(core.list_node, timeout_seconds=1)]
            assert events == ["n1"]
        finally:
            api.close()


def test_https_refuses_clients_that_do_not_trust_it(tmp_path: Path) -> None:
    with ApiServer(tls_dir=tmp_path / "tls") as server, pytest.raises(urllib.error.URLError) as info:
        urllib.request.urlopen(f"{server.url}/version", timeout=10,  # noqa: S310 - an https URL
                               context=ssl.create_default_context())
    assert isinstance(info.value.reason, ssl.SSLCertVerificationError)
