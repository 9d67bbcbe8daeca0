"""The baseline of benchmarks (i) and (j): the least an HTTP front for GEN can be.

A minimal Starlette app with one route, ``POST /actions/list_api_keys``, that forwards the
request's ``X-API-Key`` to GEN (here: the sandbox) with ``requests`` and answers the list
wrapped as the action does. No validation, no output shaping, no error mapping, no store.
Its ``requests.Session`` keeps as many connections as the gateway's clients do, and it is
served exactly as ``gen-nodes serve`` is (``gen_nodes.net.serve.serve``), so the two differ
only in what the gateway does per call::

    python benchmarks/minimal_gateway.py http://127.0.0.1:8765/v1    # first line: {"url": ...}
"""

from __future__ import annotations

import sys

import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gen_nodes.surfaces.gateway.app import POOL_SIZE
from gen_nodes.net.serve import serve


def build(target: str) -> Starlette:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=POOL_SIZE, pool_maxsize=POOL_SIZE)
    session.mount("http://", adapter)
    session.mount("https://", adapter)

    def list_keys(request: Request) -> JSONResponse:  # sync: Starlette runs it in its thread pool
        answer = session.get(f"{target}/persisted_tokens", headers={"X-API-Key": request.headers["x-api-key"]},
                             timeout=30)
        answer.raise_for_status()
        return JSONResponse({"api_keys": answer.json()})

    return Starlette(routes=[Route("/actions/list_api_keys", list_keys, methods=["POST"])])


if __name__ == "__main__":
    serve(build(sys.argv[1].rstrip("/")), port=0, name="minimal gateway (baseline)")
