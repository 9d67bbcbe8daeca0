"""Kept public path: the same module object as :mod:`gen_nodes.surfaces.airflow.operators`."""

import sys

from gen_nodes.surfaces.airflow import operators

sys.modules[__name__] = operators
