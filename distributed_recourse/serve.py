"""Real-time recourse over HTTP: a Ray Serve application that answers one person, or a few, with
the per-row logic of batch explanation (`Explainer.explain`).

Routes:
    POST /recourse  a JSON object (one row) or an array of objects (many), keyed by column;
                    answers `{"rows": [...]}` in the same order, each what `recourse explain`
                    writes for the row (status and reason, scope, group, the chosen action and
                    its text, the counterfactual, its Gower distance and sparsity, the
                    alternatives). A row that fails validation is answered `rejected` with a
                    reason naming the column and what it expects, the others as usual, and the
                    status is then 422, with the rejected rows listed under `errors`.
    GET  /healthz   `{"status": "ok"}` once the replica holds its explainer.
    GET  /info      the run, its scopes' action sets (in words), the dataset schema, the
                    model's metadata and the limits below.

Safe by default, since the rows are people's records: one HTTP proxy, on the head node, bound
to 127.0.0.1 unless told otherwise; with a token, every request needs `Authorization: Bearer
<token>` (401); a body over `serve.max_body_bytes` or more than `max_rows` rows gets 413,
malformed JSON 400. An answer carries a person's protected group label, never the protected
columns' values (nor do rejection reasons), and nothing here logs a row.

Each replica receives the explainer once, through the object store (so replicas run on any
node, whether or not it holds the run folder), and explains the rows of concurrent requests
together (`@serve.batch`).
Replicas autoscale between the config's `serve` bounds, or stay at `--replicas`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from distributed_recourse.config import ConfigError, RunConfig, ServeConfig
from distributed_recourse.explain import REJECTED, Explainer

logger = logging.getLogger("ray.serve")
APP = "recourse"
"""The Serve application's name (`serve status`, `serve shutdown`)."""


def serve_settings(run: str | Path) -> ServeConfig:
    """The `serve` section of the config a run (or a saved explainer) was made with."""
    run = Path(run)
    for path in (run / "prepared" / "config.yaml", run / "config.yaml"):
        if path.is_file():
            return RunConfig.from_yaml(path).serve
    raise ConfigError(f"{run} holds no config.yaml (prepared/ or its own); is it a trained run "
                      "or a saved explainer?")


def service_info(explainer: Explainer, run: str, settings: ServeConfig, max_rows: int) -> dict[str, Any]:
    """What GET /info answers."""
    texts = explainer.action_texts
    sets = {name: [{"action": j, "text": texts[s, j], "changes": changes}
                   for j, changes in enumerate(actions)]
            for s, (name, actions) in enumerate(explainer.described_sets().items())}
    model = explainer.model
    info = {"run": run, "level": explainer.scopes.level, "sets": sets,
            "schema": explainer.schema.to_dict(),
            "model": {**model.metadata, "estimator": type(model.estimator).__name__,
                      "input": model.input, "favourable_output": model.favourable_output},
            "alternatives": settings.alternatives,
            "limits": {"max_rows": max_rows, "max_body_bytes": settings.max_body_bytes}}
    return json.loads(json.dumps(info, default=str))  # plain JSON, whatever the metadata holds


def answers(explained: dict[str, np.ndarray], hidden: list[str]) -> list[dict[str, Any]]:
    """`Explainer.explained` columns as JSON objects, one per row, without the `hidden`
    (protected) columns; missing values as null."""
    columns = [c for c in explained if c not in hidden]
    values = []
    for column in columns:
        array = explained[column]
        listed = array.tolist()  # Python numbers, strings and None
        values.append([None if v != v else v for v in listed] if array.dtype.kind == "f" else listed)
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


def error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


