"""A real CalDAV server for tests and demos: Radicale in a subprocess on loopback.

`RadicaleServer` writes a config into a temp folder (storage included), starts
``python -m radicale`` on 127.0.0.1 and a free port, waits until it answers, and stops it
cleanly (terminate, then kill) on `stop()`, on exit and at interpreter exit. With `users`
(user -> password) it uses htpasswd (plain) auth, so a wrong password answers 401; without,
auth is ``none`` (any user name, no password check).

    with RadicaleServer(users={"vendor": "app-pw"}) as server:
        url = server.make_calendar("vendor", "weddings")   # MKCALENDAR, returns its URL
        ...

`wedsync fake caldav` runs `serve`, which prints nothing secret and keeps the server until
cancelled.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger("wedsync.fake.caldav")

DEMO_USER = "wedsync"  # `wedsync fake caldav`: auth none, so any password works
DEMO_CALENDAR = "weddings"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class RadicaleServer:
    """A Radicale subprocess. `url` is its base URL once started."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        users: dict[str, str] | None = None,
        folder: str | Path | None = None,
        max_sync_token_age_s: int | None = None,
    ) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self.users = dict(users or {})
        self.max_sync_token_age_s = max_sync_token_age_s  # Radicale's default: 30 days
        self._own_folder = folder is None
        self.folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="wedsync-radicale-"))
        self.url = f"http://{host}:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def set_password(self, user: str, password: str) -> None:
        """Change a user's password while running (Radicale re-reads the file per login):
        what an expired iCloud app-specific password looks like to a client."""
        self.users[user] = password
        htpasswd = self.folder / "users"
        htpasswd.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))

    def _write_config(self) -> Path:
        storage = self.folder / "collections"
        auth = "[auth]\ntype = none\n"
        if self.users:
            htpasswd = self.folder / "users"
            htpasswd.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
            htpasswd.chmod(0o600)
            auth = (
                "[auth]\ntype = htpasswd\n"
                f"htpasswd_filename = {htpasswd}\nhtpasswd_encryption = plain\ndelay = 0\n"
            )
        config = self.folder / "config"
        config.write_text(
            f"[server]\nhosts = {self.host}:{self.port}\n"
            f"{auth}"
            f"[storage]\nfilesystem_folder = {storage}\n"
            + (
                f"max_sync_token_age = {self.max_sync_token_age_s}\n"
                if self.max_sync_token_age_s is not None
                else ""
            )
            + "[rights]\ntype = owner_only\n"
            "[logging]\nlevel = warning\n"
        )
        return config

    def start(self, timeout_s: float = 20.0) -> RadicaleServer:
        """Start Radicale and wait until it answers HTTP. RuntimeError if it does not."""
        config = self._write_config()
        with open(self.folder / "radicale.log", "wb") as errors:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "radicale", "--config", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"radicale exited with {self._proc.returncode}: {self.log()}")
            try:
                httpx.get(self.url + "/.web/", timeout=1.0)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("radicale did not answer in time")

    def log(self) -> str:
        """Radicale's own log (warnings and errors)."""
        path = self.folder / "radicale.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        """Terminate (then kill) the subprocess and remove a temp folder we made."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc is not None and self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> RadicaleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def make_calendar(self, user: str, name: str, password: str | None = None) -> str:
        """MKCALENDAR /{user}/{name}/ and return the collection URL (with trailing slash)."""
        url = f"{self.url}/{user}/{name}/"
        auth = (user, password if password is not None else self.users.get(user, ""))
        response = httpx.request("MKCALENDAR", url, auth=auth, timeout=10.0)
        if response.status_code not in (201, 405, 409):  # 405/409: it exists already
            raise RuntimeError(f"MKCALENDAR answered {response.status_code}")
        return url


async def serve(host: str, port: int, **kwargs: Any) -> None:
    """Run Radicale until cancelled (``wedsync fake caldav``). Keyword `users` (user ->
    password) turns on htpasswd auth; `folder` keeps the storage."""
    server = RadicaleServer(host, port, users=kwargs.get("users"), folder=kwargs.get("folder"))
    await asyncio.to_thread(server.start)
    user = next(iter(server.users), DEMO_USER)
    collection = await asyncio.to_thread(server.make_calendar, user, DEMO_CALENDAR)
    print(
        f"Radicale CalDAV server on {server.url}; calendar home {server.url}/{user}/ "
        f"(calendar_id {DEMO_CALENDAR!r}: {collection})",
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        server.stop()
