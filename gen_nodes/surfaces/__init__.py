"""surfaces: the registry served in each format: the CLI and demo, LLM tool formats (``llm``),
MCP, the OpenAPI gateway, the n8n node, chat-ops, Airflow and Temporal. A surface imports
any lower layer and never another surface; import the one you use."""
