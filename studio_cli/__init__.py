"""``studio``: the dashboard's command line, for people and their scripts.

It talks to the JSON API with a personal token (``STUDIO_URL``, ``STUDIO_TOKEN``), so it
runs anywhere the dashboard is reachable and acts with its owner's role and budget.
Click for the commands, rich for the progress bars and tables, requests for HTTP.
"""
