"""Kept public path: the same module object as :mod:`gen_nodes.surfaces.airflow.hooks`."""

import sys

from gen_nodes.surfaces.airflow import hooks

sys.modules[__name__] = hooks
