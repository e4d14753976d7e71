"""Checks on the claim names the kubelet sends, before any of them reaches a file name.

A claim's UID names its checkpoint record, quota record, limits file and CDI spec, so a UID such as
``../../etc/x`` from a buggy or hostile caller would let prepare or unprepare write or delete a file
outside the plugin's directories. Every UID, name and namespace from the wire is checked against the
form Kubernetes gives it; a claim that fails gets its own error, naming the field and the allowed form.
"""

from __future__ import annotations

import re

from api.errors import ConfigError

# Kubernetes UIDs are UUIDs; the check is looser (any letters, digits and '-') so that test and
# simulated API servers' UIDs pass, while nothing that could leave a directory does.
_UID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,127}")
_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_DNS_LABEL = re.compile(_LABEL)
_DNS_SUBDOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*")

UID_FORM = "a Kubernetes UID: 1-128 letters, digits or '-', starting with a letter or digit"
LABEL_FORM = "a DNS label: 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit"
SUBDOMAIN_FORM = (
    "a DNS subdomain: at most 253 characters, dot-separated DNS labels of lowercase letters, digits or '-'"
)


class ClaimNameError(ConfigError):
    """A claim UID, name or namespace from the kubelet does not have the form Kubernetes gives it."""


def valid_uid(uid: str) -> bool:
    return _UID.fullmatch(uid) is not None


def claim_name_problem(namespace: str, name: str, uid: str) -> str | None:
    """What is wrong with a claim's identity as the kubelet sent it (``None``: nothing)."""
    if not valid_uid(uid):
        return f"claim uid {uid!r} is not valid; allowed: {UID_FORM}"
    if _DNS_LABEL.fullmatch(namespace) is None:
        return f"claim {uid}: namespace {namespace!r} is not valid; allowed: {LABEL_FORM}"
    if len(name) > 253 or _DNS_SUBDOMAIN.fullmatch(name) is None:
        return f"claim {uid}: name {name!r} is not valid; allowed: {SUBDOMAIN_FORM}"
    return None


def check_claim_name(namespace: str, name: str, uid: str) -> None:
    """Raise ``ClaimNameError`` unless the claim's UID, name and namespace have Kubernetes' form."""
    problem = claim_name_problem(namespace, name, uid)
    if problem is not None:
        raise ClaimNameError(problem)
