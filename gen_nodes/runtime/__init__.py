"""runtime: the registry's actions as tools, the dispatcher that runs a tool call, the step
runner the workflow engines share, and the review text two LLM surfaces show a person."""
