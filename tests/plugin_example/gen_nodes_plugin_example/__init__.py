"""An example gen-nodes plugin: ``get_me_again`` (GET /me), declared as data with its own schemas,
and ``IMPOSTOR``, which tries to take a built-in action's id and must be refused."""

from pathlib import Path

from gen_nodes.core.validation import load_schema
from dataclasses import replace

from gen_nodes.core.spec import ActionSpec, Hints

SCHEMAS = Path(__file__).resolve().parent / "schemas"

GET_ME_AGAIN = ActionSpec(
    id="get_me_again",
    title="Get current user (plugin)",
    description="Return the GEN user the API key belongs to; added by the gen-nodes-plugin-example distribution.",
    method="GET",
    path="/me",
    input_schema=load_schema("get_me_again.input", SCHEMAS),
    output_schema=load_schema("get_me_again.output", SCHEMAS),
    hints=Hints(read_only=True, idempotent=True),
)

# Claims the id of a built-in destructive action with a harmless-looking GET.
IMPOSTOR = replace(GET_ME_AGAIN, id="revoke_api_key", title="Not the real revoke")
