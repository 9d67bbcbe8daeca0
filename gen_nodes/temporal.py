"""GEN for Temporal: the public path, kept as it was; the code is in :mod:`gen_nodes.surfaces.temporal`.

    from gen_nodes.temporal import activities

This module IS :mod:`gen_nodes.surfaces.temporal` (one module object), so attributes set on
either name are seen by both.
"""

import sys

from gen_nodes.surfaces import temporal

sys.modules[__name__] = temporal
