"""The dashboard at /ui/: server-rendered pages over the same application packages as the APIs."""
