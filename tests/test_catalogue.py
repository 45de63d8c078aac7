"""The provider catalogue, read against the API reference.

Every expected number, body and path below was written by hand from the
contract, never computed by the catalogue: a wrong entry in the catalogue must
fail here. Pure Python: no database, no network.
"""

import pytest

from generations.catalogue import (
    HUNYUAN_RAPID,
    MAX_PROMPT_LENGTH,
    PRICE_SECTIONS,
    PRICE_TABLE,
    PROVIDERS,
    InvalidRequest,
    choices,
    expected_seconds,
    get_provider,
)

FRONT = "data:image/jpeg;base64,RlJPTlQ="
LEFT = "data:image/jpeg;base64,TEVGVA=="
RIGHT = "data:image/jpeg;base64,UklHSFQ="
BACK = "data:image/jpeg;base64,QkFDSw=="
TOP = "data:image/jpeg;base64,VE9Q"
IMAGE = "data:image/png;base64,SU1BR0U="


def names(options):
    return [opt.name for opt in options]


# --- the catalogue's shape ---------------------------------------------------------------


def test_it_lists_every_provider_of_the_contract():
    assert list(PROVIDERS) == ["hunyuan_pro", "hunyuan_rapid", "trellis2", "tripo_v3", "tripo_p1"]
    assert get_provider("hunyuan_rapid") is HUNYUAN_RAPID
    assert HUNYUAN_RAPID.key == "hunyuan_rapid"
    with pytest.raises(KeyError):
        get_provider("meshy")


@pytest.mark.parametrize(
    "key, modes, editions, default_edition",
    [
        ("hunyuan_pro", ("text", "image", "multiview"), ("3.0", "3.1"), "3.1"),
        ("hunyuan_rapid", ("text", "image"), (), None),
        ("trellis2", ("image",), (), None),
        ("tripo_v3", ("text", "image", "multiview"), ("3.0", "3.1"), "3.0"),
        ("tripo_p1", ("text", "image", "multiview"), (), None),
    ],
)
def test_modes_and_editions(key, modes, editions, default_edition):
    provider = get_provider(key)
    assert provider.modes == modes
    assert provider.editions == editions
    assert provider.default_edition == default_edition


def test_choices_for_forms():
    assert choices() == [
        ("hunyuan_pro", "Hunyuan 3D Pro"),
        ("hunyuan_rapid", "Hunyuan 3D Rapid"),
        ("trellis2", "TRELLIS.2"),
        ("tripo_v3", "Tripo"),
        ("tripo_p1", "Tripo P1"),
    ]
    assert choices("hunyuan_pro") == [("3.0", "3.0"), ("3.1", "3.1")]
    assert choices("tripo_v3") == [("3.0", "v3.0"), ("3.1", "v3.1")]
    assert choices("trellis2") == []
    assert get_provider("hunyuan_rapid").mode_choices() == [
        ("text", "Text"),
        ("image", "Single image"),
    ]


def test_the_prompt_limit_is_the_contracts():
    assert MAX_PROMPT_LENGTH == 1024


def test_prices_are_one_table_keyed_by_provider_and_section():
    # The finishing steps' and the image models' prices are sections of the same table.
    assert set(PRICE_TABLE) == set(PROVIDERS) | {"finishing", "images"}
    assert not set(PROVIDERS) & set(PRICE_SECTIONS)


# --- endpoints -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, mode, edition, path",
    [
        ("hunyuan_pro", "text", "3.0", "/v1/3d-models/tencent/generate/pro/"),
        ("hunyuan_pro", "image", "3.1", "/v1/3d-models/tencent/generate/pro/"),
        ("hunyuan_pro", "multiview", None, "/v1/3d-models/tencent/generate/pro/"),
        ("hunyuan_rapid", "text", None, "/v1/3d-models/tencent/generate/rapid/"),
        ("hunyuan_rapid", "image", "", "/v1/3d-models/tencent/generate/rapid/"),
        ("trellis2", "image", None, "/v1/3d-models/trellis2/generate/"),
        ("tripo_v3", "text", "3.0", "/v1/3d-models/tripo/text-to-3d/3.0/"),
        ("tripo_v3", "text", "3.1", "/v1/3d-models/tripo/text-to-3d/3.1/"),
        ("tripo_v3", "image", "3.0", "/v1/3d-models/tripo/image-to-3d/3.0/"),
        ("tripo_v3", "image", "3.1", "/v1/3d-models/tripo/image-to-3d/3.1/"),
        ("tripo_v3", "multiview", "3.0", "/v1/3d-models/tripo/multiview-to-3d/3.0/"),
        ("tripo_v3", "multiview", "3.1", "/v1/3d-models/tripo/multiview-to-3d/3.1/"),
        # Without an edition we still name the version: explicit, and the upstream's own
        # default (3.0) anyway.
        ("tripo_v3", "text", None, "/v1/3d-models/tripo/text-to-3d/3.0/"),
        ("tripo_p1", "text", None, "/v1/3d-models/tripo/text-to-3d/p1/"),
        ("tripo_p1", "image", None, "/v1/3d-models/tripo/image-to-3d/p1/"),
        ("tripo_p1", "multiview", None, "/v1/3d-models/tripo/multiview-to-3d/p1/"),
    ],
)
def test_endpoint_for_each_combination(key, mode, edition, path):
    assert get_provider(key).endpoint_for(mode, edition) == path


def test_the_rapid_endpoint_attribute_is_its_only_path():
    assert HUNYUAN_RAPID.endpoint == "/v1/3d-models/tencent/generate/rapid/"


@pytest.mark.parametrize(
    "key, mode, edition",
    [("trellis2", "text", None), ("hunyuan_rapid", "multiview", None), ("tripo_v3", "text", "4")],
)
def test_endpoint_for_a_combination_that_does_not_exist_is_an_error(key, mode, edition):
    with pytest.raises(ValueError):
        get_provider(key).endpoint_for(mode, edition)


# --- options per combination ------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, mode, edition, expected",
    [
        (
            "hunyuan_pro",
            "text",
            "3.0",
            ["enable_pbr", "face_count", "generate_type", "polygon_type"],
        ),
        (
            "hunyuan_pro",
            "image",
            "3.0",
            ["enable_pbr", "face_count", "generate_type", "polygon_type"],
        ),
        ("hunyuan_pro", "multiview", "3.1", ["enable_pbr", "face_count", "generate_type"]),
        ("hunyuan_rapid", "text", None, ["enable_pbr", "enable_geometry"]),
        ("hunyuan_rapid", "image", None, ["enable_pbr", "enable_geometry"]),
        (
            "trellis2",
            "image",
            None,
            [
                "resolution",
                "steps",
                "textures",
                "texture_size",
                "decimation_target",
                "seed",
                "generate_thumbnail",
            ],
        ),
    ],
)
def test_options_for_hunyuan_and_trellis(key, mode, edition, expected):
    assert sorted(names(get_provider(key).options_for(mode, edition))) == sorted(expected)


