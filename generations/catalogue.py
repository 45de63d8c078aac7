"""The provider catalogue: every provider, edition and input mode we offer.

The form, the request builder and the price estimate all read from here, so
nothing about a provider is written twice in the dashboard. (The sandbox keeps
its own reading of the contract on purpose.)
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Option:
    name: str
    label: str
    kind: str  # "bool", "int", "choice", "text"
    default: object = None
    help: str = ""
    choices: tuple = ()
    minimum: int | None = None
    maximum: int | None = None
    # Credits added when the option is on (bool) or set to a choice (choice).
    surcharge: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Provider:
    key: str
    label: str
    endpoint: str
    modes: tuple  # of "text", "image", "multiview"
    base_price: dict  # mode -> credits
    options: tuple = ()
    # Typical upstream duration in seconds, before we have our own history.
    typical_seconds: float = 120.0

    def option(self, name):
        for opt in self.options:
            if opt.name == name:
                return opt
        raise KeyError(name)

    def price(self, mode: str, options: dict) -> tuple[int, list[tuple[str, int]]]:
        """The credit cost and its breakdown: [("base", 35), ("PBR", 20)]."""
        breakdown = [("Base", self.base_price[mode])]
        for opt in self.options:
            value = options.get(opt.name, opt.default)
            if opt.kind == "bool" and value and True in opt.surcharge:
                breakdown.append((opt.label, opt.surcharge[True]))
            elif opt.kind == "choice" and value in opt.surcharge:
                breakdown.append((f"{opt.label}: {value}", opt.surcharge[value]))
        return sum(amount for _, amount in breakdown), breakdown

    def request_body(self, mode: str, prompt: str, options: dict) -> dict:
        body = {}
        if mode == "text":
            body["prompt"] = prompt
        for opt in self.options:
            if opt.name in options:
                body[opt.name] = options[opt.name]
        return body


HUNYUAN_RAPID = Provider(
    key="hunyuan_rapid",
    label="Hunyuan 3D Rapid",
    endpoint="/v1/3d-models/tencent/generate/rapid/",
    modes=("text",),
    base_price={"text": 35, "image": 35},
    options=(
        Option(
            "enable_pbr",
            "PBR materials",
            "bool",
            default=False,
            help="Physically based materials (metal, roughness).",
            surcharge={True: 20},
        ),
    ),
    typical_seconds=150.0,
)

PROVIDERS = {p.key: p for p in (HUNYUAN_RAPID,)}

MAX_PROMPT_LENGTH = 1024


def get_provider(key: str) -> Provider:
    return PROVIDERS[key]