@serve.deployment(name="RecourseService")
class RecourseService:
    """One replica: its explainer, and the HTTP routes above."""

    def __init__(self, explainer: list, run: str, settings: ServeConfig, max_rows: int,
                 token_digest: str | None) -> None:
        import ray

        self.explainer: Explainer = ray.get(explainer[0])  # an ObjectRef, wrapped so Serve passes it
        self.settings, self.max_rows, self.token_digest = settings, max_rows, token_digest
        self.columns = list(dict.fromkeys([*self.explainer.space.columns,
                                           *self.explainer.schema.protected.columns]))
        self.hidden = list(self.explainer.schema.protected.columns)
        self.info = service_info(self.explainer, run, settings, max_rows)
        self.explain_rows.set_max_batch_size(max(settings.batch_rows, max_rows))
        self.explain_rows.set_batch_wait_timeout_s(settings.batch_wait_s)

    def authorised(self, request: Request) -> bool:
        if self.token_digest is None:
            return True
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = hashlib.sha256(token.strip().encode()).hexdigest()
        return scheme.lower() == "bearer" and hmac.compare_digest(given, self.token_digest)

    async def __call__(self, request: Request) -> JSONResponse:
        if not self.authorised(request):
            return error(401, "a valid `Authorization: Bearer <token>` header is required",
                         **{"WWW-Authenticate": "Bearer"})
        path, method = request.url.path.rstrip("/") or "/", request.method
        routes = {"/healthz": "GET", "/info": "GET", "/recourse": "POST"}
        if path not in routes:
            return error(404, f"no route {path}; routes: POST /recourse, GET /healthz, GET /info")
        if method != routes[path]:
            return error(405, f"{path} takes {routes[path]}", Allow=routes[path])
        if path == "/healthz":
            return JSONResponse({"status": "ok"})
        if path == "/info":
            return JSONResponse(self.info)
        try:
            return await self.recourse(request)
        except Exception as failure:  # its message could quote a row: only its kind is logged
            logger.error("POST /recourse failed: %s", type(failure).__name__)
            return error(500, f"the rows could not be explained ({type(failure).__name__})")

    async def recourse(self, request: Request) -> JSONResponse:
        limit = self.settings.max_body_bytes
        if int(request.headers.get("content-length") or 0) > limit:
            return error(413, f"the body is over {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return error(413, f"the body is over {limit} bytes")
        try:
            rows = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as problem:
            return error(400, f"the body is not valid JSON: {getattr(problem, 'msg', 'not UTF-8')}")
        rows = [rows] if isinstance(rows, dict) else rows
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            return error(400, "expected a JSON object (one row) or an array of objects (rows), "
                              "keyed by column name")
        if len(rows) > self.max_rows:
            return error(413, f"{len(rows)} rows; at most {self.max_rows} per request")
        answered = await self.explain_rows(rows) if rows else []
        rejected = [{"row": i, "reason": row["reason"]} for i, row in enumerate(answered)
                    if row["status"] == REJECTED]
        if rejected:
            return JSONResponse({"rows": answered, "errors": rejected}, status_code=422)
        return JSONResponse({"rows": answered})

    @serve.batch(max_batch_size=512, batch_wait_timeout_s=0.0, batch_size_fn=lambda requests: sum(
        len(rows) for rows in requests))
    async def explain_rows(self, requests: list[list[dict]]) -> list[list[dict[str, Any]]]:
        """The rows of concurrent requests, explained together. In the event loop, not a
        thread: the requests that arrive meanwhile wait whole (rather than crawl along beside
        it for the GIL) and join the next batch, which makes batches large under load."""
        rows = [row for request in requests for row in request]
        answered = self.answer(rows)
        ends = np.cumsum([len(request) for request in requests])
        return [answered[end - len(request):end] for request, end in zip(requests, ends, strict=True)]

    def answer(self, rows: list[dict]) -> list[dict[str, Any]]:
        frame = pd.DataFrame.from_records(rows, columns=self.columns)  # absent keys: missing
        return answers(self.explainer.explained(frame, self.settings.alternatives, source="request"),
                       self.hidden)


@dataclass(frozen=True)
class Service:
    """A deployed application: its URL, and the explainer its replicas get (held here, so that
    a replica added later, by autoscaling or after a failure, still finds it)."""

    url: str
    explainer: Any
    """The ObjectRef of the explainer in the object store."""


def start(
    run: str | Path, address: str | None = None, host: str = "127.0.0.1", port: int = 8000,
    replicas: int | None = None, token_file: str | Path | None = None, max_rows: int | None = None,
) -> Service:
    """Deploy the application on the cluster at `address` (or RAY_ADDRESS, else a local Ray).
    `replicas` fixes their number (default: autoscale within the config's bounds);
    `token_file` holds the bearer token every request must carry."""
    from distributed_recourse.runtime import connect

    settings = serve_settings(run)
    explainer = Explainer.open(run)
    digest = None
    if token_file is not None:
        token = Path(token_file).read_text().strip()
        if not token:
            raise ConfigError(f"--token-file {token_file} is empty")
        digest = hashlib.sha256(token.encode()).hexdigest()
    if replicas is not None and replicas < 1:
        raise ConfigError(f"--replicas must be at least 1, got {replicas}")
    if max_rows is not None and max_rows < 1:
        raise ConfigError(f"--max-rows must be at least 1, got {max_rows}")
    ray = connect(address)
    scaling = ({"num_replicas": replicas} if replicas is not None else
               {"autoscaling_config": {"min_replicas": settings.min_replicas,
                                       "max_replicas": settings.max_replicas,
                                       "target_ongoing_requests": settings.target_ongoing_requests}})
    max_rows = max_rows or settings.max_rows
    deployment = RecourseService.options(
        **scaling, max_ongoing_requests=max(settings.batch_rows, max_rows),  # a batch counts rows
        ray_actor_options={"num_cpus": settings.replica_cpus})
    held = ray.put(explainer)
    serve.start(proxy_location="HeadOnly", http_options={"host": host, "port": port})
    serve.run(deployment.bind([held], str(run), settings, max_rows, digest), name=APP, route_prefix="/")
    return Service(f"http://{host}:{port}", held)


def serve_until_stopped(run: str | Path, **options: Any) -> None:
    """`recourse serve`: deploy, then keep serving until SIGINT or SIGTERM (`ray job stop`), and
    take the application down. This process owns the explainer the replicas were given."""
    service = start(run, **options)
    print(f"serving {run} at {service.url}: POST /recourse, GET /healthz, GET /info (Ctrl-C stops)",
          flush=True)
    stopped = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stopped.set())
    stopped.wait()
    serve.delete(APP)
    print("stopped", flush=True)
