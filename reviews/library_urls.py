from django.urls import path

from . import views

app_name = "library"
urlpatterns = [
    path("", views.library, name="index"),
    path("<int:pk>/assets/<int:asset_pk>/", views.library_asset, name="asset"),
    path(
        "<int:pk>/assets/<int:asset_pk>/view/",
        views.library_asset,
        {"inline": True},
        name="asset-view",
    ),
]
