"""The CANN version from the toolkit's install info file."""

from __future__ import annotations

from pathlib import Path

from dra_driver.core.vendors.ascend import cann


def test_cann_version_from_install_info(tmp_path: Path) -> None:
    info = tmp_path / "aarch64-linux" / "ascend_toolkit_install.info"
    info.parent.mkdir()
    info.write_text("package_name=Ascend-cann-toolkit\nversion=8.0.RC2\ninnerversion=V100R001C18\n")
    assert cann.cann_version(str(tmp_path / "*" / "ascend_toolkit_install.info")) == "8.0.RC2"
    assert cann.cann_version(str(tmp_path / "missing.info")) == ""
