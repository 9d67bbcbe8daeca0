"""Sandbox: a local fake of GEN's API-key endpoints for tests, demos and benchmarks.

    with Sandbox() as sb:
        requests.get(sb.base_url + "/me", headers={"X-API-Key": sb.api_key})
"""

from gen_nodes.sandbox.server import VARIANTS, Sandbox
from gen_nodes.sandbox.store import Store, ValidationError, format_time, parse_expires_in

__all__ = ["Sandbox", "Store", "ValidationError", "VARIANTS", "format_time", "parse_expires_in"]
