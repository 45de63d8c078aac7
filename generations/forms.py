"""The forms of the members' workspace.

Every input of every view goes through one of these, GET parameters of
fragments included. The new-generation form is built from the catalogue for
one provider, edition and input mode: its fields are exactly that
combination's options, with their defaults and help text, so nothing about a
provider is written here.
"""

import uuid

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q

from . import catalogue, images
from .catalogue import MAX_PROMPT_LENGTH, PROVIDERS
from .conversions import LOCAL_FORMATS, UPSTREAM_FORMATS
from .models import Generation, Mode, State

# The form opens on the cheapest text provider (the skeleton's default).
DEFAULT_PROVIDER = "hunyuan_rapid"
IMAGE_ACCEPT = "image/png,image/jpeg,image/webp"


class SelectionForm(forms.Form):
    """Which provider, edition and input mode a new-generation form is for.

    Tolerant on purpose: an unknown or mismatched value falls back to the
    provider's first mode or default edition, so a stale link still opens a
    form. The generation form itself then refuses a posted value that does not
    belong to the combination.
    """

    provider = forms.ChoiceField(choices=catalogue.choices, required=False)
    edition = forms.CharField(required=False, max_length=10)
    mode = forms.CharField(required=False, max_length=12)
    # "Regenerate with changes": the generation the form is prefilled from.
    source = forms.IntegerField(required=False, min_value=1)

    def combination(self):
        """(provider spec, mode, edition) of a valid combination."""
        self.is_valid()  # cleaned_data keeps the fields that are valid
        data = self.cleaned_data
        spec = PROVIDERS[data.get("provider") or DEFAULT_PROVIDER]
        mode = data.get("mode") if data.get("mode") in spec.modes else spec.modes[0]
        edition = data.get("edition") or ""
        if edition not in spec.editions:
            edition = spec.default_edition or ""
        return spec, mode, edition

    def source_pk(self):
        self.is_valid()
        return self.cleaned_data.get("source")


def _option_field(opt):
    """The Django field for one catalogue option; the catalogue has the last word on values."""
    common = {"label": opt.label, "help_text": opt.help, "required": False}
    if opt.kind == "bool":
        return forms.BooleanField(initial=bool(opt.default), **common)
    if opt.kind == "int":
        attrs = {"inputmode": "numeric"}
        if opt.minimum is not None:
            attrs["min"] = opt.minimum
        if opt.maximum is not None:
            attrs["max"] = opt.maximum
        if opt.default is None:
            attrs["placeholder"] = "Upstream default"
        return forms.IntegerField(
            initial=opt.default, widget=forms.NumberInput(attrs=attrs), **common
        )
    if opt.kind == "choice":
        choices = [(str(c), str(c)) for c in opt.choices]
        if opt.default is None:
            choices = [("", "Upstream default"), *choices]
        initial = "" if opt.default is None else str(opt.default)
        return forms.ChoiceField(choices=choices, initial=initial, **common)
    return forms.CharField(
        max_length=opt.max_length,
        widget=forms.Textarea(attrs={"rows": 2}),
        **common,
    )


