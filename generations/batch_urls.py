from django.urls import path

from . import batches

app_name = "batches"
urlpatterns = [
    path("", batches.batch_new, name="new"),
    path("<int:pk>/", batches.batch_detail, name="detail"),
    path("<int:pk>/submit/", batches.batch_submit, name="submit"),
    path("<int:pk>/cancel/", batches.batch_cancel, name="cancel"),
    path("<int:pk>/models.zip", batches.batch_zip, name="zip"),
]
