"""What the API answers, and the shapes of the request bodies for the OpenAPI schema.

The bodies are only shaped here (types, which fields exist): what a value may be is
decided by the same Django forms and catalogue as the pages (see ``requests.py``).
"""

from django.urls import reverse
from rest_framework import serializers

from generations.catalogue import MAX_PROMPT_LENGTH
from generations.models import Asset, ConceptImage, ConceptJob, Generation


def _absolute(serializer, path):
    """``path`` as an absolute URL on the request's host (a path without a request)."""
    request = serializer.context.get("request")
    return request.build_absolute_uri(path) if request else path


class AssetSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = Asset
        fields = ["id", "role", "format", "bytes", "sha256", "facts", "created_at", "url"]

    def get_url(self, asset) -> str:
        return _absolute(self, reverse("api:asset", args=[asset.generation_id, asset.pk]))


class GenerationSerializer(serializers.ModelSerializer):
    """One generation as the list shows it; the detail adds its place and its timing."""

    owner = serializers.CharField(source="owner.get_username")
    provider_label = serializers.CharField()
    state_label = serializers.CharField(source="get_state_display")
    assets = AssetSerializer(many=True)
    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = Generation
        fields = [
            "id",
            "url",
            "page_url",
            "owner",
            "provider",
            "provider_label",
            "edition",
            "mode",
            "prompt",
            "options",
            "state",
            "state_label",
            "progress",
            "credit_estimate",
            "price_breakdown",
            "failure_reason",
            "attention_reason",
            "previous_version",
            "created_at",
            "submitted_at",
            "finished_at",
            "assets",
        ]

    def get_url(self, generation) -> str:
        return _absolute(self, reverse("api:generation", args=[generation.pk]))

    def get_page_url(self, generation) -> str:
        return _absolute(self, reverse("generations:detail", args=[generation.pk]))


class GenerationDetailSerializer(GenerationSerializer):
    queue_position = serializers.IntegerField(allow_null=True)
    estimated_start = serializers.DateTimeField(allow_null=True)
    estimated_finish = serializers.DateTimeField(allow_null=True)
    can_cancel = serializers.BooleanField()
    cancel_note = serializers.CharField(
        allow_blank=True, help_text="Why it can no longer be canceled; empty while it can."
    )

    class Meta(GenerationSerializer.Meta):
        fields = [
            *GenerationSerializer.Meta.fields,
            "queue_position",
            "estimated_start",
            "estimated_finish",
            "can_cancel",
            "cancel_note",
        ]


class GenerationRequestSerializer(serializers.Serializer):
    """A new generation (or the changes of a regenerate: every field then optional).

    ``images``: for image input ``{"image": "<base64>"}``; for multi-view one entry
    per view slot (``{"front": "...", "left": "..."}``); a list is taken in slot order.
    Multipart bodies send the same fields as form fields, each option as a field of
    its own name, and the files as ``image`` or ``view_<slot>``.
    """

    provider = serializers.CharField()
    mode = serializers.CharField(required=False, help_text="text, image or multiview")
    edition = serializers.CharField(required=False, allow_blank=True)
    prompt = serializers.CharField(required=False, allow_blank=True, max_length=MAX_PROMPT_LENGTH)
    options = serializers.DictField(required=False)
    images = serializers.JSONField(required=False)


class BreakdownLineSerializer(serializers.Serializer):
    label = serializers.CharField()
    credits = serializers.IntegerField()


class EstimateSerializer(serializers.Serializer):
    provider = serializers.CharField()
    mode = serializers.CharField()
    edition = serializers.CharField(allow_blank=True)
    total = serializers.IntegerField()
    breakdown = BreakdownLineSerializer(many=True)
    price_version = serializers.IntegerField(allow_null=True)
    remaining = serializers.IntegerField(allow_null=True, help_text="Credits left this month")
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class DecisionRequestSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approved", "rejected", "changes_requested"])
    comment = serializers.CharField(required=False, allow_blank=True)
    based_on = serializers.IntegerField(
        required=False,
        help_text="The latest decision id you saw (0: none); refused with 409 if another came since.",
    )


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


