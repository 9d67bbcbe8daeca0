"""GEN for Apache Airflow 3 (``pip install 'gen-nodes[airflow]'``).

    from gen_nodes.airflow import GenActionOperator, GenHook, GenCreateApiKeyOperator

``GenHook``: the ``gen`` connection type. ``GenActionOperator``: any action by id,
plugin actions included. ``Gen<Action>Operator``: one generated class per action
in the registry. Airflow finds the provider through the ``apache_airflow_provider``
entry point (:func:`get_provider_info`). Airflow is imported on first use of a
class, so reading the provider info stays cheap.
"""

from __future__ import annotations

from typing import Any

from gen_nodes.surfaces.airflow.provider import get_provider_info

__all__ = ["GenActionOperator", "GenHook", "get_provider_info"]

INSTALL = "pip install 'gen-nodes[airflow]'"


def require_airflow() -> None:
    """Import Airflow's SDK, or fail saying which extra brings it (not a bare "No module named 'airflow'")."""
    try:
        import airflow.sdk  # noqa: F401
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "airflow":
            raise
        raise ModuleNotFoundError(f"gen_nodes.airflow needs Apache Airflow 3, which is not installed here "
                                  f"(no module named {exc.name!r}); install it with: {INSTALL}",
                                  name=exc.name) from None


def __getattr__(name: str) -> Any:
    if name == "GenHook":
        from gen_nodes.surfaces.airflow.hooks import GenHook

        return GenHook
    if name == "GenActionOperator":
        from gen_nodes.surfaces.airflow.operators import GenActionOperator

        return GenActionOperator
    if name.startswith("Gen") and name.endswith("Operator"):
        from gen_nodes.surfaces.airflow.operators import generated_operators

        generated = generated_operators()
        if name in generated:
            return generated[name]
    raise AttributeError(f"module 'gen_nodes.airflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    from gen_nodes.surfaces.airflow.operators import generated_operators

    return sorted([*__all__, *generated_operators()])
