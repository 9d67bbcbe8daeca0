"""Chat-ops: ``/gen ...`` slash commands for Slack and Discord, generated from the registry.

``core.py`` knows no platform: the command grammar (from each spec's ``chat``),
parsing, help, replies written for people, per-user GEN key bindings, the approval
button flow and the audit log. ``slack.py`` (Bolt for Python) and ``discord.py``
(HTTP interactions on Starlette) only translate requests and replies; ``cli.py`` is
``gen-nodes chatops ...``.
"""
