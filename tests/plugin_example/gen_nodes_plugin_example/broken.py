"""A plugin module that cannot be imported, on purpose: gen-nodes must skip it with a warning."""

raise RuntimeError("gen-nodes-plugin-example: this entry point is broken on purpose")
