"""Admission for our SharingConfig: the pure AdmissionReview decision and its HTTPS server."""

from controller.admission.review import decide, review, review_json
from controller.admission.server import WebhookError, WebhookServer

__all__ = ["WebhookError", "WebhookServer", "decide", "review", "review_json"]
