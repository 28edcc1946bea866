"""Headless Chromium for the console's tests and screenshot: Playwright's own browser when it was downloaded,
else the system's (Debian's `chromium`), which Playwright drives through `executable_path`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

SYSTEM_BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _playwright_own_browser() -> str | None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        own = playwright.chromium.executable_path
    return own if own and Path(own).exists() else None


def _system_browser() -> str | None:
    return next((found for name in SYSTEM_BROWSERS if (found := shutil.which(name))), None)


def browser_missing() -> str | None:
    """Why no browser can run here, or None."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright is not installed (make venv installs it)"
    if _playwright_own_browser() or _system_browser():
        return None
    return ("no browser: Playwright's Chromium download and a system chromium are both missing "
            "(.ci/run installs Debian's chromium; locally: apt-get install chromium)")


def launch_chromium(playwright: Any, args: list[str] | None = None) -> Any:
    own = playwright.chromium.executable_path
    executable = None if own and Path(own).exists() else _system_browser()
    # Chromium's sandbox cannot start as root (CI containers); the console is local and trusted.
    arguments = (["--no-sandbox"] if os.geteuid() == 0 else []) + list(args or [])
    return playwright.chromium.launch(executable_path=executable, headless=True, args=arguments)
