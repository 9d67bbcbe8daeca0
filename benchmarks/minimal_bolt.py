"""The baseline of benchmark (k): the least a Slack ``/gen keys list`` can be, on Bolt for Python.

A Bolt app in HTTP mode with one slash command that acks at once and, in a lazy listener, GETs
GEN's key list (here: the sandbox) with ``requests`` and posts it to the command's
``response_url`` with slack_sdk's ``WebhookClient``, served through Bolt's own Starlette adapter.
No grammar, no per-user key, no replay guard, no shaping: one fixed GEN key for everyone::

    app = build(signing_secret, "http://127.0.0.1:8765/v1", api_key, web_api_url)   # an ASGI app
"""

from __future__ import annotations

import requests
from slack_bolt import App
from slack_bolt.adapter.starlette import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route


def build(signing_secret: str, gen_url: str, api_key: str, web_api_url: str, command: str = "/gen") -> Starlette:
    """The minimal app at ``/slack/events``; ``web_api_url`` is where Slack's Web API answers (a double)."""
    session = requests.Session()
    app = App(signing_secret=signing_secret, client=WebClient(token="xoxb-baseline", base_url=web_api_url),
              token_verification_enabled=False)

    def list_keys(body: dict) -> None:
        answer = session.get(f"{gen_url.rstrip('/')}/persisted_tokens", headers={"X-API-Key": api_key}, timeout=30)
        answer.raise_for_status()
        names = "\n".join(f"{key['id']}: {key.get('name')}" for key in answer.json())
        WebhookClient(body["response_url"], timeout=10).send(text=names or "no keys")

    app.command(command)(ack=lambda ack: ack(), lazy=[list_keys])
    handler = SlackRequestHandler(app)

    async def events(request: Request):
        return await handler.handle(request)

    return Starlette(routes=[Route("/slack/events", events, methods=["POST"])])
