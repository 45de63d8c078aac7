from django.urls import path

from . import views

app_name = "credits"
urlpatterns = [
    path("", views.spend_review, name="spend"),
    path("ledger.csv", views.ledger_csv, name="ledger-csv"),
    path("wallet/", views.wallet, name="wallet"),
    path("prices/", views.price_table, name="prices"),
    path("budgets/", views.budget_list, name="budgets"),
    path("adjustments/", views.adjustment_new, name="adjust"),
]
