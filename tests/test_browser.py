"""A real browser (headless Chromium) against the server: the handshake a dashboard makes,
with permessage-deflate negotiated the way browsers offer it."""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading

import pytest


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is required (scripts/test.sh installs it: apt-get install chromium)")


def run_page(html: str) -> str:
    """Serves `html` from a loopback HTTP server (as a dashboard would be) and returns the
    DOM after Chromium ran it."""
    body = html.encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    try:
        return _chromium_dom(url)
    finally:
        httpd.shutdown()


def _chromium_dom(url: str) -> str:
    out = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--virtual-time-budget=10000", "--dump-dom", url],
        capture_output=True, text=True, timeout=60, check=False,
    )
    return out.stdout


def test_browser_negotiates_subprotocol_and_permessage_deflate(densepose_server, densepose_token):
    page = f"""<html><body>waiting<script>
    const ws = new WebSocket("{densepose_server.url}?token={densepose_token}", ["wifi-densepose-v1"]);
    ws.onmessage = (e) => {{
      const m = JSON.parse(e.data);
      document.body.textContent = "RESULT ext=" + ws.extensions + " proto=" + ws.protocol
        + " type=" + m.type + " seq=" + m.metadata.sequence;
      ws.close();
    }};
    ws.onerror = () => {{ document.body.textContent = "RESULT error"; }};
    ws.onclose = (e) => {{ document.body.textContent += " close=" + e.code + " " + e.reason; }};
    </script></body></html>"""
    dom = run_page(page)
    assert "RESULT" in dom, dom[-500:]
    assert "proto=wifi-densepose-v1" in dom
    assert "ext=permessage-deflate" in dom
    assert "type=connection_status seq=1" in dom


def test_browser_without_token_is_refused(densepose_server):
    page = f"""<html><body>waiting<script>
    const ws = new WebSocket("{densepose_server.url}");
    ws.onopen = () => {{ document.body.textContent = "RESULT opened"; }};
    ws.onclose = (e) => {{ document.body.textContent = "RESULT closed " + e.code; }};
    </script></body></html>"""
    dom = run_page(page)
    assert "RESULT closed 1006" in dom, dom[-500:]