class GenerationForm(forms.Form):
    """A new generation for one catalogue combination (see ``SelectionForm``).

    ``source`` is a generation the member may act on: the form is prefilled
    from it, the new generation is linked to it as its next version, and its
    reference images are used again for every slot left empty.
    """

    form_token = forms.UUIDField(widget=forms.HiddenInput)
    source = forms.IntegerField(required=False, widget=forms.HiddenInput)
    # The option names this form showed: after a refresh, a box that is absent
    # from the query was unchecked, not missing.
    shown = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)

    def __init__(self, *args, spec, mode, edition, source=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.spec, self.mode, self.edition = spec, mode, edition or ""
        self.source_generation = source
        self.kept = {}
        if source is not None and source.mode == mode:
            self.kept = {image.slot: image for image in source.images.all()}

        self.fields["provider"] = forms.ChoiceField(
            choices=catalogue.choices(), initial=spec.key, label="Provider"
        )
        if spec.editions:
            self.fields["edition"] = forms.ChoiceField(
                choices=spec.edition_choices(), initial=self.edition, label="Edition"
            )
        self.fields["mode"] = forms.ChoiceField(
            choices=spec.mode_choices(), initial=mode, label="Input", widget=forms.RadioSelect
        )
        if spec.takes_prompt(mode, edition):
            text = mode == Mode.TEXT
            self.fields["prompt"] = forms.CharField(
                required=text,
                max_length=MAX_PROMPT_LENGTH,
                label="Prompt",
                widget=forms.Textarea(
                    attrs={"rows": 4, "placeholder": "A red wooden chair with curved legs"}
                ),
                help_text=(
                    f"Describe the object. At most {MAX_PROMPT_LENGTH} characters."
                    if text
                    else "Only with the Sketch generation type: what the drawing shows."
                ),
            )
        self.option_names = []
        for opt in spec.options_for(mode, edition):
            self.fields[opt.name] = _option_field(opt)
            self.option_names.append(opt.name)
        self.fields["shown"].initial = " ".join(self.option_names)

        rules = spec.image_rules
        help_text = (
            f"PNG, JPEG or WebP, each side {rules.min_side}-{rules.max_side} px; larger images "
            f"are scaled down to {rules.send_max_side} px."
        )
        if rules.flatten_transparency:
            help_text += " Transparent areas become white (this provider refuses transparency)."
        self.image_slots = []  # (field name, slot, label, required)
        if mode == Mode.IMAGE:
            self.image_slots.append(("image", "image", "Reference image", True))
        elif mode == Mode.MULTIVIEW:
            for slot, label, required in spec.views_for(mode, edition):
                self.image_slots.append((f"view_{slot}", slot, f"{label} view", required))
        for name, slot, label, required in self.image_slots:
            self.fields[name] = forms.FileField(
                label=label,
                required=required and slot not in self.kept,
                help_text=help_text,
                widget=forms.FileInput(attrs={"accept": IMAGE_ACCEPT}),
            )

    # --- reading ----------------------------------------------------------------------
    @property
    def combination_key(self):
        # Templates see form["mode"] (the field) before form.mode; this names the combination.
        return f"{self.spec.key}:{self.mode}:{self.edition}"

    def image_fields(self):
        """(bound field, slot, kept ReferenceImage or None) for the template."""
        return [(self[name], slot, self.kept.get(slot)) for name, slot, _, _ in self.image_slots]

    def option_fields(self):
        return [self[name] for name in self.option_names]

    def raw_options(self):
        data = getattr(self, "cleaned_data", {})
        return {name: data.get(name) for name in self.option_names if name in data}

    def options(self):
        """Typed values of the options that are set ("4096" becomes 4096)."""
        return self.spec.clean_options(self.mode, self.edition, self.raw_options())

    def carried_values(self):
        """Valid values of a bound form that its sender showed, as the next form's initial.

        Used when the selection changes: what the member typed survives the swap.
        """
        self.is_valid()
        data = self.cleaned_data
        shown = set((data.get("shown") or "").split())
        carried = {}
        for name in ("form_token", "source", "prompt", *self.option_names):
            if name not in data or name not in self.fields:
                continue
            if isinstance(self.fields[name], forms.BooleanField):
                # A checkbox is absent both when unchecked and when it was not on the form.
                if name in self.data or name in shown:
                    carried[name] = data[name]
            elif name in self.data and data[name] not in (None, ""):
                carried[name] = data[name]
        return carried

    # --- validation -------------------------------------------------------------------
    def clean(self):
        data = super().clean()
        self.clean_images = []
        rules = self.spec.image_rules
        for name, slot, _, _ in self.image_slots:
            upload = data.get(name)
            source = upload
            if upload is None and slot in self.kept:
                source = self.kept[slot].file.open("rb")
            if source is None:
                continue
            try:
                cleaned = images.clean_upload(
                    source,
                    flatten_transparency=rules.flatten_transparency,
                    max_side=rules.send_max_side,
                )
            except images.ImageRejected as exc:
                self.add_error(name, exc.message)
                continue
            finally:
                if source is not upload:
                    source.close()
            self.clean_images.append((slot, cleaned))

        image_count = views = None
        if self.mode == Mode.IMAGE:
            image_count = len(self.clean_images)
        elif self.mode == Mode.MULTIVIEW:
            views = [slot for slot, _ in self.clean_images]
        if any(name in self.errors for name, *_ in self.image_slots):
            image_count = views = None  # one message per field is enough
        errors = self.spec.validate(
            self.mode,
            self.edition,
            data.get("prompt", ""),
            self.raw_options(),
            image_count=image_count,
            views=views,
        )
        for key, message in errors.items():
            field = {"views": self.image_slots[0][0] if self.image_slots else None}.get(key, key)
            if field in self.fields:
                if field not in self.errors:
                    self.add_error(field, message)
            else:
                self.add_error(None, message)
        return data


class CostForm(GenerationForm):
    """The GET parameters of the live cost fragment: the whole form, images aside.

    The estimate is tolerant (an invalid option is priced at its default), so a
    half-filled form still gets a price.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, *_ in self.image_slots:
            del self.fields[name]
        self.image_slots = []
        self.fields["form_token"].required = False
        if "prompt" in self.fields:
            self.fields["prompt"].required = False


class ActionForm(forms.Form):
    """A POST that spends credits on an existing generation (duplicate): double-click safe."""

    form_token = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)


class ConvertForm(forms.Form):
    output_format = forms.ChoiceField(
        choices=[*LOCAL_FORMATS.items(), *UPSTREAM_FORMATS.items()], label="Format"
    )


class PosterForm(forms.Form):
    """A poster captured from <model-viewer> (``toBlob``), cleaned like any upload."""

    poster = forms.FileField()

    def clean_poster(self):
        try:
            return images.clean_upload(self.cleaned_data["poster"], max_side=512)
        except images.ImageRejected as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from None


SORTS = {
    "newest": ("Newest first", ("-created_at", "-id")),
    "oldest": ("Oldest first", ("created_at", "id")),
    "cost_high": ("Most credits", ("-credit_estimate", "-id")),
    "cost_low": ("Fewest credits", ("credit_estimate", "id")),
}


class HistoryFilterForm(forms.Form):
    """The GET parameters of the history list; every one optional, so links stay shareable."""

    q = forms.CharField(required=False, max_length=200, label="Search prompts")
    state = forms.ChoiceField(required=False, choices=[("", "Any state"), *State.choices])
    provider = forms.ChoiceField(required=False)
    owner = forms.ModelChoiceField(
        required=False, queryset=None, empty_label="Anyone", label="Owner"
    )
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    sort = forms.ChoiceField(
        required=False, choices=[(k, v[0]) for k, v in SORTS.items()], label="Sort"
    )
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = [("", "Any provider"), *catalogue.choices()]
        # EXISTS probes generation_owner_recent_idx once per user; a join with DISTINCT
        # would read every generation (60 ms on 100k rows) on every page of the list.
        self.fields["owner"].queryset = (
            get_user_model()
            .objects.filter(Exists(Generation.objects.filter(owner=OuterRef("pk"))))
            .order_by("username")
        )

    def filter(self, queryset):
        """The queryset narrowed and ordered by the valid parameters (invalid ones are ignored)."""
        self.is_valid()
        data = self.cleaned_data
        if data.get("q"):
            queryset = queryset.filter(Q(prompt__icontains=data["q"]))
        if data.get("state"):
            queryset = queryset.filter(state=data["state"])
        if data.get("provider"):
            queryset = queryset.filter(provider=data["provider"])
        if data.get("owner"):
            queryset = queryset.filter(owner=data["owner"])
        if data.get("date_from"):
            queryset = queryset.filter(created_at__date__gte=data["date_from"])
        if data.get("date_to"):
            queryset = queryset.filter(created_at__date__lte=data["date_to"])
        return queryset.order_by(*SORTS[data.get("sort") or "newest"][1])

    def page_number(self):
        self.is_valid()
        return self.cleaned_data.get("page") or 1


# --- finishing a model (generations/finishing.py) -----------------------------------------


class FinishForm(forms.Form):
    """The shared part of every finishing step's form: which step, and one job per post."""

    kind = ""  # the step (finishing.STEPS) a subclass asks for
    form_token = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from credits.prices import active

        # The choices name their prices from the table in force (an admin may publish new
        # ones), so the words beside a choice and the cost line are the same figures.
        self.price_choices(active()[1]["finishing"])

    def price_choices(self, prices):
        """Put ``prices`` (the table's finishing section) into the choices' labels."""

    def options(self):
        """The validated options as stored on the job (unset optional ones left out)."""
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if name != "form_token" and value not in (None, "")
        }

    def cost(self):
        """The price with the form's initial choices (surcharges are on the choices' labels)."""
        from .finishing import price

        initial = {name: field.initial for name, field in self.fields.items()}
        return price(self.kind, initial)


