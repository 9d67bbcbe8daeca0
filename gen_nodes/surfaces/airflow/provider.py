"""What Airflow's providers manager reads about us (entry point ``apache_airflow_provider``).

Kept free of Airflow imports: Airflow calls it while it discovers providers.
"""

from __future__ import annotations

from typing import Any

from gen_nodes.core.version import __version__
from gen_nodes.client.http import DEFAULT_BASE_URL


def get_provider_info() -> dict[str, Any]:
    """The provider's metadata: name, version, and the ``gen`` connection type."""
    return {
        "package-name": "gen-nodes",
        "name": "GEN",
        "description": "GEN's API-key actions as Airflow operators (gen-nodes), with exactly-once creates.",
        "versions": [__version__],
        "connection-types": [
            {
                "connection-type": "gen",
                "hook-class-name": "gen_nodes.airflow.hooks.GenHook",
                "hook-name": "GEN",
                # The connection form: the password field holds the API key, the host the base URL.
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login", "port"],
                    "relabeling": {"password": "API key", "host": "Base URL"},
                    "placeholders": {
                        "host": DEFAULT_BASE_URL,
                        "password": "a GEN API key",
                        "extra": '{"idempotency_store": "sqlite://"}',
                    },
                },
            },
        ],
    }
