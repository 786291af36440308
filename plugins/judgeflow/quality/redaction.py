"""Mask secrets and personal data in texts that leave judgeflow: Slack alerts, the UI view, the run report.

Responses and the judge's rationales quote what users typed: e-mail addresses, phone numbers, card
numbers, and now and then a pasted credential. :func:`redact` replaces each with a bracketed mask
(``[email]``, ``[phone]``, ``[card]``, ``[aws key]``, ``[jwt]``, ``Bearer [token]``, ``[slack token]``,
``[private key]``, ``[key]``) and leaves everything else as it was, in particular dates
(``2026-11-30``, ``30.11.2026``), order numbers (``#12345678``, ``4412-3456-7890``) and version strings
(``1.2.3.4567``), which the old catch-all phone pattern masked as ``[phone]``.

Why a library for phone numbers and rules of our own for the rest:

- **Phone numbers** are found by ``phonenumbers`` (Google's libphonenumber, ported):
  ``PhoneNumberMatcher`` with ``Leniency.VALID`` only reports a digit run that is a *valid* number of
  some numbering plan (the right length for its country and area code, a real prefix), which is what
  tells ``+44 20 7946 0958`` from ``2026-11-30``. Numbers without a country code are read as numbers
  of ``region`` (``US`` unless the caller says otherwise).
- **Card numbers** are 13 to 19 digits (spaces or dashes between groups allowed) that pass the Luhn
  check, so a long order number is masked only when its check digit happens to fit (one in ten).
- **Credentials** are the documented shapes of each issuer: AWS access key ids (``AKIA``/``ASIA``
  and their siblings, 20 characters) and ``aws_secret_access_key = ...`` values, JWTs (three base64url
  parts, the first two starting ``eyJ``), ``Authorization: Bearer ...``, Slack tokens (``xoxb-``,
  ``xoxp-``, ``xapp-``, ...) and webhook URLs, PEM private-key blocks (the whole block, or to the end of
  a text cut inside one), and the generic ``sk-...``/``api_...`` keys and long mixed letter-and-digit
  runs the alerts always masked (UUIDs excepted: they are ids people search by).

The rules run in a fixed order, most specific first, so a JWT is called a JWT rather than three
keys; a mask never contains digits, so a later rule never re-matches one. Pure and deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Callable

DEFAULT_REGION = "US"
"""How phone numbers without a ``+`` country code are read."""

_PEM_LABEL = r"(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
_PRIVATE_KEY = re.compile(rf"-----BEGIN {_PEM_LABEL}(?:.*?-----END {_PEM_LABEL}|.*\Z)", re.DOTALL)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"\b(Bearer)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_SLACK = re.compile(
    r"\bxox[abposre]-[A-Za-z0-9-]{10,}|\bxapp-[A-Za-z0-9-]{10,}"
    r"|https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_-]+"
)
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|A3T[A-Z0-9])[A-Z0-9]{16}\b")
_AWS_SECRET = re.compile(
    r"(\baws_?secret(?:_access)?_?key\b[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])", re.IGNORECASE
)
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
_GENERIC_KEY = re.compile(
    r"\b(?:sk|pk|rk|api|key|token|secret)[-_][A-Za-z0-9_-]{8,}"
    rf"|\b(?!{_UUID})(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{{32,}}\b"
)


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number carries in its last digit."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _cards(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return "[card]" if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group(0)

    return _CARD.sub(mask, text)


def _phones(text: str, region: str) -> str:
    if not any(c.isdigit() for c in text):
        return text
    import phonenumbers  # its metadata loads lazily; only texts with digits pay for it

    found = list(phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID))
    for match in reversed(found):  # from the end, so earlier offsets stay right
        text = text[: match.start] + "[phone]" + text[match.end :]
    return text


def _rules(region: str) -> tuple[Callable[[str], str], ...]:
    return (
        lambda t: _PRIVATE_KEY.sub("[private key]", t),
        lambda t: _JWT.sub("[jwt]", t),
        lambda t: _BEARER.sub(r"\1 [token]", t),
        lambda t: _SLACK.sub("[slack token]", t),
        lambda t: _AWS_KEY_ID.sub("[aws key]", t),
        lambda t: _AWS_SECRET.sub(r"\1[aws key]", t),
        _cards,
        lambda t: _EMAIL.sub("[email]", t),
        lambda t: _phones(t, region),
        lambda t: _GENERIC_KEY.sub("[key]", t),
    )


def redact(text: str, *, region: str = DEFAULT_REGION) -> str:
    """``text`` with every secret and personal detail masked (see the module docstring for what)."""
    for rule in _rules(region):
        text = rule(text)
    return text


__all__ = ["DEFAULT_REGION", "luhn_valid", "redact"]
