"""The only code that talks to the judge API: client, retries, concurrency, usage and cost.

Nothing else in judgeflow imports ``anthropic``; the rest of the library sees verdicts, usage
and typed errors.
"""
