"""Look at the built documentation site in headless Chromium: screenshots, and any JavaScript
error, failed console message or failed request, per page.

    mkdocs build --strict -d /tmp/site
    python scripts/check_site.py /tmp/site /tmp/shots / api/search/

Needs Chromium (Debian: ``apt-get install chromium``) and Playwright's Python package
(``pip install playwright``; its own browser download is not needed). Not part of the test
suite, which has no browser; exit status 1 when a page had an error.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def check(site: Path, out: Path, pages: list[str], chromium: str) -> dict[str, dict]:
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    out.mkdir(parents=True, exist_ok=True)
    report = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=FLAGS)
        for page_path in pages:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e, errors=errors: errors.append(f"pageerror: {e}"))
            page.on("console", lambda m, errors=errors: m.type == "error"
                    and errors.append(f"console: {m.text}"))
            page.on("requestfailed", lambda r, errors=errors: r.url.startswith(base)
                    and errors.append(f"request failed: {r.url}"))
            response = page.goto(base + page_path.lstrip("/"), wait_until="networkidle")
            shot = out / ((page_path.strip("/").replace("/", "_") or "home") + ".png")
            page.screenshot(path=str(shot))
            report[page_path] = {"status": response.status if response else None,
                                 "title": page.title(), "errors": errors,
                                 "screenshot": str(shot),
                                 "text_chars": len(page.inner_text("article"))}
            page.close()
        browser.close()
    server.shutdown()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the built site (mkdocs build -d SITE)")
    parser.add_argument("out", type=Path, help="folder for the screenshots")
    parser.add_argument("pages", nargs="*", default=["/", "api/search/"],
                        help="pages to open, relative to the site (default: home, API search)")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the browser to drive")
    args = parser.parse_args()
    report = check(args.site, args.out, args.pages, args.chromium)
    print(json.dumps(report, indent=2))
    raise SystemExit(int(any(r["errors"] or r["status"] != 200 for r in report.values())))


if __name__ == "__main__":
    main()
