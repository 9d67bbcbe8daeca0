"""llm: the registry's tools in each LLM tool-calling format (OpenAI, Anthropic, LangChain, the
OpenAI Agents SDK). ``openai`` and ``anthropic`` need nothing beyond gen-nodes; the others need
their extra. Import the one you use."""
