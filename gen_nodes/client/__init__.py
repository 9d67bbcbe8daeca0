"""client: the HTTP client for GEN's API (:class:`GenClient`, :class:`RetryPolicy`, :func:`timeouts`).

``http.py`` holds the client; ``cache.py`` keeps one client per GEN key for the servers.
"""

from gen_nodes.client.http import GenClient, RetryPolicy, timeouts

__all__ = ["GenClient", "RetryPolicy", "timeouts"]