TRIPO_SHARED = [
    "texture",
    "pbr",
    "texture_quality",
    "geometry_quality",
    "face_limit",
    "quad",
    "smart_low_poly",
    "generate_parts",
    "export_uv",
    "auto_size",
    "compress",
    "texture_seed",
]
P1_SHARED = [
    "face_limit",
    "texture",
    "pbr",
    "texture_quality",
    "texture_seed",
    "auto_size",
    "export_uv",
    "compress",
]


@pytest.mark.parametrize("edition", ["3.0", "3.1"])
def test_tripo_v3_options_per_mode(edition):
    tripo = get_provider("tripo_v3")
    assert sorted(names(tripo.options_for("text", edition))) == sorted(
        TRIPO_SHARED + ["negative_prompt"]
    )
    assert sorted(names(tripo.options_for("image", edition))) == sorted(
        TRIPO_SHARED + ["texture_alignment", "orientation", "enable_image_autofix"]
    )
    assert sorted(names(tripo.options_for("multiview", edition))) == sorted(TRIPO_SHARED)


def test_tripo_p1_has_its_reduced_option_set():
    p1 = get_provider("tripo_p1")
    assert sorted(names(p1.options_for("text"))) == sorted(
        P1_SHARED + ["negative_prompt", "image_seed", "model_seed"]
    )
    assert sorted(names(p1.options_for("image"))) == sorted(P1_SHARED)
    assert sorted(names(p1.options_for("multiview"))) == sorted(P1_SHARED)


@pytest.mark.parametrize(
    "key, mode, edition, name, default, minimum, maximum, choices_",
    [
        ("hunyuan_pro", "text", "3.0", "face_count", 500_000, 40_000, 1_500_000, ()),
        ("hunyuan_pro", "text", "3.0", "enable_pbr", False, None, None, ()),
        (
            "hunyuan_pro",
            "image",
            "3.0",
            "generate_type",
            "Normal",
            None,
            None,
            ("Normal", "LowPoly", "Geometry", "Sketch"),
        ),
        (
            "hunyuan_pro",
            "text",
            "3.0",
            "generate_type",
            "Normal",
            None,
            None,
            ("Normal", "LowPoly", "Geometry"),
        ),
        (
            "hunyuan_pro",
            "image",
            "3.1",
            "generate_type",
            "Normal",
            None,
            None,
            ("Normal", "Geometry"),
        ),
        (
            "hunyuan_pro",
            "text",
            "3.0",
            "polygon_type",
            "triangle",
            None,
            None,
            ("triangle", "quadrilateral"),
        ),
        ("trellis2", "image", None, "resolution", "1024", None, None, ("512", "1024", "1536")),
        ("trellis2", "image", None, "steps", 12, 1, 50, ()),
        ("trellis2", "image", None, "textures", False, None, None, ()),
        ("trellis2", "image", None, "texture_size", 2048, None, None, (1024, 2048, 4096)),
        ("trellis2", "image", None, "decimation_target", 1_000_000, 1_000, 16_000_000, ()),
        ("trellis2", "image", None, "seed", None, 0, None, ()),
        ("tripo_v3", "text", "3.0", "texture", True, None, None, ()),
        ("tripo_v3", "text", "3.0", "pbr", True, None, None, ()),
        ("tripo_v3", "text", "3.0", "export_uv", True, None, None, ()),
        ("tripo_v3", "text", "3.1", "face_limit", None, 500, 500_000, ()),
        (
            "tripo_v3",
            "text",
            "3.0",
            "texture_quality",
            "standard",
            None,
            None,
            ("standard", "detailed"),
        ),
        (
            "tripo_v3",
            "text",
            "3.0",
            "geometry_quality",
            "standard",
            None,
            None,
            ("standard", "detailed"),
        ),
        ("tripo_v3", "text", "3.0", "compress", None, None, None, ("geometry",)),
        (
            "tripo_v3",
            "image",
            "3.0",
            "texture_alignment",
            None,
            None,
            None,
            ("original_image", "geometry"),
        ),
        ("tripo_v3", "image", "3.0", "orientation", None, None, None, ("default", "align_image")),
        ("tripo_p1", "text", None, "face_limit", None, 48, 20_000, ()),
    ],
)
def test_option_defaults_ranges_and_choices(
    key, mode, edition, name, default, minimum, maximum, choices_
):
    opt = get_provider(key).option(name, mode, edition)
    assert opt.default == default
    assert opt.minimum == minimum
    assert opt.maximum == maximum
    assert opt.choices == choices_
    assert opt.help


def test_negative_prompt_lengths_differ_between_v3_and_p1():
    assert get_provider("tripo_v3").option("negative_prompt").max_length == 1024
    assert get_provider("tripo_p1").option("negative_prompt").max_length == 255


def test_the_prompt_belongs_on_the_form_for_text_and_pro_sketch_only():
    pro = get_provider("hunyuan_pro")
    assert pro.takes_prompt("text", "3.1")
    assert pro.takes_prompt("image", "3.0")  # Sketch
    assert not pro.takes_prompt("image", "3.1")
    assert not pro.takes_prompt("multiview", "3.0")
    assert not get_provider("trellis2").takes_prompt("image")
    assert not get_provider("tripo_v3").takes_prompt("image", "3.0")
    assert get_provider("tripo_p1").takes_prompt("text")


# --- view slots ------------------------------------------------------------------------------


def test_pro_30_views():
    assert get_provider("hunyuan_pro").views_for("multiview", "3.0") == [
        ("front", "Front", True),
        ("left", "Left", False),
        ("right", "Right", False),
        ("back", "Back", False),
    ]


def test_pro_31_adds_four_views():
    assert get_provider("hunyuan_pro").views_for("multiview", "3.1") == [
        ("front", "Front", True),
        ("left", "Left", False),
        ("right", "Right", False),
        ("back", "Back", False),
        ("top", "Top", False),
        ("bottom", "Bottom", False),
        ("left_front", "Left front", False),
        ("right_front", "Right front", False),
    ]


@pytest.mark.parametrize(
    "key, edition", [("tripo_v3", "3.0"), ("tripo_v3", "3.1"), ("tripo_p1", None)]
)
def test_tripo_views_are_front_left_back_right(key, edition):
    provider = get_provider(key)
    assert provider.views_for("multiview", edition) == [
        ("front", "Front", True),
        ("left", "Left", False),
        ("back", "Back", False),
        ("right", "Right", False),
    ]
    assert provider.view_limits("multiview", edition) == (2, 4)


def test_pro_view_limits():
    pro = get_provider("hunyuan_pro")
    assert pro.view_limits("multiview", "3.0") == (2, 4)
    assert pro.view_limits("multiview", "3.1") == (2, 8)


def test_single_inputs_have_no_view_slots():
    assert get_provider("hunyuan_pro").views_for("image", "3.1") == []
    assert get_provider("trellis2").views_for("image") == []


