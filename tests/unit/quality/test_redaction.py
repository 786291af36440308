"""What redaction masks and what it must leave alone, as one table: every row is a real-looking text.

Positive rows name the mask they expect; negative rows (dates, order numbers, versions, ids) must come
out exactly as they went in. The old catch-all phone pattern turned most of the negative rows into
``[phone]``.
"""

from __future__ import annotations

import pytest

from judgeflow.quality.redaction import luhn_valid, redact

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7x9Q\nq0lR2t+Z9w==\n-----END RSA PRIVATE KEY-----"

MASKED = [
    pytest.param("write to jo.doe+x@example.co.uk today", "write to [email] today", id="email"),
    pytest.param("ask refunds@shop.example.", "ask [email].", id="email-end-of-sentence"),
    pytest.param("call +44 20 7946 0958 now", "call [phone] now", id="phone-international"),
    pytest.param("call (415) 555-0132 today", "call [phone] today", id="phone-us-parentheses"),
    pytest.param("tel 415.555.0132, ext. none", "tel [phone], ext. none", id="phone-us-dots"),
    pytest.param("ring +49 30 901820 please", "ring [phone] please", id="phone-germany"),
    pytest.param("card 4111 1111 1111 1111 on file", "card [card] on file", id="card-visa-spaces"),
    pytest.param("card 5500-0000-0000-0004.", "card [card].", id="card-mastercard-dashes"),
    pytest.param("amex 378282246310005 used", "amex [card] used", id="card-amex-plain"),
    pytest.param("key AKIAIOSFODNN7EXAMPLE leaked", "key [aws key] leaked", id="aws-access-key-id"),
    pytest.param("session ASIAY34FZKBOKMUTVV7A set", "session [aws key] set", id="aws-temporary-key-id"),
    pytest.param(
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_access_key = [aws key]",
        id="aws-secret-key",
    ),
    pytest.param(f"token {JWT} expired", "token [jwt] expired", id="jwt"),
    pytest.param("Authorization: Bearer abc.DEF-123_xyz~9", "Authorization: Bearer [token]", id="bearer"),
    pytest.param("use bearer 9f8e7d6c5b4a3210", "use bearer [token]", id="bearer-lowercase"),
    pytest.param("bot xoxb-1234567890-0987654321-AbCdEfGhIjKl ok", "bot [slack token] ok", id="slack-bot-token"),
    pytest.param("app xapp-1-A0123BCDE-1234567890-abcdef12 ok", "app [slack token] ok", id="slack-app-token"),
    pytest.param(
        "post to https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX now",
        "post to [slack token] now",
        id="slack-webhook-url",
    ),
    pytest.param(f"here:\n{PEM}\nthanks", "here:\n[private key]\nthanks", id="private-key-block"),
    pytest.param("key -----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN", "key [private key]", id="private-key-cut-off"),
    pytest.param("use sk-ant-abcdefghijklmnop here", "use [key] here", id="prefixed-key"),
    pytest.param("token 0123456789abcdef0123456789abcdef01", "token [key]", id="long-token"),
    pytest.param(
        "mail a@b.io or call +1 415 555 0132, card 4111111111111111",
        "mail [email] or call [phone], card [card]",
        id="several-in-one-text",
    ),
]

KEPT = [
    pytest.param("order 12345 shipped in 3 days", id="plain-numbers"),
    pytest.param("delivered on 2026-11-30 at 14:05", id="iso-date"),
    pytest.param("delivered on 30.11.2026", id="european-date"),
    pytest.param("delivered on 11/30/2026", id="us-date"),
    pytest.param("between 2026-11-01 and 2026-11-30", id="date-range"),
    pytest.param("order #12345678 is late", id="order-number-hash"),
    pytest.param("order number 4412-3456-7890 refunded", id="order-number-dashes"),
    pytest.param("order 2026113012345 placed", id="order-number-long-digits"),
    pytest.param("order 4111 1111 1111 1112 placed", id="card-shaped-but-not-luhn"),
    pytest.param("upgrade to version 1.2.3.4567 first", id="version-four-parts"),
    pytest.param("runs on v2024.11.30-rc1", id="version-calendar"),
    pytest.param("Python 3.11.9 and Airflow 3.3.0", id="versions-semver"),
    pytest.param("request 3f2c1a4e-9b7d-4c2e-8a1f-0d9e8c7b6a54 failed", id="uuid"),
    pytest.param("tracking 1Z999AA10123456784 in transit", id="ups-tracking-number"),
    pytest.param("the bearer of this note", id="word-bearer"),
    pytest.param("price 1,299.00 USD, 15% off", id="money"),
    pytest.param("a_very_long_snake_case_identifier_name_here", id="long-identifier-no-digits"),
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_secrets_and_personal_data_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", KEPT)
def test_dates_order_numbers_and_versions_stay_as_they_are(text: str) -> None:
    assert redact(text) == text


def test_a_national_number_is_read_in_the_region_given() -> None:
    assert redact("ring 020 7946 0958", region="GB") == "ring [phone]"
    assert redact("ring 020 7946 0958", region="US") == "ring 020 7946 0958"


@pytest.mark.parametrize(
    ("digits", "valid"),
    [("4111111111111111", True), ("4111111111111112", False), ("79927398713", True), ("0", True)],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


def test_redacting_twice_changes_nothing_more() -> None:
    once = [redact(p.values[0]) for p in MASKED]
    assert [redact(t) for t in once] == once
