from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from generations import views as generations_views

urlpatterns = [
    path("", generations_views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("generations/", include("generations.urls")),
    path("credits/", include("credits.urls")),
    path("reviews/", include("reviews.urls")),
    path("library/", include("reviews.library_urls")),
    path("admin/", admin.site.urls),
    path("", include("api.urls")),
    path("batches/", include("generations.batch_urls")),
    path("", include("ops.urls")),
]