# --- image rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, flatten",
    [
        ("hunyuan_pro", False),
        ("hunyuan_rapid", False),
        ("trellis2", False),
        ("tripo_v3", True),
        ("tripo_p1", True),
    ],
)
def test_tripo_needs_transparency_flattened(key, flatten):
    rules = get_provider(key).image_rules
    assert rules.flatten_transparency is flatten
    assert rules.formats == ("PNG", "JPEG", "WEBP")
    assert rules.max_bytes == 6 * 1024 * 1024
    assert (rules.min_side, rules.max_side) == (128, 5000)


# --- prices ----------------------------------------------------------------------------------

PRICES = [
    # Hunyuan Pro: 60, +20 with PBR, +20 with multi-view.
    ("hunyuan_pro", "text", "3.0", {}, 60),
    ("hunyuan_pro", "text", "3.1", {}, 60),
    ("hunyuan_pro", "text", "3.0", {"enable_pbr": True}, 80),
    ("hunyuan_pro", "image", "3.0", {}, 60),
    ("hunyuan_pro", "image", "3.1", {"enable_pbr": True}, 80),
    ("hunyuan_pro", "image", "3.0", {"generate_type": "Sketch"}, 60),
    ("hunyuan_pro", "text", "3.0", {"generate_type": "LowPoly", "enable_pbr": True}, 80),
    ("hunyuan_pro", "text", "3.1", {"generate_type": "Geometry"}, 60),
    ("hunyuan_pro", "multiview", "3.0", {}, 80),
    ("hunyuan_pro", "multiview", "3.1", {}, 80),
    ("hunyuan_pro", "multiview", "3.1", {"enable_pbr": True}, 100),
    ("hunyuan_pro", "text", None, {"face_count": 1_500_000}, 60),
    # Hunyuan Rapid: 35, +20 with PBR.
    ("hunyuan_rapid", "text", None, {}, 35),
    ("hunyuan_rapid", "text", None, {"enable_pbr": False}, 35),
    ("hunyuan_rapid", "text", None, {"enable_pbr": True}, 55),
    ("hunyuan_rapid", "image", None, {"enable_pbr": False}, 35),
    ("hunyuan_rapid", "image", None, {"enable_pbr": True}, 55),
    ("hunyuan_rapid", "text", None, {"enable_geometry": True}, 35),
    # TRELLIS.2, geometry only: 15/20/25 for 512/1024/1536.
    ("trellis2", "image", None, {}, 20),
    ("trellis2", "image", None, {"resolution": "512"}, 15),
    ("trellis2", "image", None, {"resolution": "1024"}, 20),
    ("trellis2", "image", None, {"resolution": "1536"}, 25),
    # ...textured with 1024 or 2048 textures (2048 is the default): 25/30/40.
    ("trellis2", "image", None, {"resolution": "512", "textures": True}, 25),
    ("trellis2", "image", None, {"resolution": "1024", "textures": True}, 30),
    ("trellis2", "image", None, {"resolution": "1536", "textures": True}, 40),
    ("trellis2", "image", None, {"resolution": "512", "textures": True, "texture_size": 1024}, 25),
    ("trellis2", "image", None, {"resolution": "1024", "textures": True, "texture_size": 1024}, 30),
    ("trellis2", "image", None, {"resolution": "1536", "textures": True, "texture_size": 1024}, 40),
    ("trellis2", "image", None, {"resolution": "512", "textures": True, "texture_size": 2048}, 25),
    ("trellis2", "image", None, {"resolution": "1024", "textures": True, "texture_size": 2048}, 30),
    ("trellis2", "image", None, {"resolution": "1536", "textures": True, "texture_size": 2048}, 40),
    # ...with 4096 textures: 30/40/55.
    ("trellis2", "image", None, {"resolution": "512", "textures": True, "texture_size": 4096}, 30),
    ("trellis2", "image", None, {"resolution": "1024", "textures": True, "texture_size": 4096}, 40),
    ("trellis2", "image", None, {"resolution": "1536", "textures": True, "texture_size": 4096}, 55),
    # ...thumbnail +2.
    ("trellis2", "image", None, {"resolution": "512", "generate_thumbnail": True}, 17),
    ("trellis2", "image", None, {"generate_thumbnail": True}, 22),
    ("trellis2", "image", None, {"resolution": "1536", "generate_thumbnail": True}, 27),
    ("trellis2", "image", None, {"textures": True, "generate_thumbnail": True}, 32),
    (
        "trellis2",
        "image",
        None,
        {"resolution": "1536", "textures": True, "texture_size": 4096, "generate_thumbnail": True},
        57,
    ),
    # A texture size without textures buys nothing (and validation refuses it).
    ("trellis2", "image", None, {"textures": False, "texture_size": 4096}, 20),
    # Tripo v3: base 20 text, 40 image and multi-view; texture (on by default) +20
    # standard, +40 detailed.
    ("tripo_v3", "text", "3.0", {}, 40),
    ("tripo_v3", "text", "3.1", {}, 40),
    ("tripo_v3", "text", "3.0", {"texture": False}, 20),
    ("tripo_v3", "text", "3.0", {"texture_quality": "standard"}, 40),
    ("tripo_v3", "text", "3.0", {"texture_quality": "detailed"}, 60),
    ("tripo_v3", "text", "3.0", {"texture": False, "texture_quality": "detailed"}, 20),
    ("tripo_v3", "image", "3.0", {}, 60),
    ("tripo_v3", "image", "3.1", {"texture": False}, 40),
    ("tripo_v3", "image", "3.0", {"texture_quality": "detailed"}, 80),
    ("tripo_v3", "multiview", "3.0", {}, 60),
    ("tripo_v3", "multiview", "3.1", {"texture": False}, 40),
    ("tripo_v3", "multiview", "3.0", {"texture_quality": "detailed"}, 80),
    # ...detailed geometry +40, quad +10, smart low-poly +20, parts +40.
    ("tripo_v3", "text", "3.0", {"texture": False, "geometry_quality": "detailed"}, 60),
    ("tripo_v3", "text", "3.0", {"texture": False, "geometry_quality": "standard"}, 20),
    ("tripo_v3", "text", "3.0", {"texture": False, "quad": True}, 30),
    ("tripo_v3", "text", "3.0", {"texture": False, "smart_low_poly": True}, 40),
    ("tripo_v3", "text", "3.0", {"texture": False, "pbr": False, "generate_parts": True}, 60),
    ("tripo_v3", "image", "3.0", {"texture": False, "pbr": False, "generate_parts": True}, 80),
    (
        "tripo_v3",
        "image",
        "3.1",
        {
            "texture_quality": "detailed",
            "geometry_quality": "detailed",
            "quad": True,
            "smart_low_poly": True,
        },
        150,
    ),
    ("tripo_v3", "text", "3.0", {"pbr": False}, 40),
    ("tripo_v3", "text", "3.0", {"face_limit": 1000, "auto_size": True, "export_uv": False}, 40),
    # Tripo P1: text 60, image and multi-view 80; texture +20 standard, +40 detailed.
    ("tripo_p1", "text", None, {}, 80),
    ("tripo_p1", "text", None, {"texture": False}, 60),
    ("tripo_p1", "text", None, {"texture_quality": "detailed"}, 100),
    ("tripo_p1", "image", None, {}, 100),
    ("tripo_p1", "image", None, {"texture": False}, 80),
    ("tripo_p1", "image", None, {"texture_quality": "detailed"}, 120),
    ("tripo_p1", "multiview", None, {}, 100),
    ("tripo_p1", "multiview", None, {"texture": False}, 80),
    ("tripo_p1", "multiview", None, {"texture_quality": "detailed"}, 120),
    # P1 has no quad or detailed geometry: they are ignored by the price (and refused
    # by validation).
    ("tripo_p1", "text", None, {"quad": True, "geometry_quality": "detailed"}, 80),
]


