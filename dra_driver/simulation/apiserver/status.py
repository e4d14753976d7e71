"""API errors as the Kubernetes ``Status`` objects a real API server answers with.

Every failure inside the server is raised as a ``StatusError`` (the client side's ``ApiError`` with the
Status details added) and turned into exactly one HTTP answer by the handler, so clients (the official
Python client, kubectl) see the same codes, reasons and causes that they would see from kube-apiserver
and their retry logic (409 Conflict, 410 Gone) works unchanged.
"""

from __future__ import annotations

from dra_driver.core.kube import ApiError
from dra_driver.core.kubetypes import Obj


class StatusError(ApiError):
    """A request the server refuses: ``status`` is its HTTP status, ``body()`` the Status it answers."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message, code, reason)
        self.message = message
        self.details = details

    @property
    def code(self) -> int:
        return self.status

    def body(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(qualified: str, name: str) -> Obj:
    resource, _, grp = qualified.partition(".")
    return {"name": name, "group": grp, "kind": resource}


def not_found(qualified: str, name: str) -> StatusError:
    return StatusError(404, "NotFound", f'{qualified} "{name}" not found', _details(qualified, name))


def already_exists(qualified: str, name: str) -> StatusError:
    message = f'{qualified} "{name}" already exists'
    return StatusError(409, "AlreadyExists", message, _details(qualified, name))


def conflict(qualified: str, name: str, why: str) -> StatusError:
    message = f'Operation cannot be fulfilled on {qualified} "{name}": {why}'
    return StatusError(409, "Conflict", message, _details(qualified, name))


def stale(qualified: str, name: str) -> StatusError:
    return conflict(
        qualified, name, "the object has been modified; please apply your changes to the latest version "
        "and try again",
    )


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def gone(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def method_not_allowed(message: str) -> StatusError:
    return StatusError(405, "MethodNotAllowed", message)


def unsupported_media(content_type: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - '
                    f'accepted media types include: application/json, application/yaml, '
                    f'application/merge-patch+json, application/strategic-merge-patch+json, '
                    f'application/json-patch+json, application/apply-patch+yaml (got "{content_type}")')


def not_acceptable() -> StatusError:
    return StatusError(406, "NotAcceptable", "only the following media types are accepted: application/json")


def too_large() -> StatusError:
    return StatusError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")


def path_not_found(path: str) -> StatusError:
    return StatusError(404, "NotFound", f"the server could not find the requested resource ({path})",
                    {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})


def invalid(kind: str, group: str, name: str, causes: list[Obj]) -> StatusError:
    """422 Invalid naming every bad field, formatted like kube-apiserver's field.ErrorList."""
    qualified = f"{kind}.{group}" if group else kind
    summary = ", ".join(f"{c['field']}: {c['message']}" for c in causes[:10])
    if len(causes) > 1:
        summary = f"[{summary}]"
    message = f'{qualified} "{name}" is invalid: {summary}'
    details = {"name": name, "group": group, "kind": kind, "causes": causes}
    return StatusError(422, "Invalid", message, details)


def cause(field_path: str, message: str, reason: str = "FieldValueInvalid") -> Obj:
    return {"reason": reason, "message": message, "field": field_path}


def success(kind: str, group: str, name: str, uid: str) -> Obj:
    """What DELETE answers for kinds whose registry does not return the deleted object."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": group, "kind": kind, "uid": uid},
    }
