"""``xpushare config validate --kubeconfig`` asks the cluster whether it keeps capacity requests, and
warns about each request of the file that it would drop; a cluster that keeps them gets no warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from dra_driver.cli import main
from tests.realk8s.conftest import Cluster

TEMPLATE = """\
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: npu-16gi-25pct}
spec:
  spec:
    devices:
      requests:
      - name: npu
        exactly:
          deviceClassName: npu.xpushare.io
          capacity: {requests: {memory: 16Gi, cores: "25"}}
      - name: sized
        exactly:
          deviceClassName: npu.xpushare.io
          selectors:
          - cel: {expression: 'device.capacity["xpushare.io"].memory.compareTo(quantity("16Gi")) >= 0'}
"""


def validate(tmp_path: Path, capsys: pytest.CaptureFixture[str], cluster: Cluster) -> tuple[int, list[str]]:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    code = main(["config", "validate", str(path), "--kubeconfig", str(cluster.kubeconfig)])
    return code, capsys.readouterr().out.splitlines()


def test_a_cluster_that_drops_capacity_requests_gets_a_warning_per_request(
    old_cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = validate(tmp_path, capsys, old_cluster)
    assert code == 0
    (warning, valid) = lines
    assert warning.startswith(
        "warning: spec.spec.devices.requests[0].exactly.capacity.requests: this cluster drops capacity "
        "requests (DRAConsumableCapacity is off)"
    )
    assert valid == "valid"
    assert old_cluster.resource.list_resource_claim_for_all_namespaces().items == []  # a dry run


def test_a_cluster_that_keeps_them_gets_none(
    real_cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate(tmp_path, capsys, real_cluster) == (0, ["valid"])