@pytest.mark.parametrize("key, mode, edition, options, total", PRICES)
def test_price(key, mode, edition, options, total):
    got, breakdown = get_provider(key).price(mode, options, edition)
    assert got == total
    assert sum(amount for _, amount in breakdown) == total
    assert breakdown[0][0].startswith("Base")


def test_existing_rapid_rows_keep_their_prices_and_breakdown():
    # Rows saved by the skeleton: provider "hunyuan_rapid", mode "text", no edition.
    assert HUNYUAN_RAPID.price("text", {"enable_pbr": False}) == (35, [("Base", 35)])
    assert HUNYUAN_RAPID.price("text", {"enable_pbr": True}) == (
        55,
        [("Base", 35), ("PBR materials", 20)],
    )


def test_a_checkbox_value_from_a_form_is_priced_as_on():
    assert HUNYUAN_RAPID.price("text", {"enable_pbr": "on"})[0] == 55
    assert HUNYUAN_RAPID.price("text", {"enable_pbr": None})[0] == 35


def test_pro_breakdown():
    assert get_provider("hunyuan_pro").price("multiview", {"enable_pbr": True}, "3.1") == (
        100,
        [("Base", 60), ("PBR materials", 20), ("Multi-view", 20)],
    )


def test_trellis_breakdown_reads_as_base_and_surcharges():
    trellis = get_provider("trellis2")
    options = {"resolution": "1024", "textures": True, "texture_size": 4096}
    assert trellis.price("image", {**options, "generate_thumbnail": True}) == (
        42,
        [("Base 1024", 20), ("Textures 4096", 20), ("Thumbnail", 2)],
    )
    assert trellis.price("image", {"resolution": "1536", "textures": True}) == (
        40,
        [("Base 1536", 25), ("Textures 2048", 15)],
    )
    assert trellis.price("image", {"resolution": "512"}) == (15, [("Base 512", 15)])


def test_trellis_form_strings_are_priced_like_the_typed_values():
    assert get_provider("trellis2").price(
        "image", {"resolution": "1536", "textures": "on", "texture_size": "4096"}
    ) == (55, [("Base 1536", 25), ("Textures 4096", 30)])


def test_tripo_breakdown():
    options = {
        "texture_quality": "detailed",
        "geometry_quality": "detailed",
        "quad": True,
        "smart_low_poly": True,
    }
    assert get_provider("tripo_v3").price("multiview", options, "3.0") == (
        150,
        [
            ("Base", 40),
            ("Texture detailed", 40),
            ("Detailed geometry", 40),
            ("Quad mesh", 10),
            ("Smart low-poly", 20),
        ],
    )
    parts = {"texture": False, "pbr": False, "generate_parts": True}
    assert get_provider("tripo_v3").price("text", parts, "3.1") == (
        60,
        [("Base", 20), ("Parts", 40)],
    )
    assert get_provider("tripo_p1").price("text", {}) == (
        80,
        [("Base", 60), ("Texture standard", 20)],
    )


def test_an_invalid_option_is_priced_at_its_default():
    # The live cost must never fail on a half-typed form.
    assert get_provider("trellis2").price("image", {"resolution": "2048", "steps": "x"})[0] == 20


# --- validation ------------------------------------------------------------------------------

VALID = [
    ("hunyuan_pro", "text", "3.0", "a chair", {}, {}),
    ("hunyuan_pro", "text", None, "a chair", {"enable_pbr": True, "face_count": 40_000}, {}),
    ("hunyuan_pro", "text", "3.1", "a chair", {"face_count": 1_500_000}, {}),
    ("hunyuan_pro", "text", "3.0", "a chair", {"generate_type": "LowPoly"}, {}),
    (
        "hunyuan_pro",
        "text",
        "3.0",
        "a chair",
        {"generate_type": "LowPoly", "polygon_type": "quadrilateral"},
        {},
    ),
    # The default polygon type is harmless without LowPoly (a form always sends it).
    ("hunyuan_pro", "text", "3.0", "a chair", {"polygon_type": "triangle"}, {}),
    ("hunyuan_pro", "text", "3.1", "a chair", {"generate_type": "Geometry"}, {}),
    ("hunyuan_pro", "image", "3.1", "", {}, {"image_count": 1}),
    (
        "hunyuan_pro",
        "image",
        "3.0",
        "a chair, drawn",
        {"generate_type": "Sketch"},
        {"image_count": 1},
    ),
    ("hunyuan_pro", "multiview", "3.0", "", {}, {"views": ["front", "back"]}),
    ("hunyuan_pro", "multiview", "3.0", "", {}, {"views": ["front", "left", "right", "back"]}),
    ("hunyuan_pro", "multiview", "3.1", "", {}, {"views": ["front", "top", "right_front"]}),
    ("hunyuan_rapid", "text", None, "a chair", {"enable_pbr": False}, {}),
    ("hunyuan_rapid", "image", None, "", {"enable_geometry": True}, {"image_count": 1}),
    ("trellis2", "image", None, "", {}, {"image_count": 1}),
    (
        "trellis2",
        "image",
        None,
        "",
        {
            "resolution": "1536",
            "steps": 50,
            "textures": True,
            "texture_size": 4096,
            "decimation_target": 16_000_000,
            "seed": 0,
            "generate_thumbnail": True,
        },
        {"image_count": 1},
    ),
    ("trellis2", "image", None, "", {"steps": 1, "decimation_target": 1_000}, {}),
    # The default texture size is harmless without textures.
    ("trellis2", "image", None, "", {"textures": False, "texture_size": 2048}, {}),
    ("tripo_v3", "text", "3.0", "a chair", {"negative_prompt": "n" * 1024}, {}),
    ("tripo_v3", "text", "3.1", "a chair", {"face_limit": 500, "compress": "geometry"}, {}),
    ("tripo_v3", "text", "3.0", "a chair", {"face_limit": 500_000, "texture_seed": 3}, {}),
    (
        "tripo_v3",
        "image",
        "3.0",
        "",
        {
            "texture_alignment": "geometry",
            "orientation": "align_image",
            "enable_image_autofix": True,
        },
        {"image_count": 1},
    ),
    (
        "tripo_v3",
        "text",
        "3.0",
        "a chair",
        {"texture": False, "pbr": False, "generate_parts": True},
        {},
    ),
    ("tripo_v3", "text", "3.0", "a chair", {"quad": True, "smart_low_poly": True}, {}),
    ("tripo_v3", "multiview", "3.0", "", {}, {"views": ["front", "left"]}),
    ("tripo_v3", "multiview", "3.1", "", {}, {"views": ["front", "left", "back"]}),
    ("tripo_v3", "multiview", "3.0", "", {}, {"views": ["right", "back", "left", "front"]}),
    ("tripo_p1", "text", None, "a chair", {"negative_prompt": "n" * 255, "face_limit": 48}, {}),
    ("tripo_p1", "text", None, "a chair", {"image_seed": 1, "model_seed": 2}, {}),
    ("tripo_p1", "image", None, "", {"face_limit": 20_000}, {"image_count": 1}),
    ("tripo_p1", "multiview", None, "", {}, {"views": ["front", "left", "back", "right"]}),
    ("hunyuan_rapid", "text", None, "p" * 1024, {}, {}),
    # Unset values from a form ("" or None) are not set at all.
    ("tripo_v3", "text", "3.0", "a chair", {"face_limit": "", "compress": None}, {}),
]


