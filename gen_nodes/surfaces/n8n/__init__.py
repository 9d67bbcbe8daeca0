"""n8n: the generated n8n community node (``node.py`` writes it; the JS template sits beside it)."""
