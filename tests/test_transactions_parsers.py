"""Property tests of the timestamp and amount parsers that mapping files compile to (DuckDB SQL)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import duckdb
from hypothesis import example, given, settings
from hypothesis import strategies as st

from collectors.tabular import amount_sql, literal, number_sql, padded_sql, timestamp_sql, trim_sql

CON = duckdb.connect()
CON.execute("SET TimeZone = 'UTC'")
ZONES = ["UTC", "America/Chicago", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe"]
UTC = dt.timezone.utc
moments = st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2090, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC)
)


def parse_time(text: str, formats: list[str], zone: str = "UTC"):
    return CON.execute(f"SELECT {timestamp_sql(literal(text), formats, zone)}").fetchone()[0]


@settings(max_examples=150, deadline=None)
@given(moments, st.sampled_from(ZONES), st.sampled_from(["T", " "]), st.sampled_from(["%z", "Z", ":z"]))
def test_iso8601_with_an_offset_is_the_same_instant(moment, zone, separator, style) -> None:
    local = moment.astimezone(zoneinfo.ZoneInfo(zone))
    text = local.isoformat(sep=separator)
    if style == "Z" and zone == "UTC":
        text = moment.strftime(f"%Y-%m-%d{separator}%H:%M:%S.%fZ")
    elif style == "%z":
        text = local.strftime(f"%Y-%m-%d{separator}%H:%M:%S.%f%z")
    assert parse_time(text, ["iso8601"], "America/Chicago") == moment


@settings(max_examples=150, deadline=None)
@given(moments, st.sampled_from(ZONES))
def test_local_time_without_offset_is_read_in_the_configured_zone(moment, zone) -> None:
    local = moment.astimezone(zoneinfo.ZoneInfo(zone))
    if local.fold or zoneinfo.ZoneInfo(zone).utcoffset(local.replace(tzinfo=None, fold=1)) != local.utcoffset():
        return  # an ambiguous wall time (DST fall-back hour) has two answers
    naive = local.replace(tzinfo=None)
    assert parse_time(naive.isoformat(sep=" "), ["iso8601"], zone) == moment
    assert parse_time(naive.strftime("%d.%m.%Y %H:%M:%S.%f"), ["%d.%m.%Y %H:%M:%S.%f"], zone) == moment


@settings(max_examples=150, deadline=None)
@given(moments)
def test_epoch_seconds_and_milliseconds(moment) -> None:
    millis = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    epoch_ms = round(millis.timestamp() * 1000)
    assert parse_time(str(epoch_ms), ["epoch_ms"]) == millis
    assert parse_time(str(epoch_ms // 1000), ["epoch_s"]) == millis.replace(microsecond=0)
    assert parse_time(f"{epoch_ms / 1000:.3f}", ["epoch_s"]) == millis


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=12))
@example("INFINITY")  # try_strptime reads epoch, infinity and -infinity under any pattern
@example(" epoch")
def test_garbage_never_parses_as_a_time_and_never_raises(text) -> None:
    if any(c.isdigit() for c in text):
        return
    assert parse_time(text, ["iso8601", "epoch_ms", "%Y-%m-%d"]) is None


amounts = st.decimals(min_value=Decimal("-99999999999999"), max_value=Decimal("99999999999999"), places=4)


def group(digits: str, separator: str) -> str:
    head, rest = digits[: len(digits) % 3 or 3], digits[len(digits) % 3 or 3 :]
    return separator.join([head, *[rest[i : i + 3] for i in range(0, len(rest), 3)]])


@settings(max_examples=200, deadline=None)
@given(amounts, st.sampled_from([(".", ""), (",", ""), (".", ","), (",", "."), (",", " "), (".", "'")]))
def test_amounts_with_either_decimal_separator_and_thousands(amount, separators) -> None:
    decimal, thousands = separators
    sign = "-" if amount < 0 else ""
    whole, fraction = f"{abs(amount):.4f}".split(".")
    text = sign + (group(whole, thousands) if thousands else whole) + decimal + fraction
    parsed = CON.execute(f"SELECT {amount_sql(literal(text), decimal, thousands)}").fetchone()[0]
    assert parsed == amount


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="abcxyz$%", min_size=1, max_size=8))
def test_non_numbers_are_null(text) -> None:
    assert CON.execute(f"SELECT {amount_sql(literal(text))}").fetchone()[0] is None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=[" ", "\t", "\n", "\u00a0", "\u1680", "\u2003", "\u3000", "a", "Z", "1", "!", "é"], max_size=8))
@example(" a")
@example("a\u00a0")  # ends in a Unicode space, starts with ASCII
@example("\u3000")
def test_the_guarded_trim_trims_exactly_like_trim(text) -> None:
    guarded, plain = CON.execute(f"SELECT {trim_sql(literal(text))}, trim({literal(text)})").fetchone()
    assert guarded == plain


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=[" ", "\t", "\n", "\x00", "\x7f", "a", "Z", "1", "!", "~"], max_size=8))
@example(" a")
@example("a ")
def test_the_guarded_trim_of_ascii_text_trims_exactly_like_trim(text) -> None:
    guarded, plain = CON.execute(f"SELECT {trim_sql(literal(text), ascii=True)}, trim({literal(text)})").fetchone()
    assert guarded == plain


padding = st.text(alphabet=[" ", "\u00a0", "\u2003", "\u3000"], max_size=3)


@settings(max_examples=200, deadline=None)
@given(
    moments,
    st.sampled_from(ZONES),
    st.sampled_from(["iso8601 offset", "iso8601 local", "epoch_s", "epoch_ms", "%d.%m.%Y %H:%M:%S"]),
    padding,
    padding,
)
@example(dt.datetime(2024, 1, 1, 9, tzinfo=UTC), "Europe/Berlin", "iso8601 offset", "", " ")  # not read as local time
@example(dt.datetime(2024, 1, 1, 9, tzinfo=UTC), "Europe/Berlin", "iso8601 offset", "\u3000", "\u00a0")
def test_padding_never_changes_a_parsed_time(moment, zone, shape, before, after) -> None:
    local = moment.astimezone(zoneinfo.ZoneInfo(zone))
    text, formats = {
        "iso8601 offset": (local.isoformat(), ["iso8601"]),
        "iso8601 local": (local.replace(tzinfo=None).isoformat(sep=" "), ["iso8601"]),
        "epoch_s": (str(int(moment.timestamp())), ["epoch_s"]),
        "epoch_ms": (str(int(moment.timestamp() * 1000)), ["epoch_ms"]),
        "%d.%m.%Y %H:%M:%S": (local.strftime("%d.%m.%Y %H:%M:%S"), ["%d.%m.%Y %H:%M:%S"]),
    }[shape]

    configured = "Pacific/Chatham" if shape == "iso8601 offset" else zone  # an offset must win over the zone

    def parsed(value: str):
        sql = padded_sql(lambda t: timestamp_sql(t, formats, configured), literal(value))
        return CON.execute(f"SELECT {sql}").fetchone()[0]

    assert parsed(before + text + after) == parsed(text) is not None


@settings(max_examples=200, deadline=None)
@given(amounts, st.sampled_from([(".", ""), (",", "."), (",", " ")]), padding, padding)
def test_padding_never_changes_a_parsed_number(amount, separators, before, after) -> None:
    decimal, thousands = separators
    whole, fraction = f"{abs(amount):.4f}".split(".")
    text = ("-" if amount < 0 else "") + (group(whole, thousands) if thousands else whole) + decimal + fraction
    for parse in (
        lambda t: amount_sql(t, decimal, thousands),
        lambda t: number_sql(t, decimal, thousands),
        lambda t: f"TRY_CAST({t} AS BIGINT)",
    ):
        plain = CON.execute(f"SELECT {padded_sql(parse, literal(text))}").fetchone()[0]
        padded = CON.execute(f"SELECT {padded_sql(parse, literal(before + whole + after))}").fetchone()[0]
        assert CON.execute(f"SELECT {padded_sql(parse, literal(before + text + after))}").fetchone()[0] == plain
        assert padded == CON.execute(f"SELECT {padded_sql(parse, literal(whole))}").fetchone()[0] is not None
