#!/usr/bin/env python3
"""fuzz/gen_seeds.py — writes the seed corpora of fuzz_result and
fuzz_redis_reply (fuzz/corpus/result/, fuzz/corpus/redis_reply/) in the
input formats their sources describe. Deterministic: run it again after
changing a format, then commit what changed.

    python3 fuzz/gen_seeds.py
"""
import os
import struct
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- fuzz_result ------------------------------------------------------------
# Must match OIDS[] and NAMES[] in fuzz_result.c.
OIDS = [16, 17, 18, 19, 20, 21, 23, 25, 26, 114, 700, 701, 705, 1042, 1043, 1082, 1114, 1184, 1186, 1700, 2950,
        3802, 1003, 1005, 1007, 1009, 1014, 1015, 1016, 1022, 16384, 16385, 99999, 0]
NAMES = ["tenant_id", "id", "name", "position", "created_at", "updated_at", "category_id", "description",
         "price_cents", "calories", "available", "tags", "order_id", "line_no", "menu_item_id", "quantity",
         "unit_price_cents", "customer_id", "status", "total_cents", "note", "placed_at", "completed_at", "slug",
         "plan", "settings", "email", "display_name", "role", "", "c", "ID", "Name"]
BY_TYPE = {"bool": 16, "bytea": 17, "name": 19, "int8": 20, "int2": 21, "int4": 23, "text": 25, "json": 114,
           "float4": 700, "float8": 701, "bpchar": 1042, "varchar": 1043, "date": 1082, "timestamp": 1114,
           "timestamptz": 1184, "interval": 1186, "numeric": 1700, "uuid": 2950, "jsonb": 3802,
           "name[]": 1003, "int2[]": 1005, "int4[]": 1007, "text[]": 1009, "int8[]": 1016, "varchar[]": 1015,
           "enum": 16384}


def column(typ, name, text_format=False, kind=0x80, raw_oid=None):
    """typ: a key of BY_TYPE, or None with raw_oid; name: a NAMES entry or
    any bytes (literal); kind: the synthesised table's byte."""
    if raw_oid is not None:
        t = OIDS.index(0)
        extra = struct.pack(">I", raw_oid)
    else:
        t = OIDS.index(BY_TYPE[typ])
        extra = b""
    t |= 0x80 if text_format else 0
    if isinstance(name, str) and name in NAMES:
        n = bytes([NAMES.index(name)])
    else:
        lit = name.encode() if isinstance(name, str) else name
        n = bytes([0xe0 | len(lit)]) + lit
    return bytes([t]) + n + bytes([kind]) + extra


def cell(v):
    if v is None:
        return b"\xff"
    if len(v) >= 0xfe:
        return b"\xfe" + struct.pack(">H", len(v)) + v
    return bytes([len(v)]) + v


def result(cols, rows):
    """cols: column() encodings; rows: lists of cell values (bytes/None)."""
    out = bytes([len(rows), len(cols)]) + b"".join(cols)
    for r in rows:
        assert len(r) == len(cols)
        out += b"".join(cell(v) for v in r)
    return out


def i2(x): return struct.pack(">h", x)
def i4(x): return struct.pack(">i", x)
def i8(x): return struct.pack(">q", x)
def f8(x): return struct.pack(">d", x)
def f4(x): return struct.pack(">f", x)
def u(s): return uuid.UUID(s).bytes


def ts(unix_us): return i8(unix_us - 946684800000000)
def date(days): return i4(days - 10957)


def numeric(digits, weight, sign, dscale):
    return struct.pack(">hhHh", len(digits), weight, sign, dscale) + b"".join(struct.pack(">H", d) for d in digits)


def array(elem_oid, items, ndim=1):
    if ndim == 0:
        return struct.pack(">iiI", 0, 0, elem_oid)
    hasnull = any(i is None for i in items)
    out = struct.pack(">iiIii", 1, int(hasnull), elem_oid, len(items), 1)
    for i in items:
        out += struct.pack(">i", -1) if i is None else struct.pack(">i", len(i)) + i
    return out


T = "11111111-2222-4333-8444-555555555555"
A = "aaaaaaaa-0000-4000-8000-000000000001"
B = "aaaaaaaa-0000-4000-8000-000000000002"
NOW = 1704164645678901


