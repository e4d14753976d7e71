"""``xpushare diagnose`` against the API server: what the cluster holds about this node beside the node.

In order: the Node exists; its ResourceSlices of our driver (``cluster_slices``); the DeviceClasses of
the node's device types exist and still select our devices; the claims allocated here against the
plugin's checkpoint (``cluster_claims``). A request that fails is a finding about what could not be
checked: an unreachable server or refused credentials end the checks (each next request would fail the
same way), a forbidden list names the permission to grant, and the other checks go on.
"""

from __future__ import annotations

import contextlib
import functools
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from controller.deviceclasses import class_name, device_classes
from controller.publisher.publisher import pool_selector
from dra_driver.core.devices import Device, DeviceType
from dra_driver.core.kube import DEVICE_CLASSES, NODES, RESOURCE_SLICES, ApiError
from dra_driver.core.kubetypes import Obj, dig
from kubeletplugin.checkpoint import PreparedClaim
from kubeletplugin.cluster_claims import claim_findings
from kubeletplugin.cluster_reader import RESOURCE_CLAIMS, BudgetSpentError, ClusterReader, text
from kubeletplugin.cluster_slices import Published, device_findings, held_findings, pool_findings
from kubeletplugin.findings import Finding, Severity

T = TypeVar("T")
MAX_MESSAGE = 400  # an error's text from the server, clipped: it is not ours


@dataclass(frozen=True)
class NodeView:
    """What the node knows: its name, our driver, the devices discovery found (None: not asked, or it did
    not answer) and the claims the plugin prepared."""

    node: str
    driver: str
    devices: Sequence[Device] | None
    prepared: Mapping[str, PreparedClaim]


class _Skipped(Exception):  # noqa: N818 - control flow: a request failed, its finding is recorded
    pass


class _Stop(Exception):  # noqa: N818 - control flow: the API server cannot answer any further request
    pass


def _unanswered(subject: str, permission: str, err: ApiError) -> Finding:
    """The finding for a request that failed while the API server still answers others."""
    message = str(err)[:MAX_MESSAGE]
    if isinstance(err, BudgetSpentError):
        return Finding(
            Severity.WARNING,
            subject,
            f"not checked: {message}",
            "raise --api-timeout, or look at the API server's load",
        )
    if err.status == 403:
        return Finding(
            Severity.WARNING,
            subject,
            f"not checked: {permission} is forbidden to this identity ({message})",
            f"grant {permission} to it (a ClusterRole rule), or run diagnose with an admin --kubeconfig",
        )
    return Finding(
        Severity.WARNING,
        subject,
        f"not checked: {message}",
        "the API server answered with an error: try again",
    )


def _fatal(err: ApiError) -> Finding | None:
    """The finding for a failure that every next request would repeat; None for the others."""
    if err.status == 0 and not isinstance(err, BudgetSpentError):
        return Finding(
            Severity.ERROR,
            "API server",
            f"not reachable: {str(err)[:MAX_MESSAGE]}",
            "check the kubeconfig's server and the network from here; the findings above need no API server",
        )
    if err.status == 401:
        return Finding(
            Severity.ERROR,
            "API server",
            "the credentials were refused (401 Unauthorized)",
            "renew the kubeconfig's token or certificate (in the plugin's pod: its service account token)",
        )
    return None


