"""Seed 003 at /jobs: jobs made of tasks that form a DAG."""