# --- concept jobs ("Start from an image") ---------------------------------------------------


class ConceptImageSerializer(serializers.ModelSerializer):
    """A stored concept image (or an image the job edits) and where to download it."""

    url = serializers.SerializerMethodField()

    class Meta:
        model = ConceptImage
        fields = ["id", "position", "format", "width", "height", "bytes", "url"]

    def get_url(self, image) -> str:
        route = "api:concept-image" if isinstance(image, ConceptImage) else "api:concept-reference"
        return _absolute(self, reverse(route, args=[image.job_id, image.pk]))


class ConceptJobSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.get_username")
    image_model_label = serializers.CharField(source="model_spec.label")
    state_label = serializers.CharField(source="get_state_display")
    images = ConceptImageSerializer(many=True, help_text="The stored results, once finished.")
    references = ConceptImageSerializer(many=True, help_text="The uploaded images it edits.")
    models = serializers.SerializerMethodField(
        help_text="Ids of the generations made from its images (make-model)."
    )
    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = ConceptJob
        fields = [
            "id",
            "url",
            "page_url",
            "owner",
            "image_model",
            "image_model_label",
            "prompt",
            "options",
            "count",
            "edit_of",
            "state",
            "state_label",
            "progress",
            "credit_estimate",
            "price_breakdown",
            "failure_reason",
            "created_at",
            "finished_at",
            "images",
            "references",
            "models",
        ]

    def get_url(self, job) -> str:
        return _absolute(self, reverse("api:concept", args=[job.pk]))

    def get_page_url(self, job) -> str:
        return _absolute(self, reverse("generations:concept", args=[job.pk]))

    def get_models(self, job) -> list[int]:
        # From the prefetched images and picks: no query per job.
        return sorted(
            {pick.generation_id for image in job.images.all() for pick in image.picks.all()}
        )


class ConceptRequestSerializer(serializers.Serializer):
    """A concept job. Multipart bodies send each option as a field of its own name and
    the images to edit as files named ``images``."""

    image_model = serializers.CharField(
        required=False, help_text="A key of /api/v1/image-models/ (default: edit_of's)"
    )
    prompt = serializers.CharField(max_length=MAX_PROMPT_LENGTH)
    count = serializers.IntegerField(
        required=False, min_value=1, max_value=4, help_text="Images to make (default 2)"
    )
    options = serializers.DictField(required=False, help_text="The model's options")
    images = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Images to edit: base64 (or data URIs), at most 4",
    )
    edit_of = serializers.IntegerField(
        required=False, help_text="A concept image id to edit again (sent first)"
    )


class ConceptEstimateRequestSerializer(serializers.Serializer):
    image_model = serializers.CharField()
    count = serializers.IntegerField(required=False, min_value=1, max_value=4)
    options = serializers.DictField(required=False)


class ConceptEstimateSerializer(serializers.Serializer):
    image_model = serializers.CharField()
    count = serializers.IntegerField()
    total = serializers.IntegerField()
    breakdown = BreakdownLineSerializer(many=True)
    remaining = serializers.IntegerField(allow_null=True, help_text="Credits left this month")
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class MakeModelRequestSerializer(serializers.Serializer):
    """Picked concept images to image-to-3D (``image``) or multi-view (``views``)."""

    provider = serializers.CharField(help_text="A provider that takes images")
    edition = serializers.CharField(required=False, allow_blank=True)
    mode = serializers.CharField(
        required=False, help_text="image or multiview; default: multiview when views are sent"
    )
    image = serializers.IntegerField(required=False, help_text="A concept image id of this job")
    views = serializers.DictField(
        child=serializers.IntegerField(),
        required=False,
        help_text='View slot to concept image id, e.g. {"front": 12, "left": 13}',
    )
