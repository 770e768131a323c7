"""Values PostgreSQL holds and Python's types do not (dates and timestamps BC or after year
9999, +-infinity) and arrays with other bounds reach the change event: the text carried is
what PostgreSQL's own decoder (test_decoding) prints, the elements what PostgreSQL's own
array_to_json gives. Both checked on the initial snapshot and on the stream."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pytest
from connectors.sources.postgres_cdc.values import SESSION_OPTIONS
from streams import topics
from streams.kafka.codec import TopicCodecs

from tests.integration.cdc_support import PlatformDb, read_topic

pytestmark = pytest.mark.integration

# one test_decoding column: name[type]:value, the value quoted ('' inside) or bare
_COLUMN = re.compile(r"(\w+)\[([^\]]+)\]:('(?:[^']|'')*'|\S+)")


def hostile_instants(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """(date, timestamptz) inputs outside Python's datetime: BC, years after 9999, +-infinity."""
    out = [
        ("infinity", "-infinity"),
        ("-infinity", "infinity"),
        ("5874897-12-31", "294276-12-31 23:59:59.999999+00"),
        ("4713-01-01 BC", "4713-11-24 00:00:00+00 BC"),
    ]
    for _ in range(n):
        bc, big = rng.randint(1, 4712), rng.randint(10_000, 200_000)
        month, day = rng.randint(1, 12), rng.randint(1, 28)
        clock = f"{rng.randint(0, 23):02}:{rng.randint(0, 59):02}:{rng.randint(0, 59):02}"
        micros = f".{rng.randint(0, 999_999):06}" if rng.random() < 0.5 else ""
        bc_day, big_day = f"{bc:04}-{month:02}-{day:02}", f"{big}-{month:02}-{day:02}"
        out.append((f"{bc_day} BC", f"{big_day} {clock}{micros}+03"))
        out.append((big_day, f"{bc_day} {clock}{micros}-05:30 BC"))
    return out


def bounded_arrays(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """(text[], int[]) literals with lower bounds other than 1, hostile elements included."""
    words = ["form_responses.insert", "a, b", 'say "hi"', "NULL", "", " x ", "{q}", "[0:1]={z}"]
    out = [("[0:1]={a,b}", "[-2:0]={1,2,3}")]
    for _ in range(n):
        texts = [rng.choice(words) for _ in range(rng.randint(1, 4))]
        ints = [rng.randint(-(2**31), 2**31 - 1) for _ in range(rng.randint(1, 4))]
        lo_t, lo_i = rng.randint(-50, 50), rng.randint(-50, 50)
        quoted = ",".join('"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"' for t in texts)
        out.append((f"[{lo_t}:{lo_t + len(texts) - 1}]={{{quoted}}}",
                    f"[{lo_i}:{lo_i + len(ints) - 1}]={{{','.join(map(str, ints))}}}"))  # fmt: skip
    return out


def decoded_by_postgres(platform: PlatformDb, slot: str) -> dict[str, dict[str, str]]:
    """test_decoding's text of every inserted row, by id, in the source's session settings."""
    rows: dict[str, dict[str, str]] = {}
    with platform.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT set_config('DateStyle', 'ISO, YMD', false), "
                    "set_config('TimeZone', 'UTC', false), "
                    "set_config('IntervalStyle', 'postgres', false)")  # fmt: skip
        cur.execute("SELECT data FROM pg_logical_slot_get_changes(%s, NULL, NULL)", (slot,))
        for (line,) in cur.fetchall():
            if ": INSERT: " not in line:
                continue
            columns = {name: value for name, _, value in _COLUMN.findall(line)}
            text = {n: v[1:-1].replace("''", "'") if v.startswith("'") else v
                    for n, v in columns.items()}  # fmt: skip
            rows[text["id"]] = text
    return rows


def insert_instants(cur: Any, values: list[tuple[str, str]]) -> list[str]:
    ids = []
    for date, stamp in values:
        cur.execute("INSERT INTO wedding_details (couple_id, wedding_date, updated_at) "
                    "VALUES (gen_random_uuid(), %s, %s) RETURNING id", (date, stamp))  # fmt: skip
        ids.append(str(cur.fetchone()[0]))
    return ids


