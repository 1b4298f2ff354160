"""Property tests of the mapping engine (hypothesis): total on any JSON; coercion round trips."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import phonenumbers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from careflow.mapping.codes import DEFAULT_REGION, ERROR_CODES
from careflow.mapping.engine import map_payload
from careflow.models import (
    CareFlowDefinition,
    DataPointDefinition,
    DataPointMapping,
    Identifier,
    PatientIdentifierMapping,
    PatientProfileMapping,
    RequestError,
    ValueRange,
    ValueType,
    WebhookFields,
)
from tests.careflow.mapping.factories import map_one, ok

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = ["v", "a", "b", "id", "items", "system", "value", "patient_identifier"]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and ±inf included: map_payload must not raise on them either
    | st.text(max_size=20)
    | st.sampled_from(["42", " -3.5 ", "1e3", "yes", "N", "2023-04-14T09:22:57Z", "2023-04-14"])
    | st.sampled_from(["+33 (261) 910042", "(415) 555-2671", "1684920600", "male", "EN"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)

PATHS = [
    "$.v",
    "$.a.b",
    "$.items[*]",
    "$.items[*].v",
    "$..v",
    "$[0]",
    "$[*].v",
    "$.*",
    "$.items[?(@.system=='urn:x')].value",
    "$.items[?(@.id > 1)].v",
    "$.a[/v]",  # sorting mixed types raises inside jsonpath-ng
    "$.v.`sub(/a/, b)`",  # string function on a non-string raises inside jsonpath-ng
]
DATE_FORMATS = [None, "epoch_s", "epoch_ms", "%d/%m/%Y", "%Y-%m-%d %H:%M:%S%z"]


@st.composite
def configurations(draw: st.DrawFn) -> tuple[WebhookFields, CareFlowDefinition]:
    """A webhook and definition with every value type mapped to arbitrary paths."""
    points = []
    mappings = []
    for value_type in ValueType:
        point_id = f"dp_{value_type.value}"
        points.append(
            DataPointDefinition(
                id=point_id,
                value_type=value_type,
                optional=draw(st.booleans()),
                # Definitions refuse non-finite possible values and range bounds (models.py).
                possible_values=draw(
                    st.none()
                    | st.lists(
                        # Stored models also refuse NUL in any text.
                        json_scalars.filter(
                            lambda v: (
                                (not isinstance(v, float) or math.isfinite(v))
                                and not (isinstance(v, str) and "\x00" in v)
                            )
                        ),
                        max_size=3,
                    )
                ),
                range=draw(
                    st.none()
                    | st.builds(
                        ValueRange,
                        min=st.none() | st.floats(allow_nan=False, allow_infinity=False),
                        max=st.none() | st.floats(allow_nan=False, allow_infinity=False),
                    )
                ),
            )
        )
        mappings.append(
            DataPointMapping(
                data_point_definition_id=point_id,
                path=draw(st.sampled_from(PATHS)),
                date_format=draw(st.sampled_from(DATE_FORMATS)),
            )
        )
    identifier = draw(
        st.none()
        | st.builds(
            PatientIdentifierMapping,
            system_path=st.sampled_from(PATHS),
            value_path=st.sampled_from(PATHS),
        )
        | st.builds(
            PatientIdentifierMapping, system=st.just("urn:x"), value_path=st.sampled_from(PATHS)
        )
    )
    profile = draw(
        st.none()
        | st.builds(
            PatientProfileMapping,
            **{
                field: st.none() | st.sampled_from(PATHS)
                for field in PatientProfileMapping.model_fields
            },
        )
    )
    hook = WebhookFields(
        name="prop",
        care_flow_definition_id="flow",
        data_point_mappings=mappings,
        patient_identifier=identifier,
        patient_profile=profile,
        default_region=draw(st.sampled_from([None, "US", "FR", "AU"])),
    )
    return hook, CareFlowDefinition(id="flow", title="Flow", data_point_definitions=points)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


STORED_CHECKS = {
    ValueType.STRING: lambda v: isinstance(v, str),
    ValueType.NUMBER: lambda v: _is_number(v) and math.isfinite(v),
    ValueType.BOOLEAN: lambda v: isinstance(v, bool),
    ValueType.DATE: lambda v: isinstance(v, str) and (len(v) == 10 or v.endswith("Z")),
    ValueType.TELEPHONE: lambda v: isinstance(v, str) and v.startswith("+") and v[1:].isdigit(),
    ValueType.STRINGS_ARRAY: lambda v: isinstance(v, list) and all(isinstance(e, str) for e in v),
    ValueType.NUMBERS_ARRAY: lambda v: isinstance(v, list) and all(_is_number(e) for e in v),
    ValueType.JSON: lambda v: v is not None,
}


@SETTINGS
@given(configurations(), json_values)
def test_map_payload_is_total_on_any_json(
    config: tuple[WebhookFields, CareFlowDefinition], body: Any
) -> None:
    hook, flow = config
    result = map_payload(hook, flow, body)
    assert all(isinstance(e, RequestError) and e.code in ERROR_CODES for e in result.errors)
    types = {p.id: p.value_type for p in flow.data_point_definitions}
    assert set(result.data_points) <= set(types)
    for point_id, value in result.data_points.items():
        assert STORED_CHECKS[types[point_id]](value), (types[point_id], value)
        assert not any(e.data_point_definition_id == point_id for e in result.errors)
    assert result.patient_identifier is None or isinstance(result.patient_identifier, Identifier)
    json.dumps(result.model_dump(mode="json"), allow_nan=False)  # storable as strict JSON


@SETTINGS
@given(json_values)
def test_body_patient_identifier_field_never_raises(field: Any) -> None:
    result = map_payload(
        WebhookFields(name="p", care_flow_definition_id="flow"),
        CareFlowDefinition(id="flow", title="Flow"),
        {"patient_identifier": field},
    )
    assert all(e.code in ERROR_CODES for e in result.errors)
    if result.patient_identifier is not None:
        assert result.patient_identifier.value == result.patient_identifier.value.strip() != ""


# --- round trips ---------------------------------------------------------------------------------


@SETTINGS
@given(st.integers() | st.floats(allow_nan=False, allow_infinity=False))
def test_json_number_is_itself(number: int | float) -> None:
    stored = ok(number, "number")
    assert stored == number
    assert type(stored) is type(number)


@SETTINGS
@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_integer_text_is_the_integer(number: int) -> None:
    stored = ok(str(number), "number")
    assert stored == number
    assert type(stored) is int


@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_json_float_text_is_the_float(number: float) -> None:
    assert ok(json.dumps(number), "number") == number


@SETTINGS
@given(st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.booleans())
def test_string_of_number_reads_back(value: int | float | bool) -> None:
    text = ok(value, "string")
    assert json.loads(text) == value


REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)


@SETTINGS
@given(
    st.sampled_from(REGIONS),
    st.sampled_from(
        [phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.NATIONAL]
    ),
)
def test_e164_output_reparses_to_itself(region: str, number_format: int) -> None:
    example = phonenumbers.example_number(region)
    if example is None or not phonenumbers.is_valid_number(example):
        return
    written = phonenumbers.format_number(example, number_format)
    national = number_format == phonenumbers.PhoneNumberFormat.NATIONAL
    first = ok(written, "telephone", region=region if national else DEFAULT_REGION)
    assert first == phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    assert ok(first, "telephone") == first
    assert ok(first, "telephone", region="FR") == first  # E.164 does not depend on the region


@SETTINGS
@given(st.text(alphabet="+0123456789 ()-.", max_size=20))
def test_any_valid_telephone_output_is_stable(text: str) -> None:
    result = map_one(text, "telephone")
    if "dp" in result.data_points:
        assert ok(result.data_points["dp"], "telephone") == result.data_points["dp"]
    else:
        assert [e.code for e in result.errors] == ["invalid_telephone"]


offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@SETTINGS
@given(
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets)
)
def test_date_time_output_recoerces_to_itself_and_keeps_the_instant(moment: datetime) -> None:
    stored = ok(moment.isoformat(), "date")
    assert stored.endswith("Z")
    assert datetime.fromisoformat(stored) == moment
    assert datetime.fromisoformat(stored).utcoffset() == timedelta(0)
    assert ok(stored, "date") == stored


@SETTINGS
@given(st.dates())
def test_date_output_recoerces_to_itself(day: date) -> None:
    stored = ok(day.isoformat(), "date")
    assert stored == day.isoformat()
    assert ok(stored, "date") == stored


@SETTINGS
@given(st.integers(min_value=-62_135_596_800, max_value=253_402_300_799))  # years 1 to 9999
def test_epoch_seconds_round_trip(seconds: int) -> None:
    stored = ok(seconds, "date", date_format="epoch_s")
    assert datetime.fromisoformat(stored) == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
        seconds=seconds
    )
    assert ok(stored, "date", date_format="epoch_s") == stored
