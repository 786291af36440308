"""
### llm_judge_suite_check: no DAG; the import error of every judgeflow suite that cannot load

Airflow keeps one import error per DAG file and stops every DAG of a file that has one, so the
judge DAGs (`dags/llm_judge_daily.py`) skip a suite that cannot load instead of raising. This file
raises for them: its import error lists each suite file with the key and the problem (an unknown
key, a rubric that does not exist, a name or DAG id used twice, a source table or column the
warehouse does not have), while every other suite's DAG keeps running. Fix the file and the error
clears at the next parse.

The warehouse is asked about tables and columns at most every `JUDGEFLOW_SOURCE_CHECK_SECONDS`
(600; `0` turns it off), within a time box; see `judgeflow.tasks.suites`.
"""

from __future__ import annotations

from judgeflow.tasks.suites import check_suites, include_dir

check_suites(include_dir(__file__))
