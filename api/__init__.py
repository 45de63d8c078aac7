"""The JSON API, ``/api/v1/``, and personal API tokens.

Built on Django REST framework with drf-spectacular for the OpenAPI schema and
drf-spectacular-sidecar for Swagger UI's files. Why DRF rather than django-ninja:
it works with Django's own request, session auth and CSRF as they are (the pages'
scripts call it with their session), its throttles answer 429 with Retry-After
through Django's cache (shared by every web process), and it validates nothing we
need: request bodies go through the pages' own Django forms, so the API refuses
exactly what the form refuses. The sidecar ships Swagger UI as Django static files,
so the docs page works on a closed network (no CDN).
"""