@pytest.mark.parametrize("key, mode, edition, prompt, options, images", VALID)
def test_a_valid_request_has_no_errors(key, mode, edition, prompt, options, images):
    assert get_provider(key).validate(mode, edition, prompt, options, **images) == {}


INVALID = [
    # (provider, mode, edition, prompt, options, images, field, words in the message)
    ("trellis2", "text", None, "a chair", {}, {}, "mode", "Text input"),
    ("hunyuan_rapid", "multiview", None, "", {}, {}, "mode", "Multi-view input"),
    ("hunyuan_pro", "text", "2.0", "a chair", {}, {}, "edition", "Edition 2.0"),
    ("tripo_v3", "text", "p1", "a chair", {}, {}, "edition", "Edition p1"),
    ("trellis2", "image", "3.0", "", {}, {}, "edition", "Edition"),
    # Prompts.
    ("hunyuan_rapid", "text", None, "", {}, {}, "prompt", "Prompt is required"),
    ("hunyuan_pro", "text", "3.1", "   ", {}, {}, "prompt", "Prompt is required"),
    ("tripo_v3", "text", "3.0", "p" * 1025, {}, {}, "prompt", "Prompt must be at most 1,024"),
    ("tripo_p1", "text", None, "p" * 1025, {}, {}, "prompt", "Prompt must be at most 1,024"),
    ("trellis2", "image", None, "a chair", {}, {}, "prompt", "Prompt is not used"),
    ("tripo_v3", "multiview", "3.0", "a chair", {}, {}, "prompt", "Prompt is not used"),
    ("hunyuan_pro", "image", "3.1", "a chair", {}, {}, "prompt", "Prompt is not used"),
    # Pro: a prompt goes with an image only for Sketch, and Sketch needs both.
    ("hunyuan_pro", "image", "3.0", "a chair", {}, {}, "prompt", "only when Generation type"),
    (
        "hunyuan_pro",
        "image",
        "3.0",
        "",
        {"generate_type": "Sketch"},
        {},
        "prompt",
        "Prompt is required with Generation type Sketch",
    ),
    (
        "hunyuan_pro",
        "image",
        "3.0",
        "a chair",
        {"generate_type": "Sketch"},
        {"image_count": 0},
        "image",
        "Image is required",
    ),
    (
        "hunyuan_pro",
        "text",
        "3.0",
        "a chair",
        {"generate_type": "Sketch"},
        {},
        "generate_type",
        "Generation type Sketch needs single image input",
    ),
    (
        "hunyuan_pro",
        "multiview",
        "3.0",
        "",
        {"generate_type": "Sketch"},
        {},
        "generate_type",
        "Generation type Sketch needs single image input",
    ),
    # Pro 3.1: no LowPoly, no Sketch, no polygon type.
    (
        "hunyuan_pro",
        "image",
        "3.1",
        "a chair",
        {"generate_type": "Sketch"},
        {},
        "generate_type",
        "Generation type Sketch is not available on Hunyuan 3D Pro 3.1",
    ),
    (
        "hunyuan_pro",
        "text",
        "3.1",
        "a chair",
        {"generate_type": "LowPoly"},
        {},
        "generate_type",
        "Generation type LowPoly is not available on Hunyuan 3D Pro 3.1",
    ),
    (
        "hunyuan_pro",
        "text",
        "3.1",
        "a chair",
        {"polygon_type": "quadrilateral"},
        {},
        "polygon_type",
        "Polygon type is not available on Hunyuan 3D Pro 3.1",
    ),
    (
        "hunyuan_pro",
        "text",
        "3.0",
        "a chair",
        {"generate_type": "Fancy"},
        {},
        "generate_type",
        "Generation type must be one of Normal, LowPoly, Geometry",
    ),
    # polygon_type only with LowPoly.
    (
        "hunyuan_pro",
        "text",
        "3.0",
        "a chair",
        {"polygon_type": "quadrilateral"},
        {},
        "polygon_type",
        "Polygon type can only be set when Generation type is LowPoly",
    ),
    (
        "hunyuan_pro",
        "text",
        "3.0",
        "a chair",
        {"generate_type": "Geometry", "polygon_type": "quadrilateral"},
        {},
        "polygon_type",
        "Polygon type can only be set when Generation type is LowPoly",
    ),
    (
        "hunyuan_pro",
        "text",
        "3.0",
        "a chair",
        {"generate_type": "LowPoly", "polygon_type": "hexagon"},
        {},
        "polygon_type",
        "Polygon type must be one of triangle, quadrilateral",
    ),
    # Ranges and types.
    (
        "hunyuan_pro",
        "text",
        "3.0",
        "a chair",
        {"face_count": 39_999},
        {},
        "face_count",
        "Face count must be between 40,000 and 1,500,000.",
    ),
    (
        "hunyuan_pro",
        "text",
        "3.1",
        "a chair",
        {"face_count": 1_500_001},
        {},
        "face_count",
        "Face count must be between 40,000 and 1,500,000.",
    ),
    (
        "hunyuan_pro",
        "text",
        "3.0",
        "a chair",
        {"face_count": "many"},
        {},
        "face_count",
        "Face count must be a whole number",
    ),
    (
        "hunyuan_pro",
        "text",
        "3.0",
        "a chair",
        {"face_count": True},
        {},
        "face_count",
        "Face count must be a whole number",
    ),
    (
        "hunyuan_rapid",
        "text",
        None,
        "a chair",
        {"enable_pbr": "maybe"},
        {},
        "enable_pbr",
        "PBR materials must be yes or no",
    ),
    (
        "hunyuan_rapid",
        "text",
        None,
        "a chair",
        {"face_count": 50_000},
        {},
        "face_count",
        "Face count is not available on Hunyuan 3D Rapid",
    ),
    ("trellis2", "image", None, "", {"steps": 0}, {}, "steps", "Steps must be between 1 and 50."),
    ("trellis2", "image", None, "", {"steps": 51}, {}, "steps", "Steps must be between 1 and 50."),
    (
        "trellis2",
        "image",
        None,
        "",
        {"decimation_target": 999},
        {},
        "decimation_target",
        "Decimation target must be between 1,000 and 16,000,000.",
    ),
    (
        "trellis2",
        "image",
        None,
        "",
        {"decimation_target": 16_000_001},
        {},
        "decimation_target",
        "Decimation target must be between 1,000 and 16,000,000.",
    ),
    ("trellis2", "image", None, "", {"seed": -1}, {}, "seed", "Seed must be at least 0."),
    (
        "trellis2",
        "image",
        None,
        "",
        {"resolution": "2048"},
        {},
        "resolution",
        "Resolution must be one of 512, 1024, 1536",
    ),
    (
        "trellis2",
        "image",
        None,
        "",
        {"textures": True, "texture_size": 512},
        {},
        "texture_size",
        "Texture size must be one of 1024, 2048, 4096",
    ),
    # texture_size only with textures.
    (
        "trellis2",
        "image",
        None,
        "",
        {"texture_size": 4096},
        {},
        "texture_size",
        "Texture size can only be set when Textures is on",
    ),
    (
        "trellis2",
        "image",
        None,
        "",
        {"textures": False, "texture_size": 1024},
        {},
        "texture_size",
        "Texture size can only be set when Textures is on",
    ),
    # Tripo ranges.
    (
        "tripo_v3",
        "text",
        "3.0",
        "a chair",
        {"face_limit": 499},
        {},
        "face_limit",
        "Face limit must be between 500 and 500,000.",
    ),
    (
        "tripo_v3",
        "text",
        "3.1",
        "a chair",
        {"face_limit": 500_001},
        {},
        "face_limit",
        "Face limit must be between 500 and 500,000.",
    ),
    (
        "tripo_p1",
        "text",
        None,
        "a chair",
        {"face_limit": 47},
        {},
        "face_limit",
        "Face limit must be between 48 and 20,000.",
    ),
    (
        "tripo_p1",
        "image",
        None,
        "",
        {"face_limit": 20_001},
        {},
        "face_limit",
        "Face limit must be between 48 and 20,000.",
    ),
    (
        "tripo_v3",
        "text",
        "3.0",
        "a chair",
        {"texture_quality": "ultra"},
        {},
        "texture_quality",
        "Texture quality must be one of standard, detailed",
    ),
    (
        "tripo_v3",
        "text",
        "3.0",
        "a chair",
        {"compress": "meshopt"},
        {},
        "compress",
        "Compression must be one of geometry",
    ),
    (
        "tripo_v3",
        "image",
        "3.0",
        "",
        {"orientation": "sideways"},
        {},
        "orientation",
        "Orientation must be one of default, align_image",
    ),
    (
        "tripo_v3",
        "image",
        "3.0",
        "",
        {"texture_alignment": "uv"},
        {},
        "texture_alignment",
        "Texture alignment must be one of original_image, geometry",
    ),
    # Negative prompt lengths, and only for text.
    (
        "tripo_v3",
        "text",
        "3.0",
        "a chair",
        {"negative_prompt": "n" * 1025},
        {},
        "negative_prompt",
        "Negative prompt must be at most 1,024 characters.",
    ),
    (
        "tripo_p1",
        "text",
        None,
        "a chair",
        {"negative_prompt": "n" * 256},
        {},
        "negative_prompt",
        "Negative prompt must be at most 255 characters.",
    ),
    (
        "tripo_v3",
        "image",
        "3.0",
        "",
        {"negative_prompt": "blurry"},
        {},
        "negative_prompt",
        "Negative prompt is only for text input",
    ),
    (
        "tripo_v3",
        "text",
        "3.0",
        "a chair",
        {"orientation": "align_image"},
        {},
        "orientation",
        "Orientation is only for single image input",
    ),
    (
        "tripo_p1",
        "image",
        None,
        "",
        {"model_seed": 4},
        {},
        "model_seed",
        "Model seed is only for text input",
    ),
    # Parts need texture and PBR off, and exclude quads.
    (
        "tripo_v3",
        "text",
        "3.0",
        "a chair",
        {"generate_parts": True},
        {},
        "generate_parts",
        "Generate parts needs Texture and PBR turned off",
    ),
    (
        "tripo_v3",
        "text",
        "3.0",
        "a chair",
        {"generate_parts": True, "texture": False},
        {},
        "generate_parts",
        "Generate parts needs Texture and PBR turned off",
    ),
    (
        "tripo_v3",
        "text",
        "3.1",
        "a chair",
        {"generate_parts": True, "pbr": False},
        {},
        "generate_parts",
        "Generate parts needs Texture and PBR turned off",
    ),
    (
        "tripo_v3",
        "text",
        "3.0",
        "a chair",
        {"generate_parts": True, "texture": False, "pbr": False, "quad": True},
        {},
        "quad",
        "Quad mesh cannot be combined with Generate parts",
    ),
    # P1 forbids what it does not have.
    (
        "tripo_p1",
        "text",
        None,
        "a chair",
        {"geometry_quality": "detailed"},
        {},
        "geometry_quality",
        "Geometry quality is not available on Tripo P1",
    ),
    ("tripo_p1", "text", None, "a chair", {"quad": True}, {}, "quad", "Quad mesh is not available"),
    (
        "tripo_p1",
        "image",
        None,
        "",
        {"smart_low_poly": False},
        {},
        "smart_low_poly",
        "Smart low-poly is not available on Tripo P1",
    ),
    (
        "tripo_p1",
        "multiview",
        None,
        "",
        {"generate_parts": True},
        {},
        "generate_parts",
        "Generate parts is not available on Tripo P1",
    ),
    (
        "tripo_p1",
        "image",
        None,
        "",
        {"texture_alignment": "geometry"},
        {},
        "texture_alignment",
        "Texture alignment is not available on Tripo P1",
    ),
    # Images.
    ("trellis2", "image", None, "", {}, {"image_count": 0}, "image", "Image is required"),
    (
        "trellis2",
        "image",
        None,
        "",
        {},
        {"image_count": 2},
        "image",
        "Image input takes exactly one",
    ),
    (
        "hunyuan_rapid",
        "text",
        None,
        "a chair",
        {},
        {"image_count": 1},
        "image",
        "Image is not used",
    ),
    # Views.
    ("hunyuan_pro", "multiview", "3.0", "", {}, {"views": ["left", "back"]}, "views", "front view"),
    ("hunyuan_pro", "multiview", "3.0", "", {}, {"views": ["front"]}, "views", "2 to 4 views"),
    ("hunyuan_pro", "multiview", "3.1", "", {}, {"views": []}, "views", "front view"),
    (
        "hunyuan_pro",
        "multiview",
        "3.0",
        "",
        {},
        {"views": ["front", "top"]},
        "views",
        "View top is not available on Hunyuan 3D Pro 3.0",
    ),
    (
        "hunyuan_pro",
        "multiview",
        "3.0",
        "",
        {},
        {"views": ["front", "left_front"]},
        "views",
        "View left_front is not available",
    ),
    (
        "hunyuan_pro",
        "multiview",
        "3.1",
        "",
        {},
        {"views": ["front", "left", "left"]},
        "views",
        "left was given twice",
    ),
    ("tripo_v3", "multiview", "3.0", "", {}, {"views": ["front"]}, "views", "2 to 4 views"),
    ("tripo_p1", "multiview", None, "", {}, {"views": ["left", "back"]}, "views", "front view"),
    (
        "tripo_v3",
        "multiview",
        "3.1",
        "",
        {},
        {"views": ["front", "top"]},
        "views",
        "View top is not available",
    ),
    # Tripo reads its images by position: a gap would turn the back view into the left one.
    (
        "tripo_v3",
        "multiview",
        "3.0",
        "",
        {},
        {"views": ["front", "back"]},
        "views",
        "views by position",
    ),
    (
        "tripo_p1",
        "multiview",
        None,
        "",
        {},
        {"views": ["front", "left", "right"]},
        "views",
        "views by position",
    ),
]