class _Checks:
    """One run: the findings so far; each request goes through ``attempt``."""

    def __init__(self, reader: ClusterReader, view: NodeView) -> None:
        self.reader, self.view = reader, view
        self.found: list[Finding] = []
        self.published: dict[str, Published] = {}  # what the node's slices offer, once read
        self.pods_unread = False  # a pod read failed: no more are tried (the finding is recorded once)

    def attempt(self, subject: str, permission: str, request: Callable[[], T]) -> T:
        """``request()``; a failure is recorded as a finding and raised as ``_Skipped`` (or ``_Stop``)."""
        try:
            return request()
        except ApiError as err:
            fatal = _fatal(err)
            self.found.append(fatal or _unanswered(subject, permission, err))
            raise (_Stop if fatal is not None else _Skipped) from err

    def node(self) -> None:
        node = self.view.node
        if self.attempt(f"Node {node}", "get on nodes", lambda: self.reader.get(f"{NODES}/{node}")) is None:
            self.found.append(
                Finding(
                    Severity.ERROR,
                    f"Node {node}",
                    "does not exist in the cluster",
                    "--node names another node? (default: $NODE_NAME, else the pool of the prepared claims)",
                )
            )

    def slices(self) -> None:
        view = self.view
        selector = pool_selector(view.node, view.driver)
        slices = self.attempt(
            f"ResourceSlices of node {view.node}",
            "list on resourceslices.resource.k8s.io",
            lambda: self.reader.list(RESOURCE_SLICES, fieldSelector=selector),
        )
        found, published = pool_findings(view.node, slices)
        self.found += found
        if published and view.devices is not None:
            self.found += device_findings(published, view.devices)
        if published:
            self.found += held_findings(published, view.prepared, view.node)
        self.published = published

    def classes(self) -> None:
        view, published = self.view, self.published
        known = {t.value for t in DeviceType}
        types = {d.type for d in view.devices or ()} | {
            DeviceType(e.type) for e in published.values() if e.type in known
        }
        wanted = {
            text(c, "metadata", "name"): dig(c, "spec", "selectors") for c in device_classes(view.driver)
        }
        for device_type in sorted(types or set(DeviceType)):
            name = class_name(device_type, view.driver)
            subject = f"DeviceClass {name}"
            try:
                stored = self.attempt(
                    subject,
                    "get on deviceclasses.resource.k8s.io",
                    functools.partial(self.reader.get, f"{DEVICE_CLASSES}/{name}"),
                )
            except _Skipped:
                continue
            if stored is None:
                self.found.append(
                    Finding(
                        Severity.ERROR,
                        subject,
                        f"does not exist: claims for this node's {device_type.value} devices name it and "
                        "are refused",
                        "the cluster controller installs it: is it running (kubectl get deploy -A -l "
                        "app.kubernetes.io/component=controller)?",
                    )
                )
            elif dig(stored, "spec", "selectors") != wanted.get(name):
                self.found.append(
                    Finding(
                        Severity.WARNING,
                        subject,
                        "its selectors are not the driver's: claims of the class may not match this "
                        "driver's devices",
                        "the cluster controller restores them at its next pass; is it running?",
                    )
                )

    def claims(self) -> None:
        view = self.view
        claims = self.attempt(
            "ResourceClaims",
            "list on resourceclaims.resource.k8s.io",
            lambda: self.reader.list(RESOURCE_CLAIMS),
        )
        self.found += claim_findings(self.pod, claims, view.prepared, view.node, view.driver)

    def pod(self, namespace: str, name: str) -> Obj | None:
        """One pod (None when it is gone, or pods cannot be read: then one finding says so)."""
        if self.pods_unread:
            return None
        path = f"/api/v1/namespaces/{namespace}/pods/{name}"
        try:
            return self.attempt("Pods", "get on pods", functools.partial(self.reader.get, path))
        except _Skipped:
            self.pods_unread = True
            return None


def served_node(prepared: Mapping[str, PreparedClaim]) -> str:
    """The node the plugin serves as its prepared claims say (the pool of their devices is named after
    it); "" when none is prepared."""
    pools = Counter(device.pool for claim in prepared.values() for device in claim.devices)
    return pools.most_common(1)[0][0] if pools else ""


def check_cluster(reader: ClusterReader, view: NodeView) -> list[Finding]:
    """Every finding from the API server about this node, in the order found."""
    checks = _Checks(reader, view)
    try:
        for step in (checks.node, checks.slices, checks.classes, checks.claims):
            with contextlib.suppress(_Skipped):
                step()
    except _Stop:
        pass
    return checks.found
