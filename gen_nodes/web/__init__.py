"""web: what several HTTP surfaces share above ``net``: the approval page MCP and the gateway serve."""
