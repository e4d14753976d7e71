"""Render the Helm chart for the deploy tests, and find objects and containers in what it renders.

Rendering goes through helm-python-sdk (Helm's own template engine, no cluster): the same composition
of defaults and overrides that ``helm install`` performs, including values.schema.json checks.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import helm_python
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[3]
CHART_DIR = PROJECT_ROOT / "deploy" / "helm" / "xpushare"
MANIFESTS_DIR = PROJECT_ROOT / "deploy" / "manifests"
EXAMPLES_DIR = PROJECT_ROOT / "deploy" / "examples"
DEMO_INVENTORY = PROJECT_ROOT / "dra_driver" / "core" / "discovery" / "inventory" / "default.yaml"
RELEASE = "xpushare"
NAMESPACE = "xpushare-system"

Obj = dict[str, Any]

# Value sets every structural test runs against: the defaults and the variants an operator is most
# likely to pick.
VARIANTS: dict[str, Obj] = {
    "defaults": {},
    "exclusive": {"sliceMode": "exclusive"},
    "ascend": {"discovery": {"backend": "ascend"}, "logging": {"json": False, "level": "DEBUG"}},
    "nvidia": {
        "discovery": {"backend": "nvidia"},
        "ascend": {"enabled": False},
        "nvidia": {"enabled": True, "cdiKind": "nvidia.com/gpu"},
        "telemetry": {"otlpEndpoint": "http://otel-collector.observability:4317"},
    },
    "no-webhook": {"webhook": {"enabled": False}},
    "cert-manager": {"webhook": {"tls": {"source": "certManager"}}},
    "no-metrics": {"metrics": {"enabled": False}, "webhook": {"enabled": False}},
    "mock": {
        "discovery": {"backend": "mock", "mock": {"inventory": DEMO_INVENTORY.read_text()}},
        "kubeletPlugin": {"privileged": False, "publishSlices": False},
        "shim": {"enabled": False},
    },
}


@cache
def _rendered(values_json: str, release: str, namespace: str) -> dict[str, str]:
    with helm_python.Chart.load(CHART_DIR) as chart:
        result: dict[str, str] = chart.render(json.loads(values_json), name=release, namespace=namespace)
    return result


def render_files(
    values: Obj | None = None, release: str = RELEASE, namespace: str = NAMESPACE
) -> dict[str, str]:
    """Template path -> rendered text (NOTES.txt included)."""
    return dict(_rendered(json.dumps(values or {}, sort_keys=True), release, namespace))


def render(values: Obj | None = None, release: str = RELEASE, namespace: str = NAMESPACE) -> list[Obj]:
    """Every object the chart renders with ``values`` (fresh copies: tests may modify them)."""
    objects: list[Obj] = []
    for path, text in sorted(render_files(values, release, namespace).items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return copy.deepcopy(objects)


def find(objects: list[Obj], kind: str, name: str | None = None) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def container(workload: Obj, name: str) -> Obj:
    spec = workload["spec"]["template"]["spec"]
    matches = [c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == name]
    assert len(matches) == 1, f"{workload['kind']} has no single container {name!r}"
    found: Obj = matches[0]
    return found


def one_mount(item: Obj, volume: str) -> str:
    """The one path where a container mounts ``volume``."""
    paths: list[str] = [m["mountPath"] for m in item.get("volumeMounts", []) if m["name"] == volume]
    assert len(paths) == 1, f"{item['name']} mounts {volume} {len(paths)} times"
    return paths[0]


def load_yaml_documents(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
