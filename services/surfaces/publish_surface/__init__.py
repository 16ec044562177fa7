"""Seed 000: `POST /publish` and `DELETE /delete`, a one-shot HTTP callback API over the core."""
