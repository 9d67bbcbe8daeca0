"""mcp: the MCP server (``server.py``), its options, per-key session limits and key checks
(``pip install 'gen-nodes[mcp]'``)."""