class RemeshForm(FinishForm):
    kind = "remesh"
    engine = forms.ChoiceField(
        label="Remesher",
        choices=[
            ("tripo", "Tripo (uploads our file)"),
            ("tencent", "Tencent smart topology (a GLB made within 24 hours)"),
        ],
        initial="tripo",
    )
    polygons = forms.ChoiceField(
        choices=[("triangles", "Triangles"), ("quads", "Quads")],
        initial="triangles",
    )
    face_limit = forms.IntegerField(
        label="Target faces",
        required=False,
        min_value=500,
        max_value=500_000,
        help_text="Tripo: 500 to 500,000; empty: the upstream decides.",
    )
    face_level = forms.ChoiceField(
        label="Face level",
        choices=[("", "Automatic"), ("high", "High"), ("medium", "Medium"), ("low", "Low")],
        required=False,
        help_text="Tencent only: it takes a level, not a number of faces.",
    )

    def price_choices(self, prices):
        remesh = prices["remesh"]
        self.fields["engine"].choices = [
            ("tripo", f"Tripo (uploads our file; {remesh['tripo']} credits)"),
            (
                "tencent",
                f"Tencent smart topology ({remesh['tencent']} credits; a GLB made within 24 hours)",
            ),
        ]
        self.fields["polygons"].choices = [
            ("triangles", "Triangles"),
            ("quads", f"Quads (+{remesh['quads']} credits)"),
        ]

    def clean(self):
        data = super().clean()
        tencent = data.get("engine") == "tencent"
        if tencent and data.get("face_limit"):
            self.add_error("face_limit", "Tencent takes a face level, not a number of faces.")
        if not tencent and data.get("face_level"):
            self.add_error("face_level", "Tripo takes a number of faces, not a level.")
        return data


