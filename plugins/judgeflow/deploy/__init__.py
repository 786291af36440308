"""Setting up a deployment: ``judgeflow deploy init``, the one command ``docker compose`` and the stack test run.

- :mod:`outcome`: what each step did (created, unchanged, a problem ...), and the report of a run.
- :mod:`specs`: the connections init would create, built from its inputs, and what is wrong with
  existing ones (a leftover emulator judge, a cache on the broker's Redis database); pure.
- :mod:`metadata`: Airflow's side: migrate, the ``judge_api`` pool, connections, Fernet encryption.
- :mod:`warehouse_role`: PostgreSQL's side: the warehouse database, judgeflow's role, its grants,
  judgeflow's tables.
- :mod:`init`: the steps in order, then the checks; :mod:`command`: the command line.

It sits beside :mod:`judgeflow.tasks`, under :mod:`judgeflow.cli`: it uses the storage layer to
create judgeflow's tables and the judging layer's Redis reading, and nothing a task runs imports it.
"""
