"""Request encoding as the upstream's framework (Django REST Framework) reads it.

Bodies: JSON (an object), `application/x-www-form-urlencoded` and
`multipart/form-data` are parsed on every endpoint; anything else is a 415, as DRF
answers. Form values are text, so the same coercion rules serve every encoding.

Field readers follow DRF's default fields ("Request encoding" in the API reference):
  booleans  true/false, 1/0, or the words true false 1 0 yes no on off t f y n in
            lower, Title or UPPER case
  integers  a whole number or its text ("12", "12.0"); not 12.5, not a boolean
  numbers   a number or its text; not a boolean
  strings   a number is read as its text; a boolean, list or object is refused;
            surrounding whitespace is trimmed (CharField's trim_whitespace)
  choices   str(value) must match a choice exactly (case included)
  null      refused (no documented field allows it)
Unknown fields are never read, so they are ignored.

Form bodies follow DRF's HTML-input rules: an empty value of an optional field is
as if it were omitted, and an omitted boolean reads as false, not as its default
("DRF may read an omitted form boolean as false"; Reading: the sandbox always
does, so a client that leaves a default-true boolean out of a multipart body
finds out here).
"""

import re
import urllib.parse
from dataclasses import dataclass

TRUE_WORDS = {"true", "True", "TRUE", "t", "T", "yes", "Yes", "YES", "y", "Y", "on", "On", "ON"}
TRUE_WORDS |= {"1"}
FALSE_WORDS = {"false", "False", "FALSE", "f", "F", "no", "No", "NO", "n", "N", "off", "Off"}
FALSE_WORDS |= {"OFF", "0"}
# DRF's IntegerField strips a decimal point followed only by zeros ("12.0" -> "12").
_WHOLE_DECIMAL = re.compile(r"\.0*\s*$")


class ValidationFailed(Exception):
    def __init__(self, field_name, message):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message

    @property
    def detail(self):
        return f"{self.field}: {self.message}"


class UnsupportedMediaType(Exception):
    pass


@dataclass
class Upload:
    """One file part of a multipart body."""

    filename: str
    content_type: str
    data: bytes

    @property
    def ext(self):
        name = self.filename.lower()
        return name.rsplit(".", 1)[-1] if "." in name else ""


class FormData(dict):
    """A parsed form: each name maps to its last value (text or Upload), like QueryDict."""

    def __init__(self, pairs=()):
        super().__init__()
        self.lists = {}
        for name, value in pairs:
            self.lists.setdefault(name, []).append(value)
            self[name] = value

    def getlist(self, name):
        return list(self.lists.get(name, []))


def parse_body(content_type_header, raw):
    """The request body as a dict (JSON object or FormData). Raises ValidationFailed for a
    body that does not parse and UnsupportedMediaType for any other encoding."""
    import json

    media, params = _media_type(content_type_header)
    if not raw:
        return FormData() if media in FORM_TYPES else {}
    if media == "application/json":
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValidationFailed("body", f"JSON parse error - {exc}") from None
        if not isinstance(body, dict):
            name = type(body).__name__
            raise ValidationFailed(
                "non_field_errors", f"Invalid data. Expected a dictionary, but got {name}."
            )
        return body
    if media == "application/x-www-form-urlencoded":
        try:
            text = raw.decode(params.get("charset", "utf-8"))
        except (UnicodeDecodeError, LookupError):
            raise ValidationFailed("body", "Form parse error - not valid text.") from None
        return FormData(urllib.parse.parse_qsl(text, keep_blank_values=True))
    if media == "multipart/form-data":
        boundary = params.get("boundary")
        if not boundary:
            raise ValidationFailed("body", "Multipart form parse error - Invalid boundary.")
        return FormData(_multipart(raw, boundary.encode("latin-1")))
    raise UnsupportedMediaType(media)


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _media_type(header):
    pieces = (header or "").split(";")
    media = pieces[0].strip().lower()
    params = {}
    for piece in pieces[1:]:
        name, _, value = piece.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    return media, params


def _multipart(raw, boundary):
    """Split a multipart body exactly (binary parts stay byte for byte)."""
    delimiter = b"\r\n--" + boundary
    pieces = (b"\r\n" + raw).split(delimiter)
    if len(pieces) < 2 or not pieces[-1].startswith(b"--"):
        raise ValidationFailed("body", "Multipart form parse error - the body is incomplete.")
    pairs = []
    for piece in pieces[1:-1]:
        head, sep, content = piece.partition(b"\r\n\r\n")
        if not sep:
            raise ValidationFailed("body", "Multipart form parse error - a part has no headers.")
        headers = {}
        for line in head.split(b"\r\n"):
            name, _, value = line.decode("utf-8", "replace").partition(":")
            if name.strip():
                headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = _param(disposition, "name")
        if name is None:
            continue
        filename = _param(disposition, "filename")
        if filename is not None:
            content_type = headers.get("content-type", "application/octet-stream")
            pairs.append((name, Upload(filename, content_type, content)))
        else:
            pairs.append((name, content.decode("utf-8", "replace")))
    return pairs


