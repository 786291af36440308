"""Helpers the tests share: the checkout's root, running the DAG in-process, reading the warehouse back."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
