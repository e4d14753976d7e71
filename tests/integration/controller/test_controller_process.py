"""``xpushare controller`` as a real process: it elects itself, installs the DeviceClasses, serves the
webhook over HTTPS, and on SIGTERM releases the Lease and exits 0."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.publisher import KubeApi
from dra_driver.core.kube import DEVICE_CLASSES
from dra_driver.simulation.apiserver import ApiServer
from tests.support.prometheus import scrape
from tests.unit.controller.admission.objects import BAD, admission_review, claim, configs

LEASE = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/xpushare-controller"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(
    condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes], timeout: float = 20
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"controller exited with {process.returncode} before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def webhook_denies(port: int, cert: Path) -> bool:
    try:
        context = ssl.create_default_context(cafile=str(cert))
        connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
        body = json.dumps(admission_review(claim(configs(BAD)))).encode()
        connection.request("POST", "/validate", body=body, headers={"Content-Type": "application/json"})
        answer = json.loads(connection.getresponse().read())
        connection.close()
    except OSError:
        return False
    return answer["response"]["allowed"] is False


def test_controller_process_leads_serves_and_stops_cleanly(
    apiserver: ApiServer,
    api: KubeApi,
    tmp_path: Path,
    certificate: tuple[Path, Path],
) -> None:
    kubeconfig = apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    port, metrics_port = free_port(), free_port()
    command = [
        sys.executable, "-m", "dra_driver", "controller", "--kubeconfig", str(kubeconfig),
        "--namespace", "kube-system", "--identity", "replica-a", "--lease-duration", "3",
        "--renew-deadline", "2", "--retry-period", "0.2", "--resync", "0.5", "--webhook-port", str(port),
        "--tls-cert-file", str(certificate[0]), "--tls-key-file", str(certificate[1]),
        "--metrics-address", f"127.0.0.1:{metrics_port}",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(api.list(DEVICE_CLASSES)) == 2, "the DeviceClasses", process)
        assert api.get(LEASE)["spec"]["holderIdentity"] == "replica-a"
        wait_for(lambda: webhook_denies(port, certificate[0]), "a webhook denial", process)
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        wait_for(lambda: bool(scrape(url)[1].find("xpushare_controller_reconciles_total")), "a pass", process)
        metrics = scrape(url)[1]
        assert metrics.value("xpushare_controller_leader") == 1
        assert metrics.value("xpushare_controller_reconciles_total", outcome="ok") >= 1
        assert metrics.value("xpushare_controller_reconcile_seconds_count") >= 1
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert process.returncode == 0, output.decode()
    assert api.get(LEASE)["spec"]["holderIdentity"] == ""
