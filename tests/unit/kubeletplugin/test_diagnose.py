"""``xpushare diagnose`` on a node's real files: each damage it is meant to find, named with a hint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dra_driver.cli import main
from kubeletplugin import cdi
from kubeletplugin.diagnose import diagnose
from kubeletplugin.findings import Finding, Severity
from kubeletplugin.state import ClaimKey, ClaimPreparer
from shim.ledger import Board, ClaimLedger
from tests.support.plugin_claims import claim, shared
from tests.support.plugin_preparer import MemoryReader, node_preparer

UUID = "NPU-UUID-0"


def _node(tmp_path: Path) -> tuple[ClaimPreparer, ClaimKey]:
    reader = MemoryReader()
    preparer = node_preparer(tmp_path, reader)
    key = reader.add(claim("train", results=[shared("npu-0", memory="8Gi", cores="30")]))
    preparer.prepare(key)
    return preparer, key


def _about(findings: list[Finding], text: str) -> Finding:
    (found,) = [f for f in findings if text in f.message]
    return found


def test_a_healthy_node_has_nothing_to_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    preparer, _ = _node(tmp_path)
    assert diagnose(preparer.paths) == []
    paths = preparer.paths
    assert main(["diagnose", "--state-dir", str(paths.state_dir), "--run-dir", str(paths.run_dir),
                 "--cdi-dir", str(paths.cdi_dir), "--no-host"]) == 0
    assert capsys.readouterr().out.strip() == "no problems found (1 claims prepared on this node)"


def test_missing_files_are_errors_naming_the_claim_and_the_fix(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    preparer, key = _node(tmp_path)
    paths = preparer.paths
    paths.limits_file(key.uid).unlink()
    cdi.spec_path(paths.cdi_dir, key.uid).unlink()
    with Board.open(paths.board(UUID), UUID) as board:
        board.remove(key.uid)
    findings = diagnose(paths)
    assert {f.severity for f in findings} == {Severity.ERROR}
    assert all(f.subject == f"claim default/train ({key.uid})" for f in findings)
    assert "fails closed" in _about(findings, "limits file unusable").hint
    assert "cannot start" in _about(findings, "no CDI spec").hint
    assert "restart the plugin" in _about(findings, f"no entry on the board of {UUID}").hint
    code = main(["diagnose", "-o", "json", "--state-dir", str(paths.state_dir), "--run-dir",
                 str(paths.run_dir), "--cdi-dir", str(paths.cdi_dir), "--no-host"])
    assert code == 1
    body: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert len(body["findings"]) == 3
    assert body["findings"][0]["severity"] == "error"


def test_ledger_damage_refusals_and_stale_entries_are_warnings(tmp_path: Path) -> None:
    preparer, key = _node(tmp_path)
    paths = preparer.paths
    with ClaimLedger.open(paths.claim_ledger(UUID, key.uid), key.uid, UUID) as ledger:
        ledger.head_pointer().claim.refused_allocs = 2
        ledger.head_pointer().claim.refused_bytes = 3 << 30
    with Board.open(paths.board(UUID), UUID) as board:  # an unprepare that failed half way left this
        board.set("gone-claim", 1 << 30, 10)
    findings = diagnose(paths)
    assert {f.severity for f in findings} == {Severity.WARNING}
    refused = _about(findings, "2 allocation(s) on NPU-UUID-0 refused at its memory limit")
    assert "(3221225472 bytes asked)" in refused.message
    assert _about(findings, "board entry of claim gone-claim").subject == f"device {UUID}"
    paths.claim_ledger(UUID, key.uid).write_bytes(b"damaged by its tenant")
    assert "limit themselves alone" in _about(diagnose(paths), "ledger of NPU-UUID-0 cannot be read").hint


def test_a_damaged_checkpoint_record_is_reported(tmp_path: Path) -> None:
    preparer, _ = _node(tmp_path)
    (preparer.paths.checkpoint_dir / "broken.json").write_text("{not json")
    finding = _about(diagnose(preparer.paths), "unreadable")
    assert (finding.severity, finding.subject) == (Severity.ERROR, "checkpoint record broken.json")
