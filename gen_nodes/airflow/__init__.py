"""GEN for Apache Airflow 3: the public path, kept as it was; the code is in :mod:`gen_nodes.surfaces.airflow`.

    from gen_nodes.airflow import GenActionOperator, GenHook, GenCreateApiKeyOperator
"""

from __future__ import annotations

from typing import Any

from gen_nodes.surfaces import airflow as _airflow
from gen_nodes.surfaces.airflow import INSTALL, get_provider_info, require_airflow  # noqa: F401 (the public names)

__all__ = list(_airflow.__all__)


def __getattr__(name: str) -> Any:
    return getattr(_airflow, name)


def __dir__() -> list[str]:
    return _airflow.__dir__()
