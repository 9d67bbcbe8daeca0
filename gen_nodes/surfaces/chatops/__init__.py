"""Chat-ops: ``/gen ...`` slash commands for Slack and Discord, generated from the registry.

No module here but the adapters knows a platform: ``core.py`` (:class:`ChatOps`: parsing,
running, the approval button flow, login), ``grammar.py`` (command words from each spec's
``chat``, usage and help), ``coercion.py`` (typed words as JSON values), ``bindings.py``
(per-user GEN keys, sealed), ``render.py`` and ``messages.py`` (replies written for people)
and ``audit.py`` (the audit log). ``slack.py`` (Bolt for Python) and ``discord.py``
(HTTP interactions on Starlette) only translate requests and replies; ``cli.py`` is
``gen-nodes chatops ...``.
"""