@pytest.mark.parametrize("key, mode, edition, prompt, options, images, field, words", INVALID)
def test_an_invalid_request_names_the_field(
    key, mode, edition, prompt, options, images, field, words
):
    errors = get_provider(key).validate(mode, edition, prompt, options, **images)
    assert field in errors, errors
    assert words in errors[field]


def test_validation_collects_every_error_at_once():
    errors = get_provider("hunyuan_pro").validate(
        "text", "3.1", "", {"face_count": 10, "generate_type": "LowPoly"}
    )
    assert set(errors) == {"prompt", "face_count", "generate_type"}


def test_an_unknown_option_is_refused():
    errors = get_provider("trellis2").validate("image", None, "", {"colour": "red"})
    assert errors == {"colour": "colour is not available on TRELLIS.2."}


def test_image_checks_are_skipped_when_no_images_are_given():
    # The live cost validates options alone.
    assert get_provider("tripo_v3").validate("multiview", "3.0", "", {}) == {}
    assert get_provider("trellis2").validate("image", None, "", {}) == {}


def test_clean_options_types_form_values():
    trellis = get_provider("trellis2")
    raw = {"resolution": 512, "textures": "on", "texture_size": "4096", "steps": "20", "seed": ""}
    assert trellis.clean_options("image", None, raw) == {
        "resolution": "512",
        "textures": True,
        "texture_size": 4096,
        "steps": 20,
    }


