# Hand-written entry module for the harness smoke test: the same shape `flareflow build` generates
# (a `RunObject` Durable Object and a `Default` WorkerEntrypoint), using the `workers` SDK directly.
import json
import sys
import time
from urllib.parse import parse_qs, urlparse

import smokehelper  # from python_modules/
from js import WebSocketPair
from workers import DurableObject, Response, WorkerEntrypoint


class RunObject(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.created_at = time.time()
        sql = self.ctx.storage.sql
        sql.exec("CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)")
        sql.exec("CREATE TABLE IF NOT EXISTS alarms (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL, note TEXT)")

    async def fetch(self, request):
        url = urlparse(request.url)
        path = url.path.split("/", 3)[-1]  # /do/<name>/<path>
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        sql = self.ctx.storage.sql
        if path == "count":
            sql.exec("INSERT INTO counter (id, value) VALUES (1, 1) "
                     "ON CONFLICT (id) DO UPDATE SET value = value + 1")
            value = sql.exec("SELECT value FROM counter WHERE id = 1").one().value
            return Response.json({"value": value, "instance_created_at": self.created_at})
        if path == "alarm":
            delay = int(query.get("delay", "200"))
            await self.ctx.storage.setAlarm(time.time() * 1000 + delay)
            return Response.json({"alarm": await self.ctx.storage.getAlarm()})
        if path == "alarms":
            rows = sql.exec("SELECT id, at, note FROM alarms ORDER BY id").toArray()
            return Response.json({"alarms": [{"id": r.id, "at": r.at, "note": r.note} for r in rows]})
        if path == "ws":
            if request.headers.get("upgrade", "").lower() != "websocket":
                return Response("expected a WebSocket upgrade", status=426)
            client, server = WebSocketPair.new().object_values()
            self.ctx.acceptWebSocket(server)
            server.serializeAttachment(json.dumps({"joined": time.time()}))
            return Response(None, status=101, web_socket=client)
        if path == "info":
            return Response.json({
                "python": sys.version,
                "sockets": len(self.ctx.getWebSockets()),
                "instance_created_at": self.created_at,
            })
        return Response("no such DO route: " + path, status=404)

    async def alarm(self, alarm_info=None):
        retry = getattr(alarm_info, "retryCount", None) if alarm_info is not None else None
        self.ctx.storage.sql.exec(
            "INSERT INTO alarms (at, note) VALUES (?, ?)", time.time(), smokehelper.shout(f"alarm retry={retry}")
        )

    async def webSocketMessage(self, ws, message):
        attachment = json.loads(ws.deserializeAttachment())
        ws.send(json.dumps({"echo": message, "joined": attachment["joined"],
                            "sockets": len(self.ctx.getWebSockets()),
                            "instance_created_at": self.created_at}))

    async def webSocketClose(self, ws, code, reason, was_clean):
        ws.close(code, "bye")


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        url = urlparse(request.url)
        parts = url.path.strip("/").split("/")
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if parts[0] == "do" and len(parts) >= 3:
            stub = self.env.RUNS.getByName(parts[1])
            return await stub.fetch(request)
        if parts[0] == "health":
            return Response.json({"ok": True, "greeting": self.env.GREETING,
                                  "token_set": bool(self.env.FLAREFLOW_TOKEN)})
        if parts[0] == "d1":
            value = query.get("value", "x")
            await self.env.INDEX.prepare("INSERT INTO seen (kind, value) VALUES (?, ?)").bind("d1", value).run()
            return await self._seen()
        if parts[0] == "seen":
            return await self._seen()
        if parts[0] == "queue":
            await self.env.DISPATCH.send(query.get("value", "q"))
            return Response.json({"queued": True}, status=202)
        if parts[0] == "kv":
            await self.env.CACHE.put("k", query.get("value", "v"))
            return Response.json({"kv": await self.env.CACHE.get("k")})
        if parts[0] == "r2":
            await self.env.PAYLOADS.put("blob", query.get("value", "r"))
            obj = await self.env.PAYLOADS.get("blob")
            return Response.json({"r2": await obj.text()})
        return Response("not found", status=404)

    async def _seen(self):
        result = await self.env.INDEX.prepare("SELECT kind, value FROM seen ORDER BY id").all()
        rows = [{"kind": r.kind, "value": r.value} for r in result.results]
        return Response.json({"seen": rows})

    async def scheduled(self, controller, env, ctx):
        await env.INDEX.prepare("INSERT INTO seen (kind, value) VALUES (?, ?)").bind(
            "cron", f"{controller.cron}@{int(controller.scheduledTime)}").run()

    async def queue(self, batch, env, ctx):
        for message in batch.messages:
            await env.INDEX.prepare("INSERT INTO seen (kind, value) VALUES (?, ?)").bind(
                "queue", str(message.body)).run()
            message.ack()
