"""net: the HTTP/ASGI pieces gen-nodes' web surfaces and the sandbox share (MCP over HTTP, the gateway, Slack, Discord).

    key = api_key_from_headers(headers)        # X-API-Key, else Authorization: Bearer; None if neither
    app = RequireGenKey(app, paths=("/mcp",))  # 401 with a readable JSON body when a request has no key
    app = HostGuard(app, hosts, origins)       # DNS-rebinding guard: 421 on a foreign Host, 403 on a foreign Origin
    serve(app, host="127.0.0.1", port=0, path="/mcp")   # binds, prints {"url": ...} first, serves until Ctrl-C
    body = await read_body(request)            # at most 1 MiB, streamed; BodyTooLarge -> body_too_large() (413)

(One ``GenClient`` per key is the client layer's ``client.cache.ClientCache``, not net's.)

``serve`` is the one way a surface listens:

- It binds the port itself, so the FIRST line on stdout is ``{"url": "http://127.0.0.1:41234/mcp"}``
  with the real port, printed only once the server accepts connections (``--port 0`` works).
- A port in use, a bad address, or an app that fails to start raise :class:`CannotServe`
  (a :class:`~gen_nodes.core.errors.GenError`: the CLI prints it as JSON and exits 1), never a traceback.
- A host other than loopback is refused (:class:`~gen_nodes.core.errors.InvalidInput`) unless the caller
  opts in with ``allow_remote=True`` *and* names the ``allowed_hosts`` (Host header values) that
  clients will use; the :class:`HostGuard` is then built from that list, so the DNS-rebinding guard
  is never silently off. On loopback it admits only loopback names.
- Repeated identical log lines are rate-limited (:class:`RepeatFilter`): a flood of bad
  connections cannot fill the disk or drown the one useful line.

The 401 of :class:`RequireGenKey` carries ``WWW-Authenticate: ApiKey realm="gen-nodes"``, not a
``Bearer`` challenge: these servers do not do OAuth, and MCP clients read a Bearer challenge on a 401
as the start of the OAuth flow of the MCP authorization spec (discovery of
``/.well-known/oauth-protected-resource``, which these servers answer with 404). The body says how to
send the GEN key instead.
"""
