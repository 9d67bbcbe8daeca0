"""Adapters: the registry's tools in each tool-calling format (one module per format).

``openai`` and ``anthropic`` need nothing beyond gen-nodes; ``mcp`` needs the
``gen-nodes[mcp]`` extra and ``langchain`` the ``gen-nodes[langchain]`` extra.
Import the one you use; none is imported by ``gen_nodes`` itself.
"""
