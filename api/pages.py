"""The member's token page: make a named token (shown once), see them, revoke one."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from .forms import TokenForm
from .models import ApiToken


@login_required
def tokens(request):
    secret = None
    if request.method == "POST":
        form = TokenForm(request.POST)
        if form.is_valid():
            token, secret = ApiToken.objects.issue(request.user, form.cleaned_data["name"])
            form = TokenForm()
    else:
        form = TokenForm()
    context = {
        "form": form,
        # Shown in this one answer only: the secret is not stored anywhere.
        "secret": secret,
        "tokens": ApiToken.objects.filter(user=request.user),
        "docs_url": reverse("api:docs"),
        "api_url": request.build_absolute_uri("/"),
    }
    response = render(request, "api/tokens.html", context)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def revoke(request, pk):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    token.revoke()
    messages.success(request, f"Token “{token.name}” revoked: it no longer works.")
    return redirect("api:tokens")
