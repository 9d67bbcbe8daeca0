"""Kept public path: the same module object as :mod:`gen_nodes.surfaces.airflow.provider`."""

import sys

from gen_nodes.surfaces.airflow import provider

sys.modules[__name__] = provider
