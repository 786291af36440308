"""judgeflow: score every LLM response with a Claude judge, daily, inside Airflow.

The package is a library; Airflow DAG files in ``dags/`` are thin wrappers over
:mod:`judgeflow.tasks.pipeline`. Module-level imports stay light because Airflow imports
everything under ``plugins/`` while it looks for plugins.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
