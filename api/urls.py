from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import concept_views, pages, views

app_name = "api"
urlpatterns = [
    path("api/v1/me/", views.me, name="me"),
    path("api/v1/providers/", views.providers, name="providers"),
    path("api/v1/estimate/", views.estimate, name="estimate"),
    path("api/v1/generations/", views.generations, name="generations"),
    path("api/v1/generations/<int:pk>/", views.generation, name="generation"),
    path("api/v1/generations/<int:pk>/regenerate/", views.regenerate, name="regenerate"),
    path("api/v1/generations/<int:pk>/cancel/", views.cancel, name="cancel"),
    path("api/v1/generations/<int:pk>/finish/<slug:kind>/", views.finish, name="finish"),
    path("api/v1/generations/<int:pk>/steps/<int:step_pk>/", views.finish_step, name="finish-step"),
    path("api/v1/generations/<int:pk>/assets/<int:asset_pk>/", views.asset, name="asset"),
    path("api/v1/image-models/", concept_views.image_models, name="image-models"),
    path("api/v1/concepts/", concept_views.concept_jobs, name="concepts"),
    path("api/v1/concepts/estimate/", concept_views.concept_estimate, name="concept-estimate"),
    path("api/v1/concepts/<int:pk>/", concept_views.concept_job, name="concept"),
    path("api/v1/concepts/<int:pk>/model/", concept_views.concept_model, name="concept-model"),
    path(
        "api/v1/concepts/<int:pk>/images/<int:image_pk>/",
        concept_views.concept_image,
        name="concept-image",
    ),
    path(
        "api/v1/concepts/<int:pk>/references/<int:image_pk>/",
        concept_views.concept_image,
        {"reference": True},
        name="concept-reference",
    ),
    path("api/v1/batches/", views.batch_create, name="batches"),
    path("api/v1/batches/<int:pk>/", views.batch, name="batch"),
    path("api/v1/batches/<int:pk>/submit/", views.batch_submit, name="batch-submit"),
    path("api/v1/batches/<int:pk>/cancel/", views.batch_cancel, name="batch-cancel"),
    path("api/v1/batches/<int:pk>/models.zip", views.batch_zip, name="batch-zip"),
    path("api/v1/reviews/queue/", views.review_queue, name="review-queue"),
    path("api/v1/reviews/<int:pk>/decide/", views.decide, name="decide"),
    path("api/v1/spend/", views.spend_report, name="spend"),
    path("api/v1/ledger.csv", views.ledger_export, name="ledger"),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    # The member's own page: their personal tokens.
    path("account/tokens/", pages.tokens, name="tokens"),
    path("account/tokens/<int:pk>/revoke/", pages.revoke, name="token-revoke"),
]
