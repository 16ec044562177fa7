"""The projector process: keeps the asynchronous views (projections/views.py) up to date."""
