from django.urls import path

from . import views

app_name = "ops"
urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics_view, name="metrics"),
    path("ops/status/", views.status_page, name="status"),
]
