"""The distributed topology, run natively: Airflow on Postgres with Celery workers over Redis.

``judgeflow-dev stack-test`` (``make stack-test``) starts, from this virtualenv, what
``docker-compose.yaml`` runs in containers (api-server, scheduler, dag-processor, triggerer and two
Celery workers, with PostgreSQL as metadata database and Redis as broker, limiter and cache), runs
the daily DAG and a backfill through them, checks the result and prints the figures. There is no
Docker engine on the machines this project is built on; this is how the compose layout is proven.

- :mod:`identity`: tells two Celery workers on one host apart (``hostname_callable``).
- :mod:`processes`: starts every process in its own process group and stops it by pid.
- :mod:`services`: a fresh metadata database, warehouse schema, private redis-server, free ports.
- :mod:`topology`: the shared Airflow environment and the command of each service.
- :mod:`rest`: the bits of Airflow's REST API v2 the run needs (JWT from ``/auth/token``).
- :mod:`observe`: what ran where and when, from the REST API, as figures.
- :mod:`ledger`: the days it seeds, and what the warehouse says was scored per day.
- :mod:`report`: the run's options, and its figures and failed checks.
- :mod:`scenario`: the run itself and its checks.
"""