def events_of(kafka: str, codecs: TopicCodecs, table: str, ids: list[str], op: str) -> dict:
    decode = codecs[topics.INGEST_CDC].decode
    keys = {f"{table}:{i}".encode() for i in ids}
    found = read_topic(kafka, topics.INGEST_CDC,
                       lambda m: m.key() in keys and decode(m.value())["op"] == op,
                       count=len(ids))  # fmt: skip
    return {str(decode(m.value())["after"]["id"]): decode(m.value())["after"] for m in found}


@pytest.mark.parametrize("when", ["snapshot", "stream"])
def test_dates_and_timestamps_outside_pythons_range_carry_postgresqls_own_text(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs, when: str
) -> None:
    assert "TimeZone=UTC" in SESSION_OPTIONS  # what decoded_by_postgres sets too
    values = hostile_instants(random.Random(f"instants-{when}"), 12)
    with platform.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT slot_name FROM pg_create_logical_replication_slot("
                    "'td_' || md5(random()::text), 'test_decoding')")  # fmt: skip
        (slot,) = cur.fetchone()
        if when == "snapshot":
            ids = insert_instants(cur, values)
            platform.start_cdc(kafka_bootstrap, codecs)
        else:
            platform.start_cdc(kafka_bootstrap, codecs)
            ids = insert_instants(cur, values)
    ours = events_of(kafka_bootstrap, codecs, "wedding_details", ids,
                     "r" if when == "snapshot" else "c")  # fmt: skip
    theirs = decoded_by_postgres(platform, slot)
    assert {i: (ours[i]["wedding_date"], ours[i]["updated_at"]) for i in ids} == {
        i: (theirs[i]["wedding_date"], theirs[i]["updated_at"]) for i in ids
    }


@pytest.mark.parametrize("when", ["snapshot", "stream"])
def test_arrays_with_other_lower_bounds_carry_their_elements(
    platform: PlatformDb, kafka_bootstrap: str, codecs: TopicCodecs, when: str
) -> None:
    arrays = bounded_arrays(random.Random(f"arrays-{when}"), 12)
    with platform.connect() as conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE core_fields ADD COLUMN lucky_numbers integer[]")

        def write() -> list[str]:
            ids = []
            for events, numbers in arrays:
                cur.execute("INSERT INTO core_fields (couple_id, lucky_numbers) VALUES "
                            "(gen_random_uuid(), %s) RETURNING id", (numbers,))  # fmt: skip
                ids.append(str(cur.fetchone()[0]))
                cur.execute("INSERT INTO webhook_endpoints (supplier_id, endpoint_url, "
                            "secret_key, subscribed_events) VALUES (%s, 'https://h.example', "
                            "'k', %s) RETURNING id", (supplier, events))  # fmt: skip
                ids.append(str(cur.fetchone()[0]))
            return ids

        cur.execute("INSERT INTO suppliers (business_name) VALUES ('Oak Barn') RETURNING id")
        supplier = str(cur.fetchone()[0])
        if when == "snapshot":
            ids = write()
            platform.start_cdc(kafka_bootstrap, codecs)
        else:
            platform.start_cdc(kafka_bootstrap, codecs)
            ids = write()
        cur.execute("SELECT id::text, array_to_json(lucky_numbers)::text FROM core_fields")
        numbers = {i: json.loads(j) for i, j in cur.fetchall()}
        cur.execute("SELECT id::text, array_to_json(subscribed_events)::text "
                    "FROM webhook_endpoints")  # fmt: skip
        events = {i: json.loads(j) for i, j in cur.fetchall()}
    op = "r" if when == "snapshot" else "c"
    ours = {**events_of(kafka_bootstrap, codecs, "core_fields", ids[0::2], op),
            **events_of(kafka_bootstrap, codecs, "webhook_endpoints", ids[1::2], op)}  # fmt: skip
    assert {i: ours[i]["lucky_numbers"] for i in ids[0::2]} == {i: numbers[i] for i in ids[0::2]}
    assert {i: ours[i]["subscribed_events"] for i in ids[1::2]} == {i: events[i] for i in ids[1::2]}
