"""The committed stubs under ``api/kubelet/gen`` are what the generator makes from the committed protos."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from api.kubelet.generate import GEN_DIR, generate, stale_files


def test_committed_stubs_are_current(tmp_path: Path) -> None:
    written = generate(tmp_path / "gen")
    assert Path("dra/v1/api_pb2_grpc.pyi") in written
    stale = stale_files(GEN_DIR, tmp_path / "gen")
    tools = f"grpcio-tools {version('grpcio-tools')}, mypy-protobuf {version('mypy-protobuf')}"
    assert stale == [], f"stale stubs {stale} (with {tools}): run `python -m api.kubelet.generate`"


def test_stale_files_reports_changed_missing_and_extra_files(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    for root in (old, new):
        (root / "pkg").mkdir(parents=True)
        (root / "same.py").write_text("x = 1\n")
    (old / "pkg" / "api_pb2.py").write_text("a\n")
    (new / "pkg" / "api_pb2.py").write_text("b\n")
    (old / "gone.py").write_text("")
    (new / "added.pyi").write_text("")
    (old / "__pycache__").mkdir()
    (old / "__pycache__" / "same.cpython-311.pyc").write_bytes(b"\0")
    assert stale_files(old, new) == ["added.pyi", "gone.py", "pkg/api_pb2.py"]


def test_generated_modules_import_inside_the_package_only() -> None:
    """The grpc stubs load their messages from the package, not from a top-level ``dra`` module."""
    import sys

    from api.kubelet import dra_v1_grpc, dra_v1_pb2, registration_grpc, registration_pb2

    assert dra_v1_pb2.Claim.__module__ == "api.kubelet.gen.dra.v1.api_pb2"
    assert vars(dra_v1_grpc)["api_dot_kubelet_dot_gen_dot_dra_dot_v1_dot_api__pb2"] is dra_v1_pb2
    assert vars(registration_grpc)[
        "api_dot_kubelet_dot_gen_dot_pluginregistration_dot_v1_dot_api__pb2"] is registration_pb2
    assert not {"dra", "health", "pluginregistration"} & set(sys.modules)
