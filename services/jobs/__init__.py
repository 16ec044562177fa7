"""The jobs capability (seed 003): DAG jobs whose tasks run on the core's run path."""
