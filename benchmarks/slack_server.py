"""The two Slack apps of benchmark (k), each served in a process of its own (as ``gen-nodes serve``
is for (i), (j)), so the benchmark's 50 client threads do not share their interpreter::

    BENCH_SLACK_SECRET=... BENCH_GEN_KEY=... python benchmarks/slack_server.py gen-nodes GEN_URL WEB_API_URL
    BENCH_SLACK_SECRET=... BENCH_GEN_KEY=... python benchmarks/slack_server.py minimal GEN_URL WEB_API_URL

``gen-nodes`` is gen-nodes' Slack app (``build_app`` and ``build_asgi``, on a memory store) with the
key bound to Slack user ``U1`` as ``/gen login`` binds it; ``minimal`` is ``minimal_bolt.py``. The
secrets come from the environment, never the command line. The first stdout line is ``{"url": ...}``.
"""

from __future__ import annotations

import os
import secrets
import sys
from typing import Any


def gen_nodes_app(signing_secret: str, gen_url: str, api_key: str, web_api_url: str) -> Any:
    from slack_sdk import WebClient

    from gen_nodes.core.registry import default_registry
    from gen_nodes.state import open_store
    from gen_nodes.state.secretbox import SecretBox
    from gen_nodes.surfaces.chatops.core import ChatOps
    from gen_nodes.surfaces.chatops.slack import build_app, build_asgi

    core = ChatOps(default_registry(), open_store("memory://"), SecretBox(secrets.token_hex(32)), base_url=gen_url)
    core.bind("slack", "U1", api_key)
    app = build_app(core, signing_secret=signing_secret, client=WebClient(token="xoxb-bench", base_url=web_api_url),
                    token_verification_enabled=False)
    return build_asgi(app, core, signing_secret=signing_secret)


def main(which: str, gen_url: str, web_api_url: str) -> None:
    from gen_nodes.net.serve import serve

    if which not in ("gen-nodes", "minimal"):
        sys.exit(f"slack_server.py: the app is gen-nodes or minimal, not {which!r}")
    signing_secret, api_key = os.environ["BENCH_SLACK_SECRET"], os.environ["BENCH_GEN_KEY"]
    if which == "gen-nodes":
        app = gen_nodes_app(signing_secret, gen_url, api_key, web_api_url)
    else:
        from minimal_bolt import build

        app = build(signing_secret, gen_url, api_key, web_api_url)
    serve(app, port=0, name=f"{which} Slack app (benchmark k)")


if __name__ == "__main__":
    main(*sys.argv[1:4])
