"""Forms of "Start from an image": the concept job, and a picked image made into a model."""

import uuid

from django import forms

from . import images
from .batches import MultipleFileField
from .catalogue import MAX_PROMPT_LENGTH, MODE_LABELS, PROVIDERS
from .image_models import IMAGE_MODELS
from .image_models import choices as model_choices
from .models import Mode

# At most this many reference images a job (each request carries at most
# DATA_UPLOAD_MAX_NUMBER_FILES files; every model takes at least 10).
MAX_REFERENCES = 4
DEFAULT_MODEL = "gemini_31_flash"


def _union(name):
    """Every choice any model offers for option ``name``, in the catalogue's order."""
    seen = {}
    for model in IMAGE_MODELS.values():
        for option in model.options:
            if option.name == name:
                seen.update(dict.fromkeys(option.choices))
    return [(value, value) for value in seen]


class ConceptForm(forms.Form):
    """A concept job: model, prompt, count, the model's options and images to edit.

    Only the chosen model's options are fields (``model`` picks them, as the selection
    does on the new-generation form); a value outside the model's choices is an error.
    """

    form_token = forms.UUIDField(widget=forms.HiddenInput)
    image_model = forms.ChoiceField(label="Image model", choices=model_choices)
    prompt = forms.CharField(
        max_length=MAX_PROMPT_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=f"What the picture shows; at most {MAX_PROMPT_LENGTH:,} characters.",
    )
    count = forms.TypedChoiceField(
        label="Number of images",
        coerce=int,
        choices=[(n, n) for n in range(1, 5)],
        initial=2,
        help_text="Each image is priced; pick the one to model from them.",
    )
    references = MultipleFileField(
        label="Images to edit (optional)",
        required=False,
        help_text=f"Up to {MAX_REFERENCES} PNG, JPEG or WebP images; with them the model "
        "edits instead of drawing from nothing.",
    )
    # "Edit again": the concept image (an id the view checks) this job edits.
    edit_of = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, model_key=None, **kwargs):
        super().__init__(*args, **kwargs)
        key = model_key if model_key in IMAGE_MODELS else DEFAULT_MODEL
        self.model = IMAGE_MODELS[key]
        self.fields["image_model"].initial = key
        self.option_names = []
        for option in self.model.options:
            self.fields[option.name] = forms.ChoiceField(
                label=option.label,
                choices=[(c, c) for c in option.choices],
                initial=option.default,
                required=False,
            )
            self.option_names.append(option.name)
        self.reference_images = []  # cleaned (images.CleanImage), once valid

    @property
    def option_fields(self):
        return [self[name] for name in self.option_names]

    def options(self):
        """The chosen model's options as the form stands (defaults where unset)."""
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        values = {name: data.get(name) or self[name].value() for name in self.option_names}
        return self.model.clean_options(values)[0]

    def clean_count(self):
        count = self.cleaned_data["count"]
        if count > self.model.max_images:
            raise forms.ValidationError(
                f"{self.model.label} makes at most {self.model.max_images}."
            )
        return count

    def clean_references(self):
        uploads = self.cleaned_data.get("references") or []
        if len(uploads) > MAX_REFERENCES:
            raise forms.ValidationError(f"At most {MAX_REFERENCES} images, please.")
        cleaned = []
        for upload in uploads:
            try:
                cleaned.append(images.clean_upload(upload))
            except images.ImageRejected as exc:
                raise forms.ValidationError(f"{upload.name}: {exc.message}") from None
        self.reference_images = cleaned
        return uploads


class ConceptCostForm(ConceptForm):
    """The live cost's GET parameters: the form without its files or token."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["form_token"].required = False
        self.fields["prompt"].required = False


def image_targets():
    """[(value, label)] of every provider, edition and mode that takes images."""
    targets = []
    for spec in PROVIDERS.values():
        for edition in spec.editions or ("",):
            for mode in (Mode.IMAGE, Mode.MULTIVIEW):
                if mode in spec.modes:
                    label = f"{spec.display(edition or None)}: {MODE_LABELS[mode].lower()}"
                    targets.append((f"{spec.key}:{edition}:{mode}", label))
    return targets


def view_slots():
    """Every multi-view slot any provider has, [(slot, label)] in the catalogue's order."""
    slots = {}
    for spec in PROVIDERS.values():
        for edition in spec.editions or ("",):
            if Mode.MULTIVIEW in spec.modes:
                for slot, label, _ in spec.views_for(Mode.MULTIVIEW, edition or None):
                    slots.setdefault(slot, label)
    return list(slots.items())


class MakeModelForm(forms.Form):
    """A picked concept image (or one per view slot) sent to image-to-3D or multi-view.

    The provider's options are its defaults; the generation's page regenerates it with
    changes like any other.
    """

    form_token = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)
    target = forms.ChoiceField(label="Make a 3D model with", choices=image_targets)
    image = forms.TypedChoiceField(
        label="Image",
        coerce=int,
        required=False,
        empty_value=None,
        widget=forms.RadioSelect,
        help_text="For single-image input: the picture to model.",
    )

    def __init__(self, *args, job_images=(), **kwargs):
        super().__init__(*args, **kwargs)
        picks = [("", "—")] + [(image.pk, f"Image {image.position + 1}") for image in job_images]
        self.images_by_pk = {image.pk: image for image in job_images}
        self.fields["image"].choices = picks[1:]
        self.slot_names = []
        for slot, label in view_slots():
            name = f"view_{slot}"
            self.fields[name] = forms.TypedChoiceField(
                label=label, coerce=int, required=False, empty_value=None, choices=picks
            )
            self.slot_names.append((name, slot))

    @property
    def slot_fields(self):
        return [self[name] for name, _ in self.slot_names]

    def combination(self):
        """(spec, edition, mode) of the target as sent, or of the first target."""
        value = self.data.get("target") if self.is_bound else None
        if value not in dict(image_targets()):
            value = image_targets()[0][0]
        key, edition, mode = value.split(":")
        return PROVIDERS[key], edition, mode

    def clean(self):
        data = super().clean()
        if "target" not in data:
            return data
        spec, edition, mode = self.combination()
        if mode == Mode.IMAGE:
            chosen = [("image", data.get("image"))] if data.get("image") else []
            errors = spec.validate(mode, edition or None, "", {}, image_count=len(chosen))
        else:
            chosen = [(slot, data.get(name)) for name, slot in self.slot_names if data.get(name)]
            errors = spec.validate(mode, edition or None, "", {}, views=[s for s, _ in chosen])
        for field, message in errors.items():
            self.add_error("image" if field == "image" else None, message)
        self.picks = [(slot, self.images_by_pk[pk]) for slot, pk in chosen]
        return data
