"""`make console-screenshot`: docs/console.png, the console while `localcloud run` sends a sample file.

    python -m bench.console_screenshot [--endpoint http://127.0.0.1:4566] [--rows 6000] [--email ADDRESS]
"""

from __future__ import annotations

import argparse
import subprocess  # nosec B404
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.browser import browser_missing, launch_chromium

SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "console.png"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", default="http://127.0.0.1:4566")
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--email", default="david.brown.2@example.com", help="the contact to look up")
    args = parser.parse_args()
    if (why := browser_missing()) is not None:
        raise SystemExit(why)
    url = args.endpoint.rstrip("/") + "/_localcloud/"
    sample = Path(tempfile.mkdtemp()) / "contacts-console.csv"
    localcloud = [sys.executable, "-m", "localcloud", "--endpoint", args.endpoint]
    subprocess.run([*localcloud, "sample", str(sample), "--rows", str(args.rows), "--start", "8000",  # noqa: S603  # nosec B603
                    "--invalid-every", "89", "--seed", str(int(time.time()))], check=True, capture_output=True)
    run = subprocess.Popen([*localcloud, "run", "--json", str(sample)],  # noqa: S603  # nosec B603
                           stdout=subprocess.DEVNULL)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url)
        row = page.locator("#jobs tbody tr[data-key='incoming/contacts-console.csv'][data-status='SENDING']")
        expect(row).to_be_visible(timeout=120_000)
        row.click()
        expect(page.locator("#job-detail")).to_contain_text("Read as:")
        page.fill("#contact-email", args.email)
        page.click("#contact-form button")
        expect(page.locator("#contact-ledger")).to_be_visible()
        time.sleep(8)  # a few samples in the chart while it sends
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        browser.close()
    run.wait(timeout=600)
    print(f"wrote {SCREENSHOT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
