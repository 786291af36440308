"""Helpers the tests share: running the DAG in-process and reading the warehouse back."""
