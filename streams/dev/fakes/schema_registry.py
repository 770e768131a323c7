"""A fake Confluent Schema Registry: the REST calls the registry client makes, as the
registry's API reference documents them (docs.confluent.io, Schema Registry API):

    GET  /subjects                        ["<subject>", ...]
    POST /subjects/{subject}/versions     {"schema": "<json>", "schemaType"?: "AVRO"} -> {"id": N}
                                          (the same schema under any subject keeps its id)
    GET  /schemas/ids/{id}                {"schema": "<json>"}; 404 {"error_code": 40403}

With `users` set, every request needs HTTP Basic credentials of one of them (401
{"error_code": 40101, "message": "Unauthorized"} otherwise, as the registry's basic
authentication answers). Served over https by `FakeServer(..., ssl_context=...)`, with or
without client certificates required, it stands in for a secured registry."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aiohttp import web

from streams.dev.fakes.kit import FakeProvider, Switches


class SchemaRegistryFake(FakeProvider):
    name = "schema-registry"

    def __init__(
        self, switches: Switches | None = None, users: dict[str, str] | None = None
    ) -> None:
        self.users = users or {}
        self.ids: dict[str, int] = {}  # schema text -> id
        self.subjects: dict[str, list[int]] = {}
        super().__init__(switches)

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/subjects", self.list_subjects)
        app.router.add_post("/subjects/{subject}/versions", self.register)
        app.router.add_get("/schemas/ids/{id}", self.schema)

    def _refused(self, request: web.Request) -> web.Response | None:
        if not self.users:
            return None
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, password = "", ""
        if scheme.lower() == "basic" and self.users.get(user) == password and user:
            return None
        self.counters["unauthorized"] += 1
        return _error(401, 40101, "Unauthorized")

    async def list_subjects(self, request: web.Request) -> web.Response:
        return self._refused(request) or web.json_response(sorted(self.subjects))

    async def register(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        try:
            body: Any = await request.json()
            text = body["schema"]
            json.loads(text)
        except (ValueError, KeyError, TypeError):
            return _error(422, 42201, "Either the input schema or one its references is invalid")
        schema_id = self.ids.setdefault(text, len(self.ids) + 1)
        versions = self.subjects.setdefault(request.match_info["subject"], [])
        if schema_id not in versions:
            versions.append(schema_id)
            self.counters["registered"] += 1
        return web.json_response({"id": schema_id})

    async def schema(self, request: web.Request) -> web.Response:
        if (refused := self._refused(request)) is not None:
            return refused
        wanted = request.match_info["id"]
        for text, schema_id in self.ids.items():
            if str(schema_id) == wanted:
                return web.json_response({"schema": text})
        return _error(404, 40403, "Schema not found")


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"error_code": code, "message": message}, status=status)
