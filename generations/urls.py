from django.urls import path

from . import attention, concept_views, views

app_name = "generations"
urlpatterns = [
    # First, so the status card every page of a generation in flight polls every 2 s is
    # found after one pattern; no other path here is a bare number, so no answer changes.
    path("<int:pk>/", views.generation_detail, name="detail"),
    path("attention/", attention.attention_list, name="attention"),
    path("<int:pk>/resolve/", attention.attention_resolve, name="attention-resolve"),
    path(
        "attention/<slug:kind>/<int:pk>/resolve/",
        attention.attention_resolve_job,
        name="attention-resolve-job",
    ),
    path("", views.generation_list, name="list"),
    path("new/", views.generation_new, name="new"),
    path("new/cost/", views.generation_cost, name="cost"),
    path("<int:pk>/convert/", views.generation_convert, name="convert"),
    path("<int:pk>/finish/<slug:kind>/", views.generation_finish, name="finish"),
    path("<int:pk>/cancel/", views.generation_cancel, name="cancel"),
    path("<int:pk>/duplicate/", views.generation_duplicate, name="duplicate"),
    path("<int:pk>/poster/", views.generation_poster, name="poster"),
    path("<int:pk>/images/<int:image_pk>/", views.reference_image, name="reference-image"),
    # "Start from an image" (issue 19): concept jobs, their images, a pick made a model.
    path("concepts/", concept_views.concept_list, name="concepts"),
    path("concepts/new/", concept_views.concept_new, name="concept-new"),
    path("concepts/new/cost/", concept_views.concept_cost, name="concept-cost"),
    path("concepts/<int:pk>/", concept_views.concept_detail, name="concept"),
    path("concepts/<int:pk>/model/", concept_views.concept_make_model, name="concept-model"),
    path(
        "concepts/<int:pk>/model/cost/",
        concept_views.concept_model_cost,
        name="concept-model-cost",
    ),
    path(
        "concepts/<int:pk>/images/<int:image_pk>/",
        concept_views.concept_image,
        name="concept-image",
    ),
    path(
        "concepts/<int:pk>/references/<int:image_pk>/",
        concept_views.concept_image,
        {"reference": True},
        name="concept-reference",
    ),
    path("<int:pk>/assets/<int:asset_pk>/", views.asset_download, name="asset"),
    path(
        "<int:pk>/assets/<int:asset_pk>/view/",
        views.asset_download,
        {"inline": True},
        name="asset-view",
    ),
]
