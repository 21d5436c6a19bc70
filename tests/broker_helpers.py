"""Processes for the several-node tests and benchmark: redis-server, nginx as the
WebSocket reverse proxy, and server nodes (tests/broker_node.py), each on a free loopback
port, as an unprivileged-style process with its files in a temporary directory."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

NODE_SCRIPT = Path(__file__).with_name("broker_node.py")


def find(name: str) -> str | None:
    """A program on PATH or in the sbin directories (Debian puts nginx in /usr/sbin)."""
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin:/usr/local/sbin"
    return shutil.which(name, path=path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")
            time.sleep(0.02)


class Redis:
    """``redis-server`` on a free loopback port, without persistence (a restart loses
    everything, which is the harder case for the nodes)."""

    def __init__(self, workdir: Path) -> None:
        exe = find("redis-server")
        if exe is None:
            raise FileNotFoundError("redis-server")
        self.exe = exe
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> Redis:
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


class Nginx:
    """nginx as the WebSocket reverse proxy in front of ``upstreams`` (ports), with its
    pid file, logs and temp files in ``workdir``: the configuration of docs/deployment.md
    with loopback addresses."""

    def __init__(self, workdir: Path, upstreams: list[int]) -> None:
        exe = find("nginx")
        if exe is None:
            raise FileNotFoundError("nginx")
        self.exe = exe
        self.workdir = workdir
        self.port = free_port()
        self.upstreams = upstreams
        self.proc: subprocess.Popen | None = None

    def config(self) -> str:
        servers = "\n".join(
            f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in self.upstreams
        )
        d = self.workdir
        # Run as root (CI containers), nginx would switch its workers to `nobody`, who
        # cannot write in the temp dir: keep them as the user running the test.
        user = "user root;\n" if os.geteuid() == 0 else ""
        return f"""{user}worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    upstream wifi_densepose {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            proxy_pass http://wifi_densepose;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_connect_timeout 1s;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
            proxy_next_upstream error timeout http_502 http_503;
        }}
    }}
}}
"""

    def start(self) -> Nginx:
        conf = self.workdir / "nginx.conf"
        conf.write_text(self.config())
        self.proc = subprocess.Popen(
            [self.exe, "-p", str(self.workdir), "-c", str(conf), "-e", str(self.workdir / "error.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            wait_port(self.port)
        except TimeoutError:
            self.proc.kill()
            err = self.proc.communicate()[1].decode(errors="replace")
            raise RuntimeError(f"nginx did not start: {err}") from None
        return self

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/v1"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


class Node:
    """A server node in a process of its own (tests/broker_node.py), driven over stdin."""

    def __init__(self, broker_url: str, node_id: str, secret: str, envs: list[str],
                 key_prefix: str = "wdp", lease_ttl_s: float = 1.0, port: int = 0) -> None:
        cmd = [sys.executable, str(NODE_SCRIPT), "--port", str(port), "--broker", broker_url,
               "--secret", secret, "--node-id", node_id, "--key-prefix", key_prefix,
               "--lease-ttl", str(lease_ttl_s)]
        for env in envs:
            cmd += ["--env", env]
        self.node_id = node_id
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        self._sel = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)
        line = self._readline(20)
        if not line.startswith("READY "):
            raise RuntimeError(f"node {node_id} did not start: {line!r}")
        self.port = int(line.split()[1])

    def _readline(self, timeout: float) -> str:
        if not self._sel.select(timeout):
            raise TimeoutError(f"node {self.node_id} said nothing for {timeout}s")
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/v1"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cmd(self, op: str, timeout: float = 10, **args: Any) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self._readline(timeout))

    def kill(self) -> None:
        """SIGKILL: the node dies without a goodbye, as a crashed machine would."""
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.cmd("stop", timeout=5)
            except (OSError, TimeoutError, ValueError):
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
