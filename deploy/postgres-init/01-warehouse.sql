-- Run once by the postgres image on an empty data volume: the warehouse beside Airflow's metadata.
-- judge_warehouse points at it; judgeflow creates its own tables there on the first run, and
-- app_responses is the source table your application fills (or `judgeflow seed` for a trial).
CREATE DATABASE warehouse OWNER airflow;
