"""Seed 001: one-time webhook messages (`/messages`) and an unauthenticated `/health`."""
