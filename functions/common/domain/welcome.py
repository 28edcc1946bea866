"""The welcome email, in one place: subject, text and HTML bodies."""

from __future__ import annotations

import html
from dataclasses import dataclass

FALLBACK_GREETING_NAME = "there"


@dataclass(frozen=True)
class WelcomeEmail:
    subject: str
    text: str
    html: str


def render_welcome(name: str) -> WelcomeEmail:
    """"Hi {name}, Welcome!" with the name already cleaned to one line; escaped for HTML."""
    shown = name or FALLBACK_GREETING_NAME
    greeting = f"Hi {shown}, Welcome!"
    return WelcomeEmail(subject="Welcome!", text=greeting,
                        html=f"<html><body><p>Hi {html.escape(shown)}, Welcome!</p></body></html>")
