"""Staging a run and reading its batches back: what ``Warehouse.stage_run``, ``plan_batches``,
``read_batch`` and ``write`` promise (every wanted response staged once, batches cut as configured,
a retried batch not judged again, writes idempotent)."""
