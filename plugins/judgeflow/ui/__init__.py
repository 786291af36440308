"""The judgeflow view in the Airflow UI: an Airflow plugin with a FastAPI app that reads the warehouse.

- :mod:`judgeflow.ui.plugin`: the ``AirflowPlugin`` (entry point ``airflow.plugins``), light to import;
- :mod:`judgeflow.ui.queries` (with :mod:`~judgeflow.ui.findings`, :mod:`~judgeflow.ui.scope`): every read,
  aggregated in SQL;
- :mod:`judgeflow.ui.pages`: HTML; :mod:`judgeflow.ui.app`: routes, JSON endpoints, authentication;
- :mod:`judgeflow.ui.sample` and :mod:`judgeflow.ui.bench`: generated warehouses and ``judgeflow bench-ui``.
"""