def _param(disposition, key):
    match = re.search(rf';\s*{key}="([^"]*)"|;\s*{key}=([^;\s]+)', disposition)
    if not match:
        return None
    return match.group(1) if match.group(1) is not None else match.group(2)


# --- field readers -------------------------------------------------------------------------


def is_form(body):
    return isinstance(body, FormData)


def present(body, name):
    if name not in body:
        return False
    value = body[name]
    if value is None:
        raise ValidationFailed(name, "This field may not be null.")
    # HTML input: an empty optional value is "not given".
    return not (is_form(body) and value == "")


def _scalar_text(name, value):
    if isinstance(value, Upload):
        raise ValidationFailed(name, "Expected text, got a file.")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValidationFailed(name, "Not a valid string.")
    return str(value)


def read_bool(body, name, default):
    if not present(body, name):
        # DRF reads an omitted form boolean as false (see the module docstring).
        return False if is_form(body) else default
    value = body[name]
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value in TRUE_WORDS:
        return True
    if isinstance(value, str) and value in FALSE_WORDS:
        return False
    raise ValidationFailed(name, "Must be a valid boolean.")


def _as_int(value):
    return int(_WHOLE_DECIMAL.sub("", str(value)))


def _as_float(value):
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError("not finite")
    return number


def _numeric(body, name, convert, message):
    """A number or its text, converted; a boolean, list, object or file is refused."""
    value = body[name]
    try:
        if isinstance(value, (bool, Upload)) or not isinstance(value, (str, int, float)):
            raise ValueError(type(value).__name__)
        return convert(value)
    except (ValueError, OverflowError):
        raise ValidationFailed(name, message) from None


def read_int(body, name, default, lo=None, hi=None):
    if not present(body, name):
        return default
    number = _numeric(body, name, _as_int, "A valid integer is required.")
    return _in_range(name, number, lo, hi)


def read_number(body, name, default, lo=None, hi=None, *, positive=False):
    if not present(body, name):
        return default
    number = _numeric(body, name, _as_float, "A valid number is required.")
    if positive and number <= 0:
        raise ValidationFailed(name, "Ensure this value is greater than 0.")
    return _in_range(name, number, lo, hi)


def _in_range(name, number, lo, hi):
    if lo is not None and number < lo:
        raise ValidationFailed(name, f"Ensure this value is greater than or equal to {lo}.")
    if hi is not None and number > hi:
        raise ValidationFailed(name, f"Ensure this value is less than or equal to {hi}.")
    return number


def read_choice(body, name, default, choices):
    """`choices` may hold strings or integers; the value matches by its text, as in DRF's
    ChoiceField, and the choice itself is returned."""
    if not present(body, name):
        return default
    text = _scalar_text(name, body[name])
    by_text = {str(c): c for c in choices}
    if text not in by_text:
        allowed = ", ".join(f'"{c}"' for c in by_text)
        raise ValidationFailed(name, f'"{text}" is not a valid choice (one of {allowed}).')
    return by_text[text]


def read_text(body, name, max_len, required=False):
    if not present(body, name):
        if required:
            raise ValidationFailed(name, "This field is required.")
        return None
    text = _scalar_text(name, body[name]).strip()
    if not text:
        raise ValidationFailed(name, "This field may not be blank.")
    if len(text) > max_len:
        raise ValidationFailed(name, f"Ensure this field has no more than {max_len} characters.")
    return text


def read_list(body, name):
    """A list field: a JSON list, or every value of a repeated form field."""
    if is_form(body):
        values = [v for v in body.getlist(name) if v != ""]
        return values if values else None
    if not present(body, name):
        return None
    value = body[name]
    if not isinstance(value, list):
        raise ValidationFailed(
            name, f'Expected a list of items but got type "{type(value).__name__}".'
        )
    return value


def read_file(body, name, max_bytes):
    """An uploaded file, or None when absent. Text where a file belongs is refused."""
    if not present(body, name):
        return None
    value = body[name]
    if not isinstance(value, Upload):
        raise ValidationFailed(
            name, "The submitted data was not a file. Check the encoding type on the form."
        )
    if not value.filename:
        raise ValidationFailed(name, "No filename could be determined.")
    if not value.data:
        raise ValidationFailed(name, "The submitted file is empty.")
    if len(value.data) > max_bytes:
        raise ValidationFailed(name, f"The file is larger than {max_bytes} bytes.")
    return value


def exactly_one(body, names):
    given = [n for n in names if present(body, n)]
    if len(given) != 1:
        listed = " or ".join(f"`{n}`" for n in names)
        where = names[0] if not given else given[1]
        raise ValidationFailed(where, f"Provide exactly one of {listed}.")
    return given[0]


def at_most_one(body, names):
    given = [n for n in names if present(body, n)]
    if len(given) > 1:
        listed = ", ".join(f"`{n}`" for n in names)
        raise ValidationFailed(given[1], f"Provide at most one of {listed}.")
    return given[0] if given else None