def result_seeds():
    s = {}
    s["menu-items"] = result(
        [column("uuid", "tenant_id"), column("uuid", "id"), column("uuid", "category_id"), column("text", "name"),
         column("text", "description", kind=0xc0), column("int4", "price_cents"), column("int4", "calories", kind=0xc0),
         column("bool", "available"), column("text[]", "tags"), column("timestamptz", "created_at"),
         column("timestamptz", "updated_at")],
        [[u(T), u(A), u(B), "Soupe à l'oignon".encode(), b'Hot "and" cheesy', i4(2147483647), i4(0), b"\x01",
          array(25, [b"vegetarian", b"with space", b""]), ts(NOW), i8(-(1 << 63))],
         [u(T), u(B), u(B), b"Pie", None, i4(0), None, b"\x00", array(25, [], ndim=0), ts(0), i8((1 << 63) - 1)]])
    s["menu-categories"] = result(
        [column("uuid", "tenant_id"), column("uuid", "id"), column("text", "name"), column("int4", "position"),
         column("timestamptz", "created_at"), column("timestamptz", "updated_at")],
        [[u(T), u(A), b"Mains", i4(-3), ts(NOW), ts(NOW)]])
    s["orders-enum-own-type"] = result(
        [column("uuid", "tenant_id"), column("uuid", "id"), column("uuid", "customer_id", kind=0xc0),
         column("enum", "status"), column("int8", "total_cents"), column("text", "note", kind=0xc0),
         column("timestamptz", "placed_at"), column("timestamptz", "updated_at"),
         column("timestamptz", "completed_at", kind=0xc0)],
        [[u(T), u(A), u(B), b"cancelled", i8(9000000000), b"no onions", ts(NOW), ts(NOW), ts(NOW)],
         [u(T), u(B), None, b"pending", i8(0), None, ts(NOW), ts(NOW), None],
         [u(T), u(B), None, b"lost", i8(0), None, ts(NOW), ts(NOW), None]])
    s["users-enum-text"] = result(
        [column("uuid", "tenant_id"), column("uuid", "id"), column("text", "email"), column("varchar", "display_name"),
         column("text", "role"), column("timestamptz", "created_at"), column("timestamptz", "updated_at")],
        [[u(T), u(A), b"chef@example.com", b"Chef", b"manager", ts(NOW), ts(NOW)],
         [u(T), u(B), b"x@example.com", b"X", b"Owner", ts(NOW), ts(NOW)]])
    s["tenants-jsonb"] = result(
        [column("uuid", "id"), column("text", "slug"), column("text", "name"), column("enum", "status"),
         column("text", "plan"), column("jsonb", "settings"), column("timestamptz", "created_at"),
         column("timestamptz", "updated_at")],
        [[u(T), b"rows", b"Rows & Co", b"suspended", b"enterprise", b'\x01{"currency": "EUR", "seats": 40}',
          ts(NOW), i8(-(1 << 63))],
         [u(T), b"b", b"B", b"active", b"free", b"\x02{}", ts(NOW), ts(NOW)]])
    s["order-items"] = result(
        [column("uuid", "tenant_id"), column("uuid", "order_id"), column("int4", "line_no"), column("uuid", "menu_item_id"),
         column("int4", "quantity"), column("int4", "unit_price_cents")],
        [[u(T), u(A), i4(1), u(B), i4(1000), i4(650)], [u(T), u(A), i4(2), u(B), None, i4(1)]])
    s["order-items-wrong-type"] = result(
        [column("uuid", "tenant_id"), column("uuid", "order_id"), column("int8", "line_no"), column("uuid", "menu_item_id"),
         column("int4", "quantity"), column("int4", "unit_price_cents")],
        [[u(T), u(A), i8(1), u(B), i4(1000), i4(650)]])
    s["numerics"] = result(
        [column("numeric", "c", kind=0xc0), column("numeric", "c2"), column("numeric", "c3"), column("numeric", "c4")],
        [[numeric([12, 5000], 0, 0x4000, 2), numeric([], 0, 0, 0), numeric([1, 2, 3], 2, 0, 6),
          numeric([5], -2, 0, 10)],
         [numeric([], 0, 0xC000, 0), numeric([], 0, 0xD000, 0), numeric([], 0, 0xF000, 0),
          numeric([10000], 0, 0, 0)],
         [numeric([9999, 9999], 1, 0x4000, 4), numeric([1], 3, 0, 0), numeric([0, 1], 1, 0, 0), None]])
    s["scalars"] = result(
        [column("int2", "a"), column("int4", "b"), column("int8", "c"), column("float4", "d"), column("float8", "e"),
         column("bool", "f"), column("date", "g"), column("bytea", "h"), column("json", "i"), column("name", "j"),
         column("bpchar", "k"), column("interval", "l")],
        [[i2(-32768), i4(-1), i8(1 << 62), f4(1.5), f8(float("nan")), b"\x07", date(19000), b"\x00\x01\xff",
          b'[1, "two", {"3": null}]', b"pg_catalog", b"x  ", b"\x00" * 16],
         [i2(7), i4(7), i8(7), f4(float("-inf")), f8(-0.0), b"\x00", i4(2147483647), b"", b"nul\x00", b"", b"", b""],
         [b"\x01", b"\x01\x02\x03", b"\x01" * 7, b"\x01" * 8, b"\x01" * 4, b"", i4(2147483647 - 10957 + 1), None,
          b"{", None, None, None]])
    s["arrays"] = result(
        [column("text[]", "t"), column("varchar[]", "v"), column("name[]", "n"), column("int4[]", "i"),
         column("int8[]", "j"), column("int2[]", "k")],
        [[array(25, [b"a", None, b"c\x00d"]), array(1043, [b"x"]), array(19, [b"pg"]),
          array(23, [i4(1), i4(-2)]), array(20, [i8(5)]), array(21, [], ndim=0)],
         [array(23, [b"a"]), array(25, [b"x"])[:-1], struct.pack(">iiIii", 2, 0, 19, 1, 1),
          array(23, [i4(1), None]), array(23, [i8(5)]), array(20, [i8(-1)])],
         [b"", struct.pack(">iiIii", 1, 0, 1043, -1, 1), struct.pack(">iiIii", 1, 0, 19, 2, 1) + struct.pack(">i", 1000),
          array(21, [i2(3)]), None, struct.pack(">iiI", 1, 0, 21)]])
    s["text-format"] = result(
        [column("int8", "c", text_format=True), column("text", "d", text_format=True),
         column("enum", "status", text_format=True), column("bool", "b", text_format=True)],
        [[b"12345678", "héllo".encode(), b"pending", b"t"]])
    s["raw-oids"] = result(
        [column(None, "x", raw_oid=0xffffffff), column(None, "role", raw_oid=20000, kind=0x8d),
         column(None, "y", raw_oid=23)],
        [[b"anything", b"staff", i4(9)], [None, b"boss", b"\x00\x00"]])
    s["names-duplicate-literal"] = result(
        [column("int4", "id"), column("int8", "id"), column("text", b"a\x00b", kind=0x01),
         column("text", "x" * 31, kind=0x4c)],
        [[i4(1), i8(2), b"z", b"w"]])
    s["empty"] = b""
    s["columns-no-rows"] = result([column("uuid", "tenant_id"), column("uuid", "id"), column("text", "name")], [])
    s["big-value"] = result([column("text", "name"), column("bytea", "b")], [[b"a" * 1500, bytes(range(256)) * 5]])
    s["timestamps-edge"] = result(
        [column("timestamptz", "t"), column("timestamptz", "u"), column("date", "d"), column("date", "e")],
        [[i8((1 << 63) - 1), i8((1 << 63) - 946684800000000), i4(-(1 << 31)), i4((1 << 31) - 10957)],
         [i8((1 << 63) - 946684800000001), i8(-(1 << 63) + 1), i4((1 << 31) - 10958), i4(-(1 << 31) + 1)]])
    return s


