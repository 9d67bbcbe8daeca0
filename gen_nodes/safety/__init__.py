"""safety: what stands between a model and a destructive call.

Approvals (a person decides), idempotency records, secret delivery (a created key's token
never reaches a model), what a person is shown, and notices to approvers.
"""
