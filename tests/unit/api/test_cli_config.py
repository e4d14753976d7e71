"""``xpushare config validate`` and ``xpushare schema``, run as users run them."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dra_driver.cli import main
from dra_driver.cli.schema import render

PROJECT_ROOT = Path(__file__).resolve().parents[3]
COMMITTED_SCHEMA = PROJECT_ROOT / "deploy" / "schemas" / "sharingconfig.v1alpha1.schema.json"

CLAIM_YAML = """\
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata:
  name: shared-npu
spec:
  devices:
    requests:
    - name: npu
      exactly:
        deviceClassName: npu.xpushare.io
    config:
    - opaque:
        driver: gpu.example.com
        parameters: {sharing: timeslicing}
    - requests: [npu]
      opaque:
        driver: xpushare.io
        parameters:
          apiVersion: xpushare.io/v1alpha1
          kind: SharingConfig
          priority: urgent
          corePercent: 150
"""

GOOD_CLASS_YAML = """\
apiVersion: resource.k8s.io/v1
kind: DeviceClass
metadata:
  name: npu.xpushare.io
spec:
  config:
  - opaque:
      driver: xpushare.io
      parameters:
        apiVersion: xpushare.io/v1alpha1
        kind: SharingConfig
        computePolicy: fixed
"""


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_bare_config_in_json_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "c.json", '{"apiVersion": "xpushare.io/v1alpha1", "kind": "SharingConfig",'
                                     ' "memoryMiB": 4096, "corePercent": 25}')
    assert run_cli(capsys, "config", "validate", str(path)) == (0, "valid\n", "")


def test_claim_errors_name_their_path_and_other_drivers_are_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "config", "validate", str(write(tmp_path, "claim.yaml", CLAIM_YAML)))
    assert code == 1
    assert out.splitlines() == [
        'spec.devices.config[1].opaque.parameters.priority: must be one of high, normal, low (got "urgent")',
        "spec.devices.config[1].opaque.parameters.corePercent: must be between 1 and 100 (got 150)",
    ]


def test_several_documents_are_each_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad_bare = "apiVersion: xpushare.io/v1alpha1\nkind: SharingConfig\nmemoryMiB: '5'\n"
    path = write(tmp_path, "all.yaml", GOOD_CLASS_YAML + "---\n" + bad_bare)
    code, out, _ = run_cli(capsys, "config", "validate", str(path))
    expected = 'document 2: memoryMiB: must be an integer between 1 and 8796093022207 (got "5")\n'
    assert (code, out) == (1, expected)
    path = write(tmp_path, "good.yaml", GOOD_CLASS_YAML)
    assert run_cli(capsys, "config", "validate", str(path))[:2] == (0, "valid\n")


@pytest.mark.parametrize(("content", "expected"), [
    pytest.param('{"apiVersion": [', "is neither valid YAML nor JSON at line 1, column 17",
                 id="truncated JSON"),
    pytest.param("a: [b\n", "is neither valid YAML nor JSON at line 2, column 1", id="broken YAML"),
    pytest.param(b"\x00\xff\xfe", "is not UTF-8 text (invalid byte at offset 1)", id="binary garbage"),
    pytest.param("", "holds no object to validate", id="empty file"),
    pytest.param("[" * 5000 + "]" * 5000, "is nested too deeply to be a config", id="deep nesting"),
])
def test_garbage_files_give_one_clear_line_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes, expected: str
) -> None:
    path = write(tmp_path, "garbage", content)
    code, out, err = run_cli(capsys, "config", "validate", str(path))
    assert (code, out) == (1, "")
    assert err.startswith(f"error: {path} {expected}")
    assert "Traceback" not in err


def test_missing_file_names_the_file_and_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "config", "validate", str(tmp_path / "nope.yaml"))
    assert (code, err) == (1, f"error: read {tmp_path / 'nope.yaml'}: No such file or directory\n")


def test_a_list_document_is_not_a_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "config", "validate", str(write(tmp_path, "l.yaml", "- 1\n- 2\n")))
    assert (code, out) == (1, "parameters: must be a JSON object with apiVersion and kind (got an array)\n")


def test_stdin_is_read_for_dash(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"apiVersion: xpushare.io/v1alpha1\nkind: SharingConfig\n"))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert run_cli(capsys, "config", "validate", "-")[:2] == (0, "valid\n")


def test_validate_runs_as_a_module_in_a_fresh_process(tmp_path: Path) -> None:
    path = write(tmp_path, "claim.yaml", CLAIM_YAML)
    result = subprocess.run([sys.executable, "-m", "dra_driver", "config", "validate", str(path)],
                            capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT, check=False)
    assert result.returncode == 1, result.stderr
    assert "spec.devices.config[1].opaque.parameters.corePercent: must be between 1 and 100" in result.stdout
    assert result.stderr == ""


def test_schema_command_prints_the_model_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["properties"]["corePercent"] == {
        "description": schema["properties"]["corePercent"]["description"],
        "maximum": 100, "minimum": 1, "title": "corePercent", "type": "integer"}
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["apiVersion", "kind"]


def test_committed_schema_is_current() -> None:
    assert COMMITTED_SCHEMA.read_text(encoding="utf-8") == render(), (
        f"{COMMITTED_SCHEMA} is stale: run `xpushare schema > {COMMITTED_SCHEMA.relative_to(PROJECT_ROOT)}`")