# --- request bodies --------------------------------------------------------------------------

BODIES = [
    # Hunyuan Pro: `model` is the edition; unset options are left to the upstream.
    ("hunyuan_pro", "text", "3.0", "a chair", {}, None, {"model": "3.0", "prompt": "a chair"}),
    (
        "hunyuan_pro",
        "text",
        "3.1",
        "a chair",
        {"enable_pbr": True, "face_count": 100_000, "generate_type": "Geometry"},
        None,
        {
            "model": "3.1",
            "prompt": "a chair",
            "enable_pbr": True,
            "face_count": 100_000,
            "generate_type": "Geometry",
        },
    ),
    ("hunyuan_pro", "text", None, "a chair", {}, None, {"model": "3.1", "prompt": "a chair"}),
    (
        "hunyuan_pro",
        "text",
        "3.0",
        "a chair",
        {"generate_type": "LowPoly", "polygon_type": "quadrilateral"},
        None,
        {
            "model": "3.0",
            "prompt": "a chair",
            "generate_type": "LowPoly",
            "polygon_type": "quadrilateral",
        },
    ),
    # A polygon type without LowPoly is not sent.
    (
        "hunyuan_pro",
        "text",
        "3.0",
        "a chair",
        {"generate_type": "Normal", "polygon_type": "triangle"},
        None,
        {"model": "3.0", "prompt": "a chair", "generate_type": "Normal"},
    ),
    (
        "hunyuan_pro",
        "image",
        "3.0",
        "",
        {"enable_pbr": False},
        [("image", IMAGE)],
        {"model": "3.0", "image": IMAGE, "enable_pbr": False},
    ),
    ("hunyuan_pro", "image", "3.1", "", {}, [("image", IMAGE)], {"model": "3.1", "image": IMAGE}),
    (
        "hunyuan_pro",
        "image",
        "3.0",
        "a chair",
        {"generate_type": "Sketch"},
        [("image", IMAGE)],
        {"model": "3.0", "prompt": "a chair", "image": IMAGE, "generate_type": "Sketch"},
    ),
    (
        "hunyuan_pro",
        "multiview",
        "3.0",
        "",
        {},
        [("back", BACK), ("front", FRONT), ("left", LEFT), ("right", RIGHT)],
        {
            "model": "3.0",
            "multi_view_images": [
                {"view_type": "front", "view_image": FRONT},
                {"view_type": "left", "view_image": LEFT},
                {"view_type": "right", "view_image": RIGHT},
                {"view_type": "back", "view_image": BACK},
            ],
        },
    ),
    (
        "hunyuan_pro",
        "multiview",
        "3.1",
        "",
        {"enable_pbr": True},
        [("top", TOP), ("front", FRONT)],
        {
            "model": "3.1",
            "multi_view_images": [
                {"view_type": "front", "view_image": FRONT},
                {"view_type": "top", "view_image": TOP},
            ],
            "enable_pbr": True,
        },
    ),
    # Hunyuan Rapid: the PBR default is undocumented and priced, so it is always sent.
    (
        "hunyuan_rapid",
        "text",
        None,
        "a chair",
        {},
        None,
        {"prompt": "a chair", "enable_pbr": False},
    ),
    (
        "hunyuan_rapid",
        "text",
        None,
        "a chair",
        {"enable_pbr": True, "enable_geometry": False},
        None,
        {"prompt": "a chair", "enable_pbr": True, "enable_geometry": False},
    ),
    (
        "hunyuan_rapid",
        "image",
        None,
        "",
        {"enable_geometry": True},
        [("image", IMAGE)],
        {"image": IMAGE, "enable_pbr": False, "enable_geometry": True},
    ),
    # TRELLIS.2: the thumbnail default is undocumented and priced, so it is always sent.
    (
        "trellis2",
        "image",
        None,
        "",
        {},
        [("image", IMAGE)],
        {"image": IMAGE, "generate_thumbnail": False},
    ),
    (
        "trellis2",
        "image",
        None,
        "",
        {
            "resolution": "1536",
            "steps": 20,
            "textures": True,
            "texture_size": 4096,
            "decimation_target": 200_000,
            "seed": 7,
            "generate_thumbnail": True,
        },
        [("image", IMAGE)],
        {
            "image": IMAGE,
            "resolution": "1536",
            "steps": 20,
            "textures": True,
            "texture_size": 4096,
            "decimation_target": 200_000,
            "seed": 7,
            "generate_thumbnail": True,
        },
    ),
    # The resolution is a string upstream even when the form gives a number.
    (
        "trellis2",
        "image",
        None,
        "",
        {"resolution": 512, "textures": False, "texture_size": 2048},
        [("image", IMAGE)],
        {"image": IMAGE, "resolution": "512", "textures": False, "generate_thumbnail": False},
    ),
    # Tripo v3: the version is in the path, never in the body.
    (
        "tripo_v3",
        "text",
        "3.0",
        "a chair",
        {},
        None,
        {
            "prompt": "a chair",
            "texture_quality": "standard",
            "geometry_quality": "standard",
            "quad": False,
            "smart_low_poly": False,
            "generate_parts": False,
        },
    ),
    (
        "tripo_v3",
        "text",
        "3.1",
        "a chair",
        {
            "negative_prompt": "blurry",
            "texture": False,
            "pbr": False,
            "generate_parts": True,
            "face_limit": 10_000,
            "export_uv": False,
            "auto_size": True,
            "compress": "geometry",
            "texture_seed": 9,
        },
        None,
        {
            "prompt": "a chair",
            "negative_prompt": "blurry",
            "face_limit": 10_000,
            "texture": False,
            "pbr": False,
            "texture_quality": "standard",
            "texture_seed": 9,
            "geometry_quality": "standard",
            "quad": False,
            "smart_low_poly": False,
            "generate_parts": True,
            "export_uv": False,
            "auto_size": True,
            "compress": "geometry",
        },
    ),
    (
        "tripo_v3",
        "image",
        "3.0",
        "",
        {
            "texture_alignment": "geometry",
            "orientation": "align_image",
            "enable_image_autofix": True,
            "texture_quality": "detailed",
            "geometry_quality": "detailed",
            "quad": True,
            "smart_low_poly": True,
        },
        [("image", IMAGE)],
        {
            "image": IMAGE,
            "texture_alignment": "geometry",
            "orientation": "align_image",
            "enable_image_autofix": True,
            "texture_quality": "detailed",
            "geometry_quality": "detailed",
            "quad": True,
            "smart_low_poly": True,
            "generate_parts": False,
        },
    ),
    (
        "tripo_v3",
        "multiview",
        "3.1",
        "",
        {},
        [("right", RIGHT), ("back", BACK), ("front", FRONT), ("left", LEFT)],
        {
            "images": [{"image": FRONT}, {"image": LEFT}, {"image": BACK}, {"image": RIGHT}],
            "texture_quality": "standard",
            "geometry_quality": "standard",
            "quad": False,
            "smart_low_poly": False,
            "generate_parts": False,
        },
    ),
    (
        "tripo_v3",
        "multiview",
        "3.0",
        "",
        {"texture": False},
        [("left", LEFT), ("front", FRONT)],
        {
            "images": [{"image": FRONT}, {"image": LEFT}],
            "texture": False,
            "texture_quality": "standard",
            "geometry_quality": "standard",
            "quad": False,
            "smart_low_poly": False,
            "generate_parts": False,
        },
    ),
    # Tripo P1.
    (
        "tripo_p1",
        "text",
        None,
        "a chair",
        {},
        None,
        {"prompt": "a chair", "texture_quality": "standard"},
    ),
    (
        "tripo_p1",
        "text",
        None,
        "a chair",
        {
            "negative_prompt": "blurry",
            "image_seed": 1,
            "model_seed": 2,
            "face_limit": 5_000,
            "texture_quality": "detailed",
            "compress": "geometry",
        },
        None,
        {
            "prompt": "a chair",
            "negative_prompt": "blurry",
            "image_seed": 1,
            "model_seed": 2,
            "face_limit": 5_000,
            "texture_quality": "detailed",
            "compress": "geometry",
        },
    ),
    (
        "tripo_p1",
        "image",
        None,
        "",
        {"texture": False},
        [("image", IMAGE)],
        {"image": IMAGE, "texture": False, "texture_quality": "standard"},
    ),
    (
        "tripo_p1",
        "multiview",
        None,
        "",
        {},
        [("back", BACK), ("left", LEFT), ("front", FRONT)],
        {
            "images": [{"image": FRONT}, {"image": LEFT}, {"image": BACK}],
            "texture_quality": "standard",
        },
    ),
]


