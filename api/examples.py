"""Request examples of every command route, shown in /docs and /redoc.

The bodies the README's "Try it" sends are here as they are there (a test
holds the two together), and every other command has one in the same story:
Ann Lee's account at the central store. Each example is sent to the real API
by tests/api/test_docs.py, so none can drift from what the API accepts.
"""

from __future__ import annotations

from typing import Any

ACCOUNT = "/v1/accounts/{account_id}"

# By (method, path): example name → (summary, body).
EXAMPLES: dict[tuple[str, str], dict[str, tuple[str, Any]]] = {
    ("POST", "/v1/accounts"): {
        "open": (
            "Open an account (README)",
            {
                "external_ref": "POS-1001",
                "segment": "gold",
                "channel": "store",
                "customer": {
                    "name": "Ann Lee",
                    "email": "ann.lee@example.com",
                    "phone": "+852 1234 5678",
                },
            },
        ),
    },
    ("PATCH", ACCOUNT): {
        "phone": (
            "A new phone number (README; send If-Match with the version read)",
            {"customer": {"phone": "+852 9876 5432"}},
        ),
    },
    ("POST", f"{ACCOUNT}/activities"): {
        "purchase": (
            "A purchase (README)",
            {
                "type": "purchase",
                "amount": "249.90",
                "cost": "140.00",
                "currency": "HKD",
                "store": "central",
            },
        ),
        "refund": (
            "A refund of part of it",
            {
                "type": "refund",
                "amount": "49.90",
                "cost": "28.00",
                "currency": "HKD",
                "store": "central",
            },
        ),
        "visit": ("A visit (README)", {"type": "visit", "channel": "app", "location": "home"}),
        "inquiry_opened": (
            "An inquiry opened",
            {
                "type": "inquiry_opened",
                "inquiry_id": "Q-1001",
                "channel": "phone",
                "topic": "billing",
            },
        ),
        "inquiry_answered": (
            "The inquiry answered",
            {"type": "inquiry_answered", "inquiry_id": "Q-1001", "channel": "phone"},
        ),
        "complaint_lodged": (
            "A complaint lodged",
            {
                "type": "complaint_lodged",
                "complaint_id": "C-1001",
                "category": "service",
                "severity": "medium",
            },
        ),
        "complaint_resolved": (
            "The complaint resolved",
            {
                "type": "complaint_resolved",
                "complaint_id": "C-1001",
                "resolution": "refunded",
                "satisfied": True,
            },
        ),
        "feedback": (
            "Feedback given",
            {"type": "feedback", "score": 5, "comment": "quick and friendly"},
        ),
    },
    ("POST", f"{ACCOUNT}/confirm-details"): {
        "confirm": ("The customer confirmed the details", {"reason": "checked at the counter"}),
    },
    ("POST", f"{ACCOUNT}/segment"): {
        "vip": ("Move to the vip segment", {"segment": "vip", "reason": "spend over the year"}),
    },
    ("POST", f"{ACCOUNT}/plan"): {
        "premium": ("Move to the premium plan", {"service_plan": "premium"}),
    },
    ("POST", f"{ACCOUNT}/close"): {
        "request": (
            "Closed at the customer's request",
            {"reason": "customer_request", "note": "moving abroad"},
        ),
    },
    ("POST", f"{ACCOUNT}/erase"): {
        "request": ("Erase on the customer's request", {"reason": "request"}),
    },
    ("PUT", "/v1/guidelines"): {
        "targets": (
            "First response within a day, satisfaction 4 or more",
            {
                "first_response_hours_p90": {"comparison": "at_most", "target": 24},
                "satisfaction": {"comparison": "at_least", "target": 4.2},
            },
        ),
    },
}


def add_examples(document: dict[str, Any]) -> None:
    """Put EXAMPLES on the JSON request body of their operations in `document`."""
    for (method, path), examples in EXAMPLES.items():
        body = document["paths"][path][method.lower()]["requestBody"]
        body["content"]["application/json"]["examples"] = {
            name: {"summary": summary, "value": value}
            for name, (summary, value) in examples.items()
        }