class TextureForm(FinishForm):
    kind = "texture"
    prompt = forms.CharField(
        label="New texture",
        max_length=MAX_PROMPT_LENGTH,
        widget=forms.TextInput(attrs={"placeholder": "e.g. weathered oak, brass fittings"}),
    )
    texture_quality = forms.ChoiceField(
        label="Quality",
        choices=[("standard", "Standard"), ("detailed", "Detailed")],
        initial="standard",
    )
    pbr = forms.BooleanField(label="PBR materials", required=False, initial=True)

    def price_choices(self, prices):
        extra = prices["texture"]["detailed"] - prices["texture"]["standard"]
        self.fields["texture_quality"].choices = [
            ("standard", "Standard"),
            ("detailed", f"Detailed ({extra:+} credits)"),
        ]

    def clean_prompt(self):
        prompt = self.cleaned_data["prompt"].strip()
        if not prompt:
            raise forms.ValidationError("Describe the new texture.")
        return prompt

    def options(self):
        # A boolean's False is a choice, not an unset value.
        return {**super().options(), "pbr": self.cleaned_data["pbr"]}


class RepairForm(FinishForm):
    kind = "repair"
    quality = forms.ChoiceField(
        choices=[("low", "Low"), ("default", "Default"), ("max", "Max")], initial="default"
    )
    hollow = forms.BooleanField(label="Hollow it", required=False, initial=False)

    def price_choices(self, prices):
        self.fields["hollow"].label = f"Hollow it (+{prices['repair']['hollow']} credits)"

    def options(self):
        return {**super().options(), "hollow": self.cleaned_data["hollow"]}


class OptimizeForm(FinishForm):
    kind = "optimize"
    preset = forms.ChoiceField(
        choices=[("default", "Default"), ("low", "Low (smallest file)")], initial="default"
    )
    max_texture_size = forms.TypedChoiceField(
        label="Largest texture",
        choices=[("", "As it is"), (512, "512 px"), (1024, "1024 px"), (2048, "2048 px")],
        coerce=int,
        empty_value=None,
        required=False,
    )


class RenderForm(FinishForm):
    kind = "render"
    output = forms.ChoiceField(
        label="As",
        choices=[("image", "Images"), ("video", "Turntable video")],
        initial="image",
    )
    angle = forms.ChoiceField(
        choices=[
            ("3/4", "Three-quarter still"),
            ("front", "Front still"),
            ("back", "Back still"),
            ("left", "Left still"),
            ("right", "Right still"),
            ("top", "Top still"),
            ("isometric", "Isometric still"),
            ("turntable_4", "Turntable, 4 frames"),
            ("turntable_8", "Turntable, 8 frames"),
            ("turntable_12", "Turntable, 12 frames"),
        ],
        initial="3/4",
    )
    resolution = forms.TypedChoiceField(
        choices=[(512, "512 px"), (1024, "1024 px"), (2048, "2048 px")], coerce=int, initial=1024
    )

    def clean(self):
        data = super().clean()
        if data.get("output") == "video" and not str(data.get("angle", "")).startswith("turn"):
            self.add_error("angle", "An animation is a turntable: choose one of the turntables.")
        return data


FINISH_FORMS = {
    form.kind: form for form in (RemeshForm, TextureForm, RepairForm, OptimizeForm, RenderForm)
}
