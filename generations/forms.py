from django import forms

from .catalogue import HUNYUAN_RAPID, MAX_PROMPT_LENGTH


class RapidTextForm(forms.Form):
    """A text prompt for Hunyuan 3D Rapid: the skeleton's one path."""

    provider = HUNYUAN_RAPID

    prompt = forms.CharField(
        max_length=MAX_PROMPT_LENGTH,
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "A red wooden chair with curved legs"}
        ),
        help_text=f"Describe the object. At most {MAX_PROMPT_LENGTH} characters.",
    )
    enable_pbr = forms.BooleanField(
        required=False,
        label="PBR materials",
        help_text="Physically based materials (metalness, roughness). +20 credits.",
    )
    form_token = forms.UUIDField(widget=forms.HiddenInput)

    def options(self):
        return {"enable_pbr": bool(self.cleaned_data.get("enable_pbr"))}

    def price(self):
        return self.provider.price("text", self.options())


class CostForm(forms.Form):
    """The GET parameters of the live cost fragment."""

    enable_pbr = forms.BooleanField(required=False)

    def price(self):
        pbr = bool(self.cleaned_data.get("enable_pbr")) if self.is_valid() else False
        return HUNYUAN_RAPID.price("text", {"enable_pbr": pbr})