@pytest.mark.parametrize("key, mode, edition, prompt, options, images, body", BODIES)
def test_request_body(key, mode, edition, prompt, options, images, body):
    assert get_provider(key).request_body(mode, prompt, options, edition, images) == body


def test_the_skeleton_call_still_builds_the_rapid_body():
    # tasks.py calls request_body(mode, prompt, options) for rows saved by the skeleton.
    assert HUNYUAN_RAPID.request_body("text", "a red chair", {"enable_pbr": True}) == {
        "prompt": "a red chair",
        "enable_pbr": True,
    }


@pytest.mark.parametrize(
    "key, mode, edition, prompt, options, images, field",
    [
        (
            "tripo_v3",
            "text",
            "3.0",
            "a chair",
            {"quad": True, "generate_parts": True},
            None,
            "quad",
        ),
        ("trellis2", "image", None, "", {"texture_size": 4096}, [("image", IMAGE)], "texture_size"),
        ("trellis2", "image", None, "", {}, None, "image"),
        ("hunyuan_pro", "multiview", "3.0", "", {}, [("left", LEFT), ("back", BACK)], "views"),
        ("tripo_p1", "text", None, "a chair", {"quad": False}, None, "quad"),
        ("hunyuan_rapid", "text", None, "", {}, None, "prompt"),
    ],
)
def test_no_body_is_built_for_a_request_the_upstream_would_refuse(
    key, mode, edition, prompt, options, images, field
):
    with pytest.raises(InvalidRequest) as caught:
        get_provider(key).request_body(mode, prompt, options, edition, images)
    assert field in caught.value.errors


# --- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, options, seconds",
    [
        ("hunyuan_rapid", {}, 150),
        ("hunyuan_pro", {"enable_pbr": True}, 270),
        ("trellis2", {}, 60),
        ("trellis2", {"textures": False}, 60),
        ("trellis2", {"textures": True}, 120),
        ("trellis2", {"textures": "on"}, 120),
        ("tripo_v3", {}, 100),
        ("tripo_p1", {}, 100),
    ],
)
def test_expected_seconds(key, options, seconds):
    assert expected_seconds(key, options) == seconds
    assert expected_seconds(get_provider(key), options) == seconds


def test_typical_seconds_stays_for_the_planner():
    assert HUNYUAN_RAPID.typical_seconds == 150
