"""The judgeflow view in the Airflow UI: an Airflow plugin with a FastAPI app that reads the warehouse.

- :mod:`judgeflow.ui.plugin`: the ``AirflowPlugin`` (entry point ``airflow.plugins``), light to import;
- :mod:`judgeflow.ui.pages`: HTML; :mod:`judgeflow.ui.app`: routes, JSON endpoints, authentication.

Every read is aggregated in SQL by :mod:`judgeflow.storage.view_reads`; regression states come from
:mod:`judgeflow.quality.findings`. Generated warehouses and ``judgeflow-dev bench-ui`` are in the dev kit.
"""
