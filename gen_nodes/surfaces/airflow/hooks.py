"""The ``gen`` connection type: a GEN API key (the password field) and a base URL (the host field).

A connection's extra may name the store of the exactly-once records,
``{"idempotency_store": "redis://host:6379/0"}`` for workers on several machines;
the default, ``sqlite://``, is a file on the worker's machine.
"""

from __future__ import annotations

from typing import Any

from gen_nodes.airflow import require_airflow

require_airflow()  # before Airflow's own imports: a missing extra is named
from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret

from gen_nodes.client.http import DEFAULT_BASE_URL, GenClient
from gen_nodes.core.errors import GenError
from gen_nodes.core.terms import Terms, airflow_terms
from gen_nodes.core.registry import default_registry
from gen_nodes.runtime.steps import engine_client

DEFAULT_STORE = "sqlite://"


class GenHook(BaseHook):
    """A GEN client made from an Airflow connection of type ``gen``."""

    conn_name_attr = "gen_conn_id"
    default_conn_name = "gen_default"
    conn_type = "gen"
    hook_name = "GEN"

    def __init__(self, gen_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gen_conn_id = gen_conn_id
        self._client: GenClient | None = None
        self._extra: dict[str, Any] = {}

    def get_conn(self) -> GenClient:
        """The client for this connection, made once; it does not retry (Airflow's retries do)."""
        if self._client is None:
            conn = self.get_connection(self.gen_conn_id)
            if conn.password:
                mask_secret(conn.password)  # Airflow masks passwords too; this does not depend on it
            self._extra = conn.extra_dejson or {}
            self._client = engine_client(api_key=conn.password or "", base_url=_base_url(conn.host))
        return self._client

    def records(self) -> Any:
        """The exactly-once records named by the connection (``idempotency_store``), or None if it says ``none``."""
        self.get_conn()
        url = self._extra.get("idempotency_store", DEFAULT_STORE)
        if not url or str(url).lower() == "none":
            return None
        from gen_nodes.safety.idempotency import IdempotencyRecords
        from gen_nodes.state import open_store

        return IdempotencyRecords(open_store(str(url)))

    def run(self, action: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one action once (no exactly-once record; operators add that)."""
        return default_registry().run(action, arguments or {}, client=self.get_conn())

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test" button: calls ``get_me`` with the key."""
        try:
            me = self.run("get_me")
        except GenError as exc:
            return False, self.describe(exc)
        return True, f"Connected to GEN as user {me.get('id')}."

    def terms(self) -> Terms:
        """Hints in Airflow's words: the settings a hint names are this connection's fields."""
        return airflow_terms(self.gen_conn_id)

    def describe(self, error: GenError) -> str:
        """The error's message and hint, the hint in :meth:`terms`."""
        return f"{error.message} (hint: {self.terms().render(error.hint_template)})"


def _base_url(host: str | None) -> str:
    if not host:
        return DEFAULT_BASE_URL
    return host if "://" in host else f"https://{host}"
