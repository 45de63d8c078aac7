from django.urls import path

from . import views

app_name = "reviews"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("batch-approve/", views.batch_approve, name="batch-approve"),
    path("<int:pk>/", views.generation_review, name="generation"),
    path("<int:pk>/decide/", views.decide, name="decide"),
    path("<int:pk>/comments/", views.comment, name="comment"),
    path("<int:pk>/tags/", views.tag_add, name="tag-add"),
    path("<int:pk>/tags/<int:tag_pk>/remove/", views.tag_remove, name="tag-remove"),
    path("<int:pk>/compare/", views.compare, name="compare"),
    path("notifications/", views.notification_list, name="notifications"),
    path("notifications/read/", views.notifications_read, name="notifications-read"),
    path("notifications/preferences/", views.preferences, name="preferences"),
    path("audit/", views.audit_log, name="audit"),
]