# ---- fuzz_redis_reply -------------------------------------------------------------
# op byte (see OPS in fuzz_redis_reply.c), split count, split lengths, RESP.
OPS = ["ping", "get", "get_json", "set", "del", "exists", "ttl", "expire", "incr", "mget", "mset", "invalidate"]
GEN = b"+OK\r\n$16\r\n1718000000000000\r\n"


def reply_input(op, resp, splits=(), n=1):
    o = OPS.index(op) | ((n - 1) << 4)
    return bytes([o, len(splits)]) + bytes(splits) + resp


def redis_seeds():
    s = {}
    s["ping"] = reply_input("ping", b"+PONG\r\n")
    s["ping-split"] = reply_input("ping", b"+PONG\r\n", splits=(1, 2, 1))
    s["ping-error"] = reply_input("ping", b"-ERR unknown command\r\n")
    s["ping-loading"] = reply_input("ping", b"-LOADING Redis is loading the dataset in memory\r\n")
    s["get-hit"] = reply_input("get", GEN + b"$5\r\nhello\r\n")
    s["get-hit-split"] = reply_input("get", GEN + b"$5\r\nhello\r\n", splits=(3, 9, 1, 1, 7, 2))
    s["get-miss"] = reply_input("get", GEN + b"$-1\r\n")
    s["get-wrongtype"] = reply_input("get", GEN + b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")
    s["get-integer"] = reply_input("get", GEN + b":3\r\n")
    s["get-truncated"] = reply_input("get", GEN + b"$10\r\nhel")
    s["get-binary"] = reply_input("get", GEN + b"$4\r\n\x00\r\n\xff\r\n")
    s["gen-integer"] = reply_input("get", b"+OK\r\n:42\r\n$1\r\nx\r\n")
    s["gen-not-counter"] = reply_input("get", b"+OK\r\n$3\r\nabc\r\n$1\r\nx\r\n")
    s["gen-error"] = reply_input("get", b"+OK\r\n-NOAUTH Authentication required.\r\n")
    s["get-json"] = reply_input("get_json", GEN + b'$13\r\n{"a":[1,2.5]}\r\n')
    s["get-json-invalid"] = reply_input("get_json", GEN + b"$3\r\n{x}\r\n")
    s["set-ok"] = reply_input("set", GEN + b"+OK\r\n")
    s["set-nil"] = reply_input("set", GEN + b"$-1\r\n")
    s["set-oom"] = reply_input("set", GEN + b"-OOM command not allowed when used memory > 'maxmemory'.\r\n")
    s["del"] = reply_input("del", GEN + b":1\r\n")
    s["del-miss"] = reply_input("del", GEN + b":0\r\n")
    s["exists"] = reply_input("exists", GEN + b":1\r\n")
    s["ttl"] = reply_input("ttl", GEN + b":15000\r\n")
    s["ttl-missing"] = reply_input("ttl", GEN + b":-2\r\n")
    s["expire"] = reply_input("expire", GEN + b":0\r\n")
    s["incr"] = reply_input("incr", GEN + b":-9223372036854775808\r\n")
    s["incr-error"] = reply_input("incr", GEN + b"-ERR value is not an integer or out of range\r\n")
    s["incr-eof"] = reply_input("incr", GEN)
    s["mget"] = reply_input("mget", GEN + b"*3\r\n$1\r\na\r\n$-1\r\n$0\r\n\r\n", n=3)
    s["mget-wrong-count"] = reply_input("mget", GEN + b"*1\r\n$1\r\na\r\n", n=2)
    s["mget-nested"] = reply_input("mget", GEN + b"*2\r\n*1\r\n:1\r\n$1\r\nb\r\n", n=2)
    s["mget-nil-array"] = reply_input("mget", GEN + b"*-1\r\n", n=1)
    s["mset"] = reply_input("mset", GEN + b"+OK\r\n+OK\r\n", n=2)
    s["mset-one-error"] = reply_input("mset", GEN + b"+OK\r\n-ERR no\r\n+OK\r\n", n=3)
    s["invalidate"] = reply_input("invalidate", b"+OK\r\n:1718000000000001\r\n")
    s["array-huge"] = reply_input("mget", GEN + b"*2000000\r\n", n=1)
    s["array-negative"] = reply_input("mget", GEN + b"*-2\r\n", n=1)
    s["bulk-negative"] = reply_input("get", GEN + b"$-2\r\n")
    s["bad-type-byte"] = reply_input("get", GEN + b"?\r\n")
    s["bad-integer"] = reply_input("del", GEN + b":12a\r\n")
    s["deep"] = reply_input("mget", GEN + b"*1\r\n" * 9 + b":1\r\n", n=1)
    s["extra-replies"] = reply_input("ping", b"+PONG\r\n+PONG\r\n:1\r\n")
    s["empty"] = b""
    return s


def write(dirname, seeds):
    d = os.path.join(HERE, "corpus", dirname)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("result", result_seeds())
    write("redis_reply", redis_seeds())
