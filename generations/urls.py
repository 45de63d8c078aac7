from django.urls import path

from . import attention, views

app_name = "generations"
urlpatterns = [
    # First, so the status card every page of a generation in flight polls every 2 s is
    # found after one pattern; no other path here is a bare number, so no answer changes.
    path("<int:pk>/", views.generation_detail, name="detail"),
    path("attention/", attention.attention_list, name="attention"),
    path("<int:pk>/resolve/", attention.attention_resolve, name="attention-resolve"),
    path("", views.generation_list, name="list"),
    path("new/", views.generation_new, name="new"),
    path("new/cost/", views.generation_cost, name="cost"),
    path("<int:pk>/convert/", views.generation_convert, name="convert"),
    path("<int:pk>/cancel/", views.generation_cancel, name="cancel"),
    path("<int:pk>/duplicate/", views.generation_duplicate, name="duplicate"),
    path("<int:pk>/poster/", views.generation_poster, name="poster"),
    path("<int:pk>/images/<int:image_pk>/", views.reference_image, name="reference-image"),
    path("<int:pk>/assets/<int:asset_pk>/", views.asset_download, name="asset"),
    path(
        "<int:pk>/assets/<int:asset_pk>/view/",
        views.asset_download,
        {"inline": True},
        name="asset-view",
    ),
]
