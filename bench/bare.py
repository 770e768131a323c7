"""What the gateway benchmarks share: the bare aiohttp server they are measured against
(it answers every webhook 200 and does nothing else) and a load client run in a fresh
interpreter (its own event loop and core; not multiprocessing: no __main__ re-import)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from streams.dev.broker import free_port
from streams.settings import REPO_ROOT


@contextlib.asynccontextmanager
async def bare_server() -> AsyncIterator[int]:
    """A bare aiohttp server on a free loopback port, answering POST /webhooks/{source}."""

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"status": "stored"})

    app = web.Application()
    app.router.add_post("/webhooks/{source}", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()


async def run_client(module: str, *args: str) -> dict[str, Any]:
    """`<module>.client_main(*args)` in a fresh interpreter; the JSON of its last line."""
    code = f"import sys; from {module} import client_main; client_main(*sys.argv[1:])"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, *args, cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"bench client {module} exited with {process.returncode}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result
