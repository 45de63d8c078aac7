from django.urls import path

from . import views

app_name = "generations"
urlpatterns = [
    path("", views.generation_list, name="list"),
    path("new/", views.generation_new, name="new"),
    path("new/cost/", views.generation_cost, name="cost"),
    path("<int:pk>/", views.generation_detail, name="detail"),
    path("<int:pk>/assets/<int:asset_pk>/", views.asset_download, name="asset"),
    path(
        "<int:pk>/assets/<int:asset_pk>/view/",
        views.asset_download,
        {"inline": True},
        name="asset-view",
    ),
]
