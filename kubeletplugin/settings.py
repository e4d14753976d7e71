"""Settings of the node plugin process: every path is configurable, defaults are a real node's.

Validated once, at the edge (CLI flags or Helm values); a bad value raises ``ConfigError`` naming the
setting and what it allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from api.errors import ConfigError
from controller.settings import DRIVER_NAME, PartitionLayout, SliceMode, SliceSettings, parse_partitions
from dra_driver.core.metrics_server import Address, parse_address
from kubeletplugin.paths import DEFAULT_CDI_DIR, DEFAULT_RUN_DIR, DEFAULT_STATE_DIR, NodePaths

UNIX_PATH_MAX = 107  # sun_path holds 108 bytes, one of them the terminating NUL


@dataclass(frozen=True, slots=True)
class PluginSettings:
    node_name: str
    driver_name: str = DRIVER_NAME
    registry_dir: Path = Path("/var/lib/kubelet/plugins_registry")
    plugin_dir: Path | None = None  # default: /var/lib/kubelet/plugins/<driver>
    cdi_dir: Path = DEFAULT_CDI_DIR
    state_dir: Path = DEFAULT_STATE_DIR
    run_dir: Path = DEFAULT_RUN_DIR
    boot_id_path: Path = Path("/proc/sys/kernel/random/boot_id")
    device_root: Path = Path("/")
    driver_root: Path = Path("/")
    driver_lookup_root: Path | None = None  # where the plugin sees driver_root (None: at driver_root)
    shim_path: Path | None = None
    nvidia_cdi_kind: str | None = None
    discovery_backend: str = "auto"
    discovery_options: dict[str, Any] = field(default_factory=dict)
    kubeconfig: Path | None = None
    slice_mode: SliceMode = SliceMode.AUTO
    partition_layout: PartitionLayout = PartitionLayout.FIXED
    partitions: str = ""  # per key, the layout's pieces or sizes (``parse_partitions``); empty: defaults
    publish_slices: bool = True
    health_interval_s: float = 10.0
    checkpoint_lock_timeout_s: float = 10.0
    max_parallel_claims: int = 8
    grpc_workers: int = 16
    quota_annotations: bool = True  # apply the xpushare.io/quota annotation of prepared claims
    metrics_address: str = ""  # HOST:PORT of /metrics; empty (library and test default) or 0: off

    def __post_init__(self) -> None:
        if not self.node_name:
            raise ConfigError("node name: required (flag --node-name or $NODE_NAME)")
        if not 0.1 <= self.health_interval_s <= 3600:
            raise ConfigError(f"health interval: {self.health_interval_s} s is outside 0.1..3600 s")
        if not 0 < self.checkpoint_lock_timeout_s <= 600:
            raise ConfigError(
                f"checkpoint lock timeout: {self.checkpoint_lock_timeout_s} s is outside 0..600 s"
            )
        if not 1 <= self.max_parallel_claims <= 256:
            raise ConfigError(f"max parallel claims: {self.max_parallel_claims} is outside 1..256")
        if not 4 <= self.grpc_workers <= 1024:
            raise ConfigError(f"gRPC workers: {self.grpc_workers} is outside 4..1024")
        parse_address(self.metrics_address)  # raises ConfigError naming --metrics-address
        _ = self.slice_settings  # raises ConfigError naming partitions.KEY
        for name, path in (
            ("registration socket", self.registration_socket),
            ("DRA socket", self.dra_socket),
        ):
            if len(str(path)) > UNIX_PATH_MAX:
                raise ConfigError(
                    f"{name}: {path} is longer than {UNIX_PATH_MAX} bytes, the limit of a unix socket"
                )

    @property
    def slice_settings(self) -> SliceSettings:
        """How this node's devices are published, and the sizes its partitions have."""
        parsed = parse_partitions(self.partitions, self.partition_layout)
        settings = SliceSettings(
            driver_name=self.driver_name, mode=self.slice_mode, partition_layout=self.partition_layout
        )
        if self.partition_layout is PartitionLayout.FIXED:
            return replace(settings, fixed_partitions=parsed)
        return replace(settings, partition_profiles=parsed)

    @property
    def metrics_listen(self) -> Address | None:
        return parse_address(self.metrics_address)

    @property
    def dra_dir(self) -> Path:
        return self.plugin_dir or Path("/var/lib/kubelet/plugins") / self.driver_name

    @property
    def dra_socket(self) -> Path:
        return self.dra_dir / "dra.sock"

    @property
    def registration_socket(self) -> Path:
        return self.registry_dir / f"{self.driver_name}-reg.sock"

    @property
    def paths(self) -> NodePaths:
        """Every file the plugin keeps on the node, derived from the three directory flags."""
        return NodePaths(state_dir=self.state_dir, run_dir=self.run_dir, cdi_dir=self.cdi_dir)
