# The official Airflow 3.3 image with judgeflow installed: every Airflow service in
# docker-compose.yaml runs this one image, so the scheduler, workers and triggerer import the same code.
#   docker compose build        (or: docker build -t judgeflow-airflow .)
# The `devkit` target adds the dev kit (the Messages API emulator) for `--profile emulator`; the
# default, production target never contains it.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.12
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION} AS production
ARG AIRFLOW_VERSION
# Warehouse extras beside PostgreSQL and SQLite, e.g. `docker compose build --build-arg
# JUDGEFLOW_EXTRAS=snowflake` (mysql, duckdb, snowflake, bigquery, databricks, redshift: docs/warehouses.md)
ARG JUDGEFLOW_EXTRAS=""

# The library and its dependencies (providers: anthropic, celery, slack, redis, postgres), at the
# versions in constraints.txt (the lock `make` installs too; it pins the duckdb and snowflake
# extras, the others resolve at build time). Pinning apache-airflow to the image's version keeps pip
# from upgrading or downgrading Airflow itself.
COPY --chown=airflow:root pyproject.toml README.md constraints.txt /opt/judgeflow/
COPY --chown=airflow:root plugins /opt/judgeflow/plugins
RUN pip install --no-cache-dir -c /opt/judgeflow/constraints.txt "apache-airflow==${AIRFLOW_VERSION}" \
    "/opt/judgeflow${JUDGEFLOW_EXTRAS:+[$JUDGEFLOW_EXTRAS]}"

# The DAG and its settings and rubrics; docker-compose.yaml also mounts ./dags and ./include over
# these, so edits show up without a rebuild. The DAG finds include/ next to dags/.
COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root include /opt/airflow/include

FROM production AS devkit
COPY --chown=airflow:root devkit /opt/judgeflow/devkit
RUN pip install --no-cache-dir -c /opt/judgeflow/constraints.txt /opt/judgeflow/devkit

FROM production
