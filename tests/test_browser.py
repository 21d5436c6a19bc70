"""A real browser (headless Chromium) against the server: the handshake a dashboard makes,
with permessage-deflate negotiated the way browsers offer it."""

from __future__ import annotations

import http.server
import queue
import shutil
import subprocess
import tempfile
import threading

import pytest


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is required (scripts/test.sh installs it: apt-get install chromium)")


def run_page(html: str, timeout: float = 30.0) -> str:
    """Serves `html` from a loopback HTTP server (as a dashboard would be), opens it in
    headless Chromium, and returns what the page POSTs to `/result`. Waiting for the
    page's own report, instead of dumping the DOM after a time budget, does not depend on
    how fast the browser's virtual clock runs."""
    body = html.encode()
    results: queue.Queue = queue.Queue()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length", "0"))
            results.put(self.rfile.read(n).decode())
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    browser = subprocess.Popen(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", f"--user-data-dir={tempfile.mkdtemp()}", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        return results.get(timeout=timeout)
    except queue.Empty:
        pytest.fail(f"the page reported nothing within {timeout} s")
    finally:
        browser.kill()
        browser.wait()
        httpd.shutdown()


REPORT = 'fetch("/result", {method: "POST", body: %s});'


def test_browser_negotiates_subprotocol_and_permessage_deflate(densepose_server, densepose_token):
    page = f"""<html><body><script>
    const ws = new WebSocket("{densepose_server.url}?token={densepose_token}", ["wifi-densepose-v1"]);
    let reported = false;
    ws.onmessage = (e) => {{
      if (reported) return;
      reported = true;
      const m = JSON.parse(e.data);
      {REPORT % '"ext=" + ws.extensions + " proto=" + ws.protocol + " type=" + m.type + " seq=" + m.metadata.sequence'}
    }};
    ws.onerror = () => {{ if (!reported) {{ reported = true; {REPORT % '"error"'} }} }};
    </script></body></html>"""
    result = run_page(page)
    assert "proto=wifi-densepose-v1" in result, result
    assert "ext=permessage-deflate" in result
    assert "type=connection_status seq=1" in result


def test_browser_without_token_is_refused(densepose_server):
    page = f"""<html><body><script>
    const ws = new WebSocket("{densepose_server.url}");
    ws.onopen = () => {{ {REPORT % '"opened"'} }};
    ws.onclose = (e) => {{ {REPORT % '"closed " + e.code'} }};
    </script></body></html>"""
    assert run_page(page) == "closed 1006"
