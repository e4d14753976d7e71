"""The ``xpushare`` command: every subcommand is listed, and errors end in a message, not a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dra_driver.cli import build_parser, main

SUBCOMMANDS = ("demo", "kubelet-plugin", "controller", "config", "schema", "sim")


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in usage


def test_no_subcommand_prints_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: xpushare" in capsys.readouterr().out


def test_every_subcommand_has_a_handler() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert set(SUBCOMMANDS) <= set(subparsers.choices)  # type: ignore[arg-type]


def test_python_dash_m_runs_the_same_program() -> None:
    result = subprocess.run([sys.executable, "-m", "dra_driver", "--version"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    assert result.stdout.startswith("xpushare ")


def test_a_component_error_is_a_message_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate", "/nonexistent/config.yaml"]) == 1
    err = capsys.readouterr().err
    assert "/nonexistent/config.yaml" in err
    assert "Traceback" not in err
