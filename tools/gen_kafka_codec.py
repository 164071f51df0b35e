#!/usr/bin/env python3
"""gen_kafka_codec.py - generate Sluice's Kafka protocol codec from the
Apache Kafka message schemas (JSON with // comments).

Usage:
    python3 tools/gen_kafka_codec.py [--schemas DIR] [--out DIR]

DIR defaults: --schemas $(dirname repo)/shared/kafka-protocol, --out repo/net.

Writes, deterministically (same schemas -> byte-identical files):
    kafka_codec.h         structs, prototypes, api keys, the api table type
    kafka_codec.c         init / decode / encode for every message, the table
    kafka_codec_sample.c  fill-every-field sample values (tests, fuzz seeds)

The C it emits builds on net/kread.h and net/kwrite.h (hand-written). Python
3 standard library only. The list of APIs is SLUICE_APIS below, nowhere else.
"""

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

# The APIs Sluice speaks: request and response, every valid version. This is
# the one list to edit when an API is added.
SLUICE_APIS = [
    "Produce",
    "Fetch",
    "ListOffsets",
    "Metadata",
    "LeaderAndIsr",
    "StopReplica",
    "UpdateMetadata",
    "ControlledShutdown",
    "OffsetCommit",
    "OffsetFetch",
    "FindCoordinator",
    "JoinGroup",
    "Heartbeat",
    "LeaveGroup",
    "SyncGroup",
    "DescribeGroups",
    "ListGroups",
    "ApiVersions",
    "CreateTopics",
    "DeleteTopics",
    "DeleteRecords",
    "InitProducerId",
    "OffsetForLeaderEpoch",
    "DescribeConfigs",
    "CreatePartitions",
    "DeleteGroups",
    "IncrementalAlterConfigs",
    "OffsetDelete",
    "AlterPartition",
    "DescribeCluster",
]

HEADERS = ["RequestHeader", "ResponseHeader"]

# Protocol rules that live in Kafka's code rather than in the schemas.
# RequestHeader v0 (no ClientId) is used only by ControlledShutdown v0.
REQUEST_HEADER_V0 = {("ControlledShutdown", 0)}
# ApiVersions responses always use ResponseHeader v0, so that a client that
# does not yet know the broker's versions can parse them.
RESPONSE_HEADER_V0_APIS = {"ApiVersions"}

VMAX = 0x7FFF  # "N+" ranges are open up to the largest int16 version

# schema type -> (C type, kread/kwrite suffix, fixed wire size or None)
SCALARS = {
    "int8": ("int8_t", "i8", 1),
    "int16": ("int16_t", "i16", 2),
    "uint16": ("uint16_t", "u16", 2),
    "int32": ("int32_t", "i32", 4),
    "uint32": ("uint32_t", "u32", 4),
    "int64": ("int64_t", "i64", 8),
    "float64": ("double", "f64", 8),
    "bool": ("bool", "bool", 1),
}
SLICES = {"string": "string", "bytes": "bytes", "records": "records"}
# element type of a primitive array -> (C struct, kread/kwrite suffix, elem min bytes)
PRIM_ARRAYS = {
    "int16": ("karray_i16", "i16", 2),
    "int32": ("karray_i32", "i32", 4),
    "int64": ("karray_i64", "i64", 8),
    "string": ("karray_str", "str", 1),
    "uuid": ("karray_uuid", "uuid", 16),
}

SAMPLE_INT_LO, SAMPLE_INT_HI = 10, 99  # sample integers; never a schema default


class GenError(Exception):
    pass


# ---------------------------------------------------------------- parsing


def strip_comments(text):
    """Drops // comments that are outside JSON strings."""
    out = []
    i, n = 0, len(text)
    in_str = False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_str = False
            i += 1
            continue
        if c == '"':
            in_str = True
            out.append(c)
            i += 1
            continue
        if c == "/" and i + 1 < n and text[i + 1] == "/":
            while i < n and text[i] != "\n":
                i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def load_schema(path):
    try:
        return json.loads(strip_comments(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as e:
        raise GenError(f"{path}: {e}")


def parse_range(spec):
    """'3+' -> (3, VMAX); '1-4' -> (1, 4); '7' -> (7, 7); 'none' -> None."""
    spec = str(spec).strip()
    if spec == "none":
        return None
    if spec.endswith("+"):
        return (int(spec[:-1]), VMAX)
    if "-" in spec:
        lo, hi = spec.split("-")
        return (int(lo), int(hi))
    return (int(spec), int(spec))


def inter(a, b):
    if a is None or b is None:
        return None
    lo, hi = max(a[0], b[0]), min(a[1], b[1])
    return None if lo > hi else (lo, hi)


def hull(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), max(a[1], b[1]))


def range_text(r):
    if r is None:
        return "none"
    if r[1] == VMAX:
        return f"{r[0]}+"
    if r[0] == r[1]:
        return f"{r[0]}"
    return f"{r[0]}-{r[1]}"


def cond(rng, ctx):
    """C condition for 'version in rng' where version is known to be in ctx:
    '1' (always), '0' (never) or an expression."""
    if rng is None or inter(rng, ctx) is None:
        return "0"
    parts = []
    if rng[0] > ctx[0]:
        parts.append(f"version >= {rng[0]}")
    if rng[1] < ctx[1]:
        parts.append(f"version <= {rng[1]}")
    return " && ".join(parts) if parts else "1"


def snake(name):
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    return s.lower()


# ---------------------------------------------------------------- model


class Field:
    def __init__(self, spec, msg, where):
        self.name = spec["name"]
        self.type = spec["type"]
        self.about = spec.get("about", "")
        self.versions = parse_range(spec["versions"])
        self.nullable = parse_range(spec["nullableVersions"]) if "nullableVersions" in spec else None
        self.tagged = parse_range(spec["taggedVersions"]) if "taggedVersions" in spec else None
        self.tag = spec.get("tag")
        self.default_raw = spec.get("default")
        # A field may override the message's flexible versions ("none" for
        # RequestHeader.ClientId, which keeps its int16 length everywhere).
        self.has_flex_override = "flexibleVersions" in spec
        self.flex_override = parse_range(spec["flexibleVersions"]) if self.has_flex_override else None
        self.struct = None
        self.where = f"{where}.{self.name}"
        if (self.tag is None) != (self.tagged is None):
            raise GenError(f"{self.where}: tag and taggedVersions go together")
        if self.tagged is not None and self.tagged != self.versions:
            raise GenError(f"{self.where}: fields both tagged and untagged are not supported")
        t = self.type
        is_array = t.startswith("[]")
        elem = t[2:] if is_array else t
        if elem in SCALARS or elem in SLICES or elem == "uuid":
            if is_array:
                if elem not in PRIM_ARRAYS:
                    raise GenError(f"{self.where}: arrays of {elem} are not supported")
                self.kind = "prim_array"
            else:
                self.kind = "scalar" if elem in SCALARS else ("uuid" if elem == "uuid" else "slice")
            self.elem = elem
        else:
            self.kind = "struct_array" if is_array else "struct"
            self.elem = elem
            self.struct = msg.struct_for(elem, spec.get("fields"), self.where)
            if self.nullable is not None and self.kind == "struct":
                raise GenError(f"{self.where}: nullable struct fields are not supported")
        if self.nullable is not None and self.kind in ("scalar", "uuid"):
            raise GenError(f"{self.where}: a {elem} cannot be nullable")
        self.default = self.parse_default()

    def parse_default(self):
        d = self.default_raw
        if self.kind == "scalar":
            if self.elem == "bool":
                if d is None:
                    return False
                v = str(d).strip().lower()
                if v not in ("true", "false"):
                    raise GenError(f"{self.where}: bad bool default {d!r}")
                return v == "true"
            if self.elem == "float64":
                return float(d) if d is not None else 0.0
            return int(str(d), 0) if d is not None else 0
        if self.kind == "slice":
            if d is None:
                return None if self.elem == "records" else ""
            if d == "null":
                if self.nullable is None or inter(self.versions, self.nullable) != self.versions:
                    raise GenError(f"{self.where}: default null needs nullable versions")
                return None
            return str(d)
        if d not in (None, ""):
            raise GenError(f"{self.where}: defaults for {self.type} are not supported")
        return None

    def flex_range(self, msg):
        return self.flex_override if self.has_flex_override else msg.flex


class Struct:
    def __init__(self, msg, name, cname, root=False):
        self.msg = msg
        self.name = name
        self.cname = cname
        self.root = root
        self.fields = []
        self.ctx = None
        self.used_as_array = False
        self.needs_is_default = False

    @property
    def init_fn(self):
        return f"kafka_init_{snake(self.cname)}"


class Message:
    def __init__(self, spec, path):
        self.spec = spec
        self.name = spec["name"]
        self.kind = spec["type"]
        self.api_key = spec.get("apiKey")
        self.valid = parse_range(spec["validVersions"])
        self.flex = parse_range(spec.get("flexibleVersions", "none"))
        self.snake = snake(self.name)
        self.structs = {}
        self.commons = {c["name"]: c for c in spec.get("commonStructs", [])}
        self.root = Struct(self, self.name, self.name, root=True)
        self.root.ctx = self.valid
        self.root.fields = [Field(f, self, self.name) for f in spec["fields"]]
        self.propagate_ctx()
        self.order = self.post_order()

    def struct_for(self, tname, fields, where):
        if fields is None:
            if tname not in self.commons:
                raise GenError(f"{where}: unknown type {tname}")
            if tname in self.structs:
                return self.structs[tname]
            fields = self.commons[tname]["fields"]
        elif tname in self.structs:
            raise GenError(f"{where}: struct {tname} defined twice in {self.name}")
        s = Struct(self, tname, f"{self.name}_{tname}")
        self.structs[tname] = s
        s.fields = [Field(f, self, f"{self.name}.{tname}") for f in fields]
        return s

    def propagate_ctx(self):
        """Each struct's context: the hull of the versions in which it can
        appear. Iterates to a fixed point (common structs have several uses;
        the nesting depth bounds the passes)."""
        for _ in range(len(self.structs) + 2):
            changed = False
            todo = [self.root] + sorted(self.structs.values(), key=lambda s: s.cname)
            for s in todo:
                if s.ctx is None:
                    continue
                for f in s.fields:
                    if f.struct is None:
                        continue
                    c = hull(f.struct.ctx, inter(s.ctx, f.versions))
                    if c != f.struct.ctx:
                        f.struct.ctx = c
                        changed = True
            if not changed:
                return
        raise GenError(f"{self.name}: struct contexts do not settle")

    def post_order(self):
        out, seen = [], set()
        stack = [(self.root, False)]
        while stack:
            s, expanded = stack.pop()
            if expanded:
                if s.cname not in seen:
                    seen.add(s.cname)
                    out.append(s)
                continue
            if s.cname in seen:
                continue
            stack.append((s, True))
            for f in reversed(s.fields):
                if f.struct is not None and f.struct.cname not in seen:
                    stack.append((f.struct, False))
        for s in out:
            if s.ctx is None:
                raise GenError(f"{s.cname}: never present in any valid version")
        return out


# ---------------------------------------------------------------- C helpers


def c_comment_text(s):
    return s.replace("*/", "* /").replace("/*", "/ *")


def c_string(s):
    out = []
    for ch in s:
        if ch in '\\"':
            out.append("\\" + ch)
        elif 32 <= ord(ch) < 127:
            out.append(ch)
        else:
            out.append(f"\\x{ord(ch):02x}")
    return '"' + "".join(out) + '"'


def c_int(ctype, v):
    lims = {
        "int8_t": (-(1 << 7), (1 << 7) - 1, "INT8_MIN"),
        "int16_t": (-(1 << 15), (1 << 15) - 1, "INT16_MIN"),
        "int32_t": (-(1 << 31), (1 << 31) - 1, "INT32_MIN"),
        "int64_t": (-(1 << 63), (1 << 63) - 1, "INT64_MIN"),
        "uint16_t": (0, (1 << 16) - 1, None),
        "uint32_t": (0, (1 << 32) - 1, None),
    }
    lo, hi, min_name = lims[ctype]
    if not lo <= v <= hi:
        raise GenError(f"default {v} does not fit {ctype}")
    if min_name and v == lo:
        return min_name
    if ctype.startswith("uint"):
        return f"{v}u"
    if ctype == "int64_t" and not -(1 << 31) <= v < (1 << 31):
        return f"INT64_C({v})"
    return str(v)


def default_expr(f):
    """C expression of the schema default (scalars and slices), or None
    when the default is all-zero bits."""
    if f.kind == "scalar":
        if f.elem == "bool":
            return "true" if f.default else None
        if f.elem == "float64":
            return repr(f.default) if f.default != 0.0 else None
        return c_int(SCALARS[f.elem][0], f.default) if f.default != 0 else None
    if f.kind == "slice":
        if f.default is None:
            return "KSLICE_NULL"
        if f.default == "":
            return None
        return f"KSLICE_LIT({c_string(f.default)})"
    return None


def default_text(f):
    if f.default_raw is None:
        return ""
    if f.default_raw == "":
        return ', default ""'
    return f", default {f.default_raw}"


def default_test(f, v, differs):
    """C expression: field value `v` equals its default (differs=False) or
    differs from it (differs=True)."""
    eq, ne = ("==", "!=") if not differs else ("!=", "==")
    neg = "!" if differs else ""
    if f.kind == "scalar":
        if f.elem == "bool":
            return f"{v} {eq} {'true' if f.default else 'false'}"
        d = default_expr(f)
        return f"{v} {eq} {d if d is not None else '0'}"
    if f.kind == "uuid":
        return f"{neg}kafka_uuid_is_zero(&{v})"
    if f.kind == "slice":
        if f.default is None:
            return f"{v}.len {eq} -1"
        if f.default == "":
            return f"{v}.len {eq} 0"
        return f"{neg}kafka_slice_equals(&{v}, {c_string(f.default)})"
    if f.kind in ("prim_array", "struct_array"):
        return f"{v}.count {eq} 0"
    if f.kind == "struct":
        return f"{neg}{f.struct.cname}_is_default(&{v})"
    raise GenError(f"{f.where}: no default test")


def fmt_expr(f, msg, ctx):
    """The kfmt flags of field f where version is known to be in ctx; uses
    the function's `flex` local when the message's flexibility varies."""
    parts = []
    c = cond(f.flex_range(msg), ctx)
    if c == "1":
        parts.append("KFMT_COMPACT")
    elif c != "0":
        parts.append(f"({c} ? KFMT_COMPACT : 0)" if f.has_flex_override else "flex")
    if f.nullable is not None:
        n = cond(f.nullable, ctx)
        if n == "1":
            parts.append("KFMT_NULLABLE")
        elif n != "0":
            parts.append(f"({n} ? KFMT_NULLABLE : 0)")
    return " | ".join(parts) if parts else "0"


def field_doc(f):
    bits = [f.type, f"versions {range_text(f.versions)}"]
    if f.nullable is not None:
        bits.append(f"nullable {range_text(f.nullable)}")
    if f.tagged is not None:
        bits.append(f"tag {f.tag}")
    if f.has_flex_override:
        bits.append(f"flexible {range_text(f.flex_override)}")
    return ", ".join(bits) + default_text(f)


def struct_min_bytes(s, ctx, msg):
    """Fewest wire bytes one element of `s` can take in any version of ctx
    (0 when some version can encode it in nothing)."""
    best = None
    for v in range(ctx[0], min(ctx[1], VMAX) + 1):
        vr = (v, v)
        total = 0
        flexible = inter(msg.flex, vr) is not None
        for f in s.fields:
            if f.tagged is not None or inter(f.versions, vr) is None:
                continue
            compact = inter(f.flex_range(msg), vr) is not None
            if f.kind == "scalar":
                total += SCALARS[f.elem][2]
            elif f.kind == "uuid":
                total += 16
            elif f.kind == "slice":
                total += 1 if compact else (2 if f.elem == "string" else 4)
            elif f.kind in ("prim_array", "struct_array"):
                total += 1 if compact else 4
            elif f.kind == "struct":
                total += struct_min_bytes(f.struct, inter(f.struct.ctx, vr) or vr, msg)
        if flexible:
            total += 1
        best = total if best is None else min(best, total)
        if v >= msg.valid[1]:
            break
    return best or 0


# ---------------------------------------------------------------- emitters


class Emitter:
    def __init__(self, msgs, apis):
        self.msgs = msgs  # every message, headers included, in output order
        self.apis = apis  # [(api name, request msg, response msg)] by api key

    # ---- header

    def header(self):
        o = []
        o.append(GENERATED_BANNER.format(file="kafka_codec.h"))
        o.append(HEADER_INTRO)
        o.append("#ifndef SL_KAFKA_CODEC_H\n#define SL_KAFKA_CODEC_H\n")
        o.append("#include <stdbool.h>\n#include <stddef.h>\n#include <stdint.h>\n")
        o.append('#include "kread.h"\n#include "kwrite.h"\n#include "sl.h"\n')
        o.append("/* The api keys this codec covers. */")
        o.append("enum kafka_api_key {")
        for name, req, _ in self.apis:
            o.append(f"\tKAFKA_API_{snake(name).upper()} = {req.api_key},")
        o.append("};\n")
        o.append(f"#define KAFKA_API_COUNT {len(self.apis)}\n")
        o.append("/* Version ranges from the schemas (FLEXIBLE_MIN -1: never flexible). */")
        for name, req, _ in self.apis:
            up = snake(name).upper()
            flex = req.flex[0] if req.flex is not None else -1
            o.append(f"#define KAFKA_{up}_VERSION_MIN {req.valid[0]}")
            o.append(f"#define KAFKA_{up}_VERSION_MAX {req.valid[1]}")
            o.append(f"#define KAFKA_{up}_FLEXIBLE_MIN {flex}")
        o.append("")
        o.append(API_TABLE_DECL)
        for m in self.msgs:
            o.append(self.header_message(m))
        o.append("#endif")
        return "\n".join(o) + "\n"

    def header_message(self, m):
        o = []
        what = f"api key {m.api_key}, " if m.api_key is not None else ""
        flex = range_text(m.flex)
        o.append(f"/* ---- {m.name} ({what}versions {range_text(m.valid)}, flexible {flex}) ---- */\n")
        for s in m.order:
            o.append(self.header_struct(m, s))
        for s in m.order:
            o.append(f"void {s.init_fn}(struct {s.cname} *out);")
        o.append(
            f"enum sl_err kafka_decode_{m.snake}(struct kread *r, int16_t version,\n"
            f"\tstruct {m.name} *out, struct karena *arena);")
        o.append(
            f"enum sl_err kafka_encode_{m.snake}(struct kwrite *w, int16_t version,\n"
            f"\tconst struct {m.name} *in);")
        o.append(
            f"enum sl_err kafka_sample_{m.snake}(struct {m.name} *out, struct karena *arena,\n"
            f"\tuint32_t seed);\n")
        return "\n".join(o)

    def header_struct(self, m, s):
        o = []
        if s.root:
            o.append(f"/* {m.name}: the whole message body. */")
        else:
            o.append(f"/* {s.cname}: {m.name} struct {s.name} (versions {range_text(s.ctx)}). */")
        o.append(f"struct {s.cname} {{")
        for i, f in enumerate(s.fields):
            if i:
                o.append("")
            about = c_comment_text(f.about.strip())
            doc = f"{f.name}: {field_doc(f)}." + (f" {about}" if about else "")
            lines = textwrap.wrap(doc, 86)
            if len(lines) == 1:
                o.append(f"\t/* {lines[0]} */")
            else:
                o.append(f"\t/* {lines[0]}")
                for ln in lines[1:]:
                    o.append(f"\t * {ln}")
                o.append("\t */")
            o.append(f"\t{self.c_decl(f)};")
        if not s.fields:
            o.append("\tchar unused;  /* no fields in any version */")
        o.append("};\n")
        return "\n".join(o)

    def c_decl(self, f):
        if f.kind == "scalar":
            return f"{SCALARS[f.elem][0]} {f.name}"
        if f.kind == "uuid":
            return f"struct kuuid {f.name}"
        if f.kind == "slice":
            return f"struct kslice {f.name}"
        if f.kind == "prim_array":
            return f"struct {PRIM_ARRAYS[f.elem][0]} {f.name}"
        if f.kind == "struct":
            return f"struct {f.struct.cname} {f.name}"
        return (f"struct {{\n\t\tint32_t count;  /* -1 = null */\n"
                f"\t\tstruct {f.struct.cname} *items;\n\t}} {f.name}")

    # ---- codec

    def codec(self):
        o = [GENERATED_BANNER.format(file="kafka_codec.c"), CODEC_INTRO]
        o.append('#include "kafka_codec.h"\n')
        o.append("#include <string.h>\n")
        o.append(CODEC_HELPERS)
        for m in self.msgs:
            o.append(self.codec_message(m))
        o.append(self.table())
        o.append(self.header_versions())
        return "\n".join(o).rstrip("\n") + "\n"

    def codec_message(self, m):
        o = [f"/* ================================ {m.name} ================================ */\n"]
        # Which helpers exist: arrays and default tests are emitted only when used.
        for s in m.order:
            for f in s.fields:
                if f.kind == "struct_array":
                    f.struct.used_as_array = True
                if f.kind == "struct" and f.tagged is not None:
                    mark_is_default(f.struct)
        for s in m.order:
            o.append(self.fn_init(m, s))
            if s.needs_is_default:
                o.append(self.fn_is_default(m, s))
            tags = self.tagged_fields(m, s)
            if tags:
                o.append(self.fn_decode_tags(m, s, tags))
            o.append(self.fn_decode(m, s, tags))
            if s.used_as_array:
                o.append(self.fn_decode_array(m, s))
            if tags:
                o.append(self.fn_encode_tags(m, s, tags))
            o.append(self.fn_encode(m, s, tags))
            if s.used_as_array:
                o.append(self.fn_encode_array(m, s))
        o.append(self.fn_public(m))
        return "\n".join(o)

    def tagged_fields(self, m, s):
        tctx = inter(s.ctx, m.flex)
        if tctx is None:
            return []
        tags = [f for f in s.fields if f.tagged is not None and inter(f.tagged, tctx) is not None]
        seen = set()
        for f in tags:
            if f.tag in seen:
                raise GenError(f"{f.where}: tag {f.tag} used twice")
            seen.add(f.tag)
        return sorted(tags, key=lambda f: f.tag)

    def fn_init(self, m, s):
        o = [f"/* {s.cname}: every field at its schema default. */",
             f"void {s.init_fn}(struct {s.cname} *out)", "{",
             "\tSL_ASSERT(out != NULL);", "\tmemset(out, 0, sizeof(*out));"]
        for f in s.fields:
            if f.kind == "struct":
                o.append(f"\t{f.struct.init_fn}(&out->{f.name});")
                continue
            d = default_expr(f)
            if d is not None:
                o.append(f"\tout->{f.name} = {d};")
        o.append("}\n")
        return "\n".join(o)

    def fn_is_default(self, m, s):
        terms = [default_test(f, "in->" + f.name, False) for f in s.fields]
        body = " &&\n\t       ".join(terms) if terms else "true"
        return "\n".join([
            f"/* {s.cname}: true when every field holds its default (tagged fields at their default are not sent). */",
            f"static bool {s.cname}_is_default(const struct {s.cname} *in)", "{",
            f"\treturn {body};", "}\n"])

    def decode_stmt(self, m, f, ctx, rd, dst):
        fmt = None
        if f.kind in ("slice", "prim_array", "struct_array"):
            fmt = fmt_expr(f, m, ctx)
        if f.kind == "scalar":
            return f"{dst} = kread_{SCALARS[f.elem][1]}({rd});"
        if f.kind == "uuid":
            return f"{dst} = kread_uuid({rd});"
        if f.kind == "slice":
            fn = "string" if f.elem == "string" else "bytes"
            return f"{dst} = kread_{fn}({rd}, {fmt});"
        if f.kind == "prim_array":
            return f"kread_array_{PRIM_ARRAYS[f.elem][1]}({rd}, {fmt}, arena, &{dst});"
        if f.kind == "struct":
            return f"{f.struct.cname}_decode({rd}, version, &{dst}, arena);"
        return (f"{f.struct.cname}_decode_array({rd}, version, {fmt}, arena,\n"
                f"\t\t\t&{dst}.count, &{dst}.items);")

    def encode_stmt(self, m, f, ctx, src):
        fmt = None
        if f.kind in ("slice", "prim_array", "struct_array"):
            fmt = fmt_expr(f, m, ctx)
        if f.kind == "scalar":
            return f"kwrite_{SCALARS[f.elem][1]}(w, {src});"
        if f.kind == "uuid":
            return f"kwrite_uuid(w, &{src});"
        if f.kind == "slice":
            if f.elem == "records":
                return f"kwrite_records(w, &{src}, {fmt});"
            return f"kwrite_{SLICES[f.elem]}(w, {src}, {fmt});"
        if f.kind == "prim_array":
            return f"kwrite_array_{PRIM_ARRAYS[f.elem][1]}(w, &{src}, {fmt});"
        if f.kind == "struct":
            return f"{f.struct.cname}_encode(w, version, &{src});"
        return f"{f.struct.cname}_encode_array(w, version, {fmt}, {src}.count, {src}.items);"

    def flex_decl(self, m, s, body):
        c = cond(m.flex, s.ctx)
        if re.search(r"\bflex\b", body) and c not in ("0", "1"):
            return f"\tconst unsigned flex = {c} ? KFMT_COMPACT : 0;\n\n"
        return ""

    def unused(self, body, names):
        out = ""
        for n in names:
            if not re.search(r"\b" + n + r"\b", body):
                out += f"\t(void){n};\n"
        return out

    def fn_decode_tags(self, m, s, tags):
        tctx = inter(s.ctx, m.flex)
        o = []
        for f in tags:
            c = cond(f.tagged, tctx)
            stmt = self.decode_stmt(m, f, inter(tctx, f.tagged), "&t", f"out->{f.name}")
            o.append(f"\t\t/* {f.name}: {field_doc(f)} */")
            o.append(f"\t\tcase {f.tag}:")
            if c == "1":
                o.append(f"\t\t\t{indent(stmt, 1)}")
            else:
                o.append(f"\t\t\tif ({c})\n\t\t\t\t{indent(stmt, 2)}\n\t\t\telse\n\t\t\t\tkread_skip_rest(&t);")
            o.append("\t\t\tbreak;")
        body = "\n".join(o)
        pre = self.unused(body, ["version", "arena"])
        return "\n".join([
            f"/* {s.cname}: the tagged-field section; unknown tags are skipped. */",
            f"static void {s.cname}_decode_tags(struct kread *r, int16_t version, struct {s.cname} *out, struct karena *arena)", "{",
            "\tuint32_t n = kread_tags_count(r);", "",
            pre + "\tfor (uint32_t i = 0; i < n && r->err == SL_OK; i++) {",
            "\t\tstruct kread t;", "",
            "\t\tswitch (kread_tag_begin(r, &t)) {",
            body,
            "\t\tdefault:", "\t\t\tkread_skip_rest(&t);", "\t\t\tbreak;", "\t\t}",
            "\t\tkread_tag_end(r, &t);", "\t}", "}\n"])

    def fn_decode(self, m, s, tags):
        o = [f"\t{s.init_fn}(out);"]
        for f in s.fields:
            if f.tagged is not None:
                continue
            c = cond(f.versions, s.ctx)
            if c == "0":
                continue
            stmt = self.decode_stmt(m, f, inter(s.ctx, f.versions), "r", f"out->{f.name}")
            o.append(f"\t/* {f.name}: {field_doc(f)} */")
            if c == "1":
                o.append(f"\t{stmt}")
            else:
                o.append(f"\tif ({c})\n\t\t{indent(stmt, 1)}")
        tc = cond(m.flex, s.ctx)
        if tc != "0":
            call = f"{s.cname}_decode_tags(r, version, out, arena);" if tags else "kread_tags_skip(r);"
            o.append("\t/* tagged fields */")
            o.append(f"\t{call}" if tc == "1" else f"\tif ({tc})\n\t\t{call}")
        body = "\n".join(o)
        pre = self.flex_decl(m, s, body) + self.unused(body, ["version", "arena"])
        what = "the message body" if s.root else f"one {s.name}"
        return "\n".join([
            f"/* {s.cname}: decodes {what}; fields absent in `version` keep their defaults. */",
            f"static void {s.cname}_decode(struct kread *r, int16_t version, struct {s.cname} *out, struct karena *arena)", "{",
            pre + body, "}\n"])

    def fn_decode_array(self, m, s):
        mb = struct_min_bytes(s, s.ctx, m)
        return "\n".join([
            f"/* {s.cname}: an array of them; each takes at least {mb} byte(s). */",
            f"static void {s.cname}_decode_array(struct kread *r, int16_t version, unsigned fmt, struct karena *arena, int32_t *count, struct {s.cname} **items)", "{",
            f"\tint32_t n = kread_array_len(r, fmt, {mb});", "",
            "\t*items = kread_alloc(r, arena, n, sizeof(**items));",
            "\t*count = r->err == SL_OK ? n : 0;",
            "\tfor (int32_t i = 0; i < *count && r->err == SL_OK; i++)",
            f"\t\t{s.cname}_decode(r, version, &(*items)[i], arena);", "}\n"])

    def fn_encode_tags(self, m, s, tags):
        tctx = inter(s.ctx, m.flex)
        o, decl = [], []
        for f in tags:
            c = cond(f.tagged, tctx)
            nd = default_test(f, f"in->{f.name}", True)
            decl.append(f"\tconst bool has_{f.name} = {nd if c == '1' else c + ' && ' + nd};")
        o.append("\tkwrite_uvarint(w, " + " + ".join(f"(uint32_t)has_{f.name}" for f in tags) + ");")
        for f in tags:
            stmt = self.encode_stmt(m, f, inter(tctx, f.tagged), f"in->{f.name}")
            o.append(f"\t/* {f.name}: {field_doc(f)} */")
            o.append(f"\tif (has_{f.name}) {{")
            o.append(f"\t\tkwrite_uvarint(w, {f.tag});")
            o.append("\t\tmark = kwrite_tag_begin(w);")
            o.append(f"\t\t{indent(stmt, 1)}")
            o.append("\t\tkwrite_tag_end(w, mark);")
            o.append("\t}")
        body = "\n".join(decl) + "\n" + "\n".join(o)
        pre = self.unused(body, ["version"])
        return "\n".join([
            f"/* {s.cname}: the tagged-field section, in tag order; a field is sent only when it differs from its default. */",
            f"static void {s.cname}_encode_tags(struct kwrite *w, int16_t version, const struct {s.cname} *in)", "{",
            "\n".join(decl), "\tsize_t mark;", "", pre + "\n".join(o), "}\n"])

    def fn_encode(self, m, s, tags):
        o = []
        for f in s.fields:
            if f.tagged is not None:
                continue
            c = cond(f.versions, s.ctx)
            if c == "0":
                continue
            stmt = self.encode_stmt(m, f, inter(s.ctx, f.versions), f"in->{f.name}")
            o.append(f"\t/* {f.name}: {field_doc(f)} */")
            if c == "1":
                o.append(f"\t{stmt}")
            else:
                o.append(f"\tif ({c})\n\t\t{indent(stmt, 1)}")
        tc = cond(m.flex, s.ctx)
        if tc != "0":
            call = f"{s.cname}_encode_tags(w, version, in);" if tags else "kwrite_uvarint(w, 0);"
            o.append("\t/* tagged fields */" if tags else "\t/* tagged fields: none known, so none sent */")
            o.append(f"\t{call}" if tc == "1" else f"\tif ({tc})\n\t\t{call}")
        body = "\n".join(o)
        pre = self.flex_decl(m, s, body) + self.unused(body, ["version", "in", "w"])
        what = "the message body" if s.root else f"one {s.name}"
        return "\n".join([
            f"/* {s.cname}: encodes {what} as `version` defines it. */",
            f"static void {s.cname}_encode(struct kwrite *w, int16_t version, const struct {s.cname} *in)", "{",
            pre + body, "}\n"])

    def fn_encode_array(self, m, s):
        return "\n".join([
            f"/* {s.cname}: an array of them (count -1 = null, if the field allows it). */",
            f"static void {s.cname}_encode_array(struct kwrite *w, int16_t version, unsigned fmt, int32_t count, const struct {s.cname} *items)", "{",
            "\tif (count > 0 && items == NULL) {",
            "\t\tkwrite_fail(w, SL_EINVAL);", "\t\treturn;", "\t}",
            "\tkwrite_array_len(w, count, fmt);",
            "\tfor (int32_t i = 0; i < count && w->err == SL_OK; i++)",
            f"\t\t{s.cname}_encode(w, version, &items[i]);", "}\n"])

    def fn_public(self, m):
        lo, hi = m.valid
        return "\n".join([
            block_comment(
                f"kafka_decode_{m.snake}: decodes a {m.name} of `version` ({lo}..{hi}) "
                "from r into *out; arrays come from `arena`, strings and records point "
                "into r's buffer. Returns r->err: SL_OK, SL_EINVAL (version out of "
                "range), SL_ETRUNC, SL_ECORRUPT or SL_ENOMEM (arena full). On error "
                "*out is partly filled (counts always match their allocations)."),
            f"enum sl_err kafka_decode_{m.snake}(struct kread *r, int16_t version, struct {m.name} *out, struct karena *arena)", "{",
            "\tSL_ASSERT(r != NULL && out != NULL && arena != NULL);",
            f"\tif (version < {lo} || version > {hi}) {{",
            "\t\tkread_fail(r, SL_EINVAL);", "\t\treturn r->err;", "\t}",
            f"\t{m.name}_decode(r, version, out, arena);",
            "\tSL_ASSERT(r->p <= r->end);", "\treturn r->err;", "}\n",
            block_comment(
                f"kafka_encode_{m.snake}: appends *in as `version` ({lo}..{hi}) defines it. "
                "Fields absent in that version are not sent. Returns w->err: SL_OK, "
                "SL_EINVAL (bad version, null where not nullable, string too long), "
                "SL_ENOMEM (past the writer's cap or its hole table)."),
            f"enum sl_err kafka_encode_{m.snake}(struct kwrite *w, int16_t version, const struct {m.name} *in)", "{",
            "\tSL_ASSERT(w != NULL && in != NULL);",
            f"\tif (version < {lo} || version > {hi}) {{",
            "\t\tkwrite_fail(w, SL_EINVAL);", "\t\treturn w->err;", "\t}",
            f"\t{m.name}_encode(w, version, in);",
            "\tSL_ASSERT(w->len <= w->size_max);", "\treturn w->err;", "}\n"])

    def table(self):
        o = ["/* ================================ the api table ================================ */\n"]
        for name, req, resp in self.apis:
            for m in (req, resp):
                o.append("\n".join([
                    f"static enum sl_err {m.snake}_decode_any(struct kread *r, int16_t version,",
                    "\tvoid *out, struct karena *arena)", "{",
                    f"\treturn kafka_decode_{m.snake}(r, version, out, arena);", "}\n",
                    f"static enum sl_err {m.snake}_encode_any(struct kwrite *w, int16_t version,",
                    "\tconst void *in)", "{",
                    f"\treturn kafka_encode_{m.snake}(w, version, in);", "}\n",
                    f"static enum sl_err {m.snake}_sample_any(void *out, struct karena *arena,",
                    "\tuint32_t seed)", "{",
                    f"\treturn kafka_sample_{m.snake}(out, arena, seed);", "}\n"]))
        o.append("const struct kafka_api kafka_api_table[KAFKA_API_COUNT] = {")
        for name, req, resp in self.apis:
            flex = req.flex[0] if req.flex is not None else -1
            up = snake(name).upper()
            o.append("\t{")
            o.append(f"\t\t.api_key = KAFKA_API_{up},")
            o.append(f"\t\t.name = {c_string(name)},")
            o.append(f"\t\t.version_min = {req.valid[0]},")
            o.append(f"\t\t.version_max = {req.valid[1]},")
            o.append(f"\t\t.flexible_min = {flex},")
            o.append(f"\t\t.request_size = sizeof(struct {req.name}),")
            o.append(f"\t\t.response_size = sizeof(struct {resp.name}),")
            for m, side in ((req, "request"), (resp, "response")):
                o.append(f"\t\t.decode_{side} = {m.snake}_decode_any,")
                o.append(f"\t\t.encode_{side} = {m.snake}_encode_any,")
                o.append(f"\t\t.sample_{side} = {m.snake}_sample_any,")
            o.append("\t},")
        o.append("};\n")
        o.append("const struct kafka_api *kafka_api_find(int16_t api_key)\n{")
        o.append("\tswitch (api_key) {")
        for i, (name, req, _) in enumerate(self.apis):
            o.append(f"\tcase KAFKA_API_{snake(name).upper()}: return &kafka_api_table[{i}];")
        o.append("\tdefault: return NULL;\n\t}\n}\n")
        return "\n".join(o)

    def header_versions(self):
        v0 = sorted((k, v) for k, v in REQUEST_HEADER_V0)
        o = ["int16_t kafka_request_header_version(int16_t api_key, int16_t api_version)", "{",
             "\tconst struct kafka_api *api = kafka_api_find(api_key);", ""]
        for name, ver in v0:
            o.append(f"\t/* RequestHeader v0 (no ClientId): {name} v{ver} only. */")
            o.append(f"\tif (api_key == KAFKA_API_{snake(name).upper()} && api_version == {ver})")
            o.append("\t\treturn 0;")
        o += ["\tif (api != NULL && api->flexible_min >= 0 && api_version >= api->flexible_min)",
              "\t\treturn 2;", "\treturn 1;", "}\n",
              "int16_t kafka_response_header_version(int16_t api_key, int16_t api_version)", "{",
              "\tconst struct kafka_api *api = kafka_api_find(api_key);", ""]
        for name in sorted(RESPONSE_HEADER_V0_APIS):
            o.append(f"\t/* {name} responses always use ResponseHeader v0. */")
            o.append(f"\tif (api_key == KAFKA_API_{snake(name).upper()})")
            o.append("\t\treturn 0;")
        o += ["\tif (api != NULL && api->flexible_min >= 0 && api_version >= api->flexible_min)",
              "\t\treturn 1;", "\treturn 0;", "}\n"]
        o += [
            "enum sl_err kafka_decode_request_header_auto(struct kread *r, struct RequestHeader *out,",
            "\tstruct karena *arena)", "{",
            "\tint16_t api_key;", "\tint16_t api_version;", "",
            "\tSL_ASSERT(r != NULL && out != NULL);",
            "\tif (r->err == SL_OK && kread_left(r) < 4) {",
            "\t\tkread_fail(r, SL_ETRUNC);", "\t\treturn r->err;", "\t}",
            "\tif (r->err != SL_OK)", "\t\treturn r->err;",
            "\tapi_key = (int16_t)be16_load(r->p);",
            "\tapi_version = (int16_t)be16_load(r->p + 2);",
            "\treturn kafka_decode_request_header(r,",
            "\t\tkafka_request_header_version(api_key, api_version), out, arena);", "}"]
        return "\n".join(o)

    # ---- samples

    def sample(self):
        o = [GENERATED_BANNER.format(file="kafka_codec_sample.c"), SAMPLE_INTRO]
        o.append('#include "kafka_codec.h"\n')
        o.append(SAMPLE_HELPERS)
        for m in self.msgs:
            o.append(f"/* ---- {m.name} ---- */\n")
            for s in m.order:
                o.append(self.fn_sample(m, s))
            o.append("\n".join([
                f"enum sl_err kafka_sample_{m.snake}(struct {m.name} *out, struct karena *arena,",
                "\tuint32_t seed)", "{",
                "\tstruct sample sm = { arena, seed, SL_OK };", "",
                "\tSL_ASSERT(out != NULL && arena != NULL);",
                f"\tsample_{m.name}(&sm, out);",
                "\treturn sm.err;", "}\n"]))
        return "\n".join(o).rstrip("\n") + "\n"

    def fn_sample(self, m, s):
        o = []
        for f in s.fields:
            d = f"out->{f.name}"
            if f.kind == "scalar":
                if f.elem == "bool":
                    o.append(f"\t{d} = {'false' if f.default else 'true'};")
                elif f.elem == "float64":
                    o.append(f"\t{d} = sample_f64(sm);")
                else:
                    if SAMPLE_INT_LO <= f.default <= SAMPLE_INT_HI:
                        raise GenError(f"{f.where}: default collides with sample values")
                    o.append(f"\t{d} = ({SCALARS[f.elem][0]})sample_int(sm);")
            elif f.kind == "uuid":
                o.append(f"\t{d} = sample_uuid(sm);")
            elif f.kind == "slice":
                if f.default not in (None, ""):
                    raise GenError(f"{f.where}: string default collides with sample values")
                o.append(f"\t{d} = sample_slice(sm);")
            elif f.kind == "prim_array":
                ctype = {"int16": "int16_t", "int32": "int32_t", "int64": "int64_t",
                         "string": "struct kslice", "uuid": "struct kuuid"}[f.elem]
                one = {"int16": "(int16_t)sample_int(sm)", "int32": "(int32_t)sample_int(sm)",
                       "int64": "sample_int(sm)", "string": "sample_slice(sm)",
                       "uuid": "sample_uuid(sm)"}[f.elem]
                o.append(f"\t{d}.items = sample_alloc(sm, sizeof({ctype}));")
                o.append(f"\t{d}.count = sample_count({d}.items);")
                o.append(f"\tfor (int32_t i = 0; i < {d}.count; i++)")
                o.append(f"\t\t{d}.items[i] = {one};")
            elif f.kind == "struct":
                o.append(f"\tsample_{f.struct.cname}(sm, &{d});")
            else:
                o.append(f"\t{d}.items = sample_alloc(sm, sizeof(*{d}.items));")
                o.append(f"\t{d}.count = sample_count({d}.items);")
                o.append(f"\tfor (int32_t i = 0; i < {d}.count; i++)")
                o.append(f"\t\tsample_{f.struct.cname}(sm, &{d}.items[i]);")
        body = "\n".join(o) if o else "\t(void)sm;\n\t(void)out;"
        return "\n".join([
            f"static void sample_{s.cname}(struct sample *sm, struct {s.cname} *out)", "{",
            body, "}\n"])


def mark_is_default(s):
    """s and every struct embedded in it need an _is_default helper."""
    todo = [s]
    for _ in range(1000):
        if not todo:
            return
        cur = todo.pop()
        if cur.needs_is_default:
            continue
        cur.needs_is_default = True
        todo.extend(f.struct for f in cur.fields if f.kind == "struct")
    raise GenError("struct nesting too deep")


def indent(stmt, n):
    return stmt.replace("\n", "\n" + "\t" * n)


LINE_MAX = 100


def block_comment(text, ind=""):
    lines = [ind + "/*"]
    lines += [ind + " * " + ln for ln in textwrap.wrap(text, 76)]
    lines.append(ind + " */")
    return "\n".join(lines)


def vlen(line):
    return len(line.expandtabs(8))


def reflow(text):
    """Keeps generated lines within LINE_MAX columns: a long one-line
    comment becomes a block comment, a long code line is split after the
    last ', ' (else before the last ' && ', else after the last '(') that
    fits."""
    out = []
    for line in text.split("\n"):
        m = re.match(r"^(\t*)/\* (.*) \*/$", line)
        if m and vlen(line) > LINE_MAX:
            ind = m.group(1)
            out.append(ind + "/*")
            out += [ind + " * " + ln for ln in textwrap.wrap(m.group(2), LINE_MAX - 12)]
            out.append(ind + " */")
            continue
        stripped = line.lstrip("\t")
        if stripped.startswith(("/*", "*")) or '"' in line:
            out.append(line)
            continue
        ind = line[: len(line) - len(stripped)]
        cont = ind + "\t"
        for _ in range(20):
            if vlen(line) <= LINE_MAX:
                break
            cut = -1
            for sep, keep in ((", ", 1), (" && ", 0), ("(", 1)):
                pos = line.rfind(sep, 0, len(line))
                while pos > 0 and vlen(line[: pos + keep]) > LINE_MAX - 4:
                    pos = line.rfind(sep, 0, pos)
                if pos > len(ind):
                    cut = (pos, keep, len(sep))
                    break
            if cut == -1:
                break
            pos, keep, n = cut
            out.append(line[: pos + keep].rstrip())
            line = cont + line[pos + keep:].lstrip()
        out.append(line)
    return "\n".join(out)


GENERATED_BANNER = """/*
 * {file} - GENERATED by tools/gen_kafka_codec.py from the Apache Kafka 3.9
 * message schemas (the JSON files in shared/kafka-protocol). Do not edit by hand:
 * change the generator and run `make codec`.
 */"""

HEADER_INTRO = """/*
 * The Kafka request/response codec: one C struct per message and per nested
 * struct, with Kafka's own field names, and for every message
 *   kafka_init_<message>()    every field at its schema default
 *   kafka_decode_<message>()  bytes -> struct (struct kread, struct karena)
 *   kafka_encode_<message>()  struct -> bytes (struct kwrite)
 *   kafka_sample_<message>()  every field set to a non-default value
 * where <message> is e.g. metadata_request, fetch_response, request_header.
 *
 * Types: int8..int64/uint16/uint32 -> <stdint.h> types, float64 -> double,
 * bool -> bool, string/bytes/records -> struct kslice (len -1 = null) that
 * points into the receive buffer, uuid -> struct kuuid, []T -> { count
 * (-1 = null), items }. Tagged fields are plain members; they are sent only
 * when they differ from their default, and unknown tags are skipped.
 *
 * Ownership: a decoded struct borrows the receive buffer (slices) and the
 * arena (arrays) and is valid while both are. Nothing here frees memory.
 *
 * Runs on: any thread; no state outside the arguments (the api table is
 * read-only).
 */"""

API_TABLE_DECL = """/* Generic codec entry points over `void *` structs (fuzzers, tests). */
typedef enum sl_err kafka_decode_fn(struct kread *r, int16_t version, void *out,
	struct karena *arena);
typedef enum sl_err kafka_encode_fn(struct kwrite *w, int16_t version, const void *in);
typedef enum sl_err kafka_sample_fn(void *out, struct karena *arena, uint32_t seed);

/* One row per api key: what the schemas define and how to code it. */
struct kafka_api {
	int16_t api_key;
	const char *name;        /* "Metadata" */
	int16_t version_min;
	int16_t version_max;
	int16_t flexible_min;    /* first flexible version, -1 if none */
	size_t request_size;     /* sizeof the request struct */
	size_t response_size;
	kafka_decode_fn *decode_request;
	kafka_encode_fn *encode_request;
	kafka_sample_fn *sample_request;
	kafka_decode_fn *decode_response;
	kafka_encode_fn *encode_response;
	kafka_sample_fn *sample_response;
};

/* The rows, by ascending api key. */
extern const struct kafka_api kafka_api_table[KAFKA_API_COUNT];

/* The row for `api_key`, or NULL when this codec does not cover it. */
const struct kafka_api *kafka_api_find(int16_t api_key);

/*
 * Which header version frames a request / response of this api version:
 * RequestHeader 2 for flexible versions, 0 for ControlledShutdown v0, else
 * 1; ResponseHeader 1 for flexible versions except ApiVersions, else 0.
 * Unknown api keys get 1 / 0; versions above the maximum follow the
 * maximum's flexibility.
 */
int16_t kafka_request_header_version(int16_t api_key, int16_t api_version);
int16_t kafka_response_header_version(int16_t api_key, int16_t api_version);

/*
 * Peeks the api key and version at r, then decodes the RequestHeader in
 * the version they call for. Same errors as kafka_decode_request_header.
 */
struct RequestHeader;
enum sl_err kafka_decode_request_header_auto(struct kread *r, struct RequestHeader *out,
	struct karena *arena);
"""

CODEC_INTRO = """/*
 * Layout: for each message, for each struct from the innermost out:
 *   kafka_init_<struct>   defaults (public)
 *   <Struct>_is_default   only for structs sent as tagged fields
 *   <Struct>_decode_tags / _decode / _decode_array
 *   <Struct>_encode_tags / _encode / _encode_array
 * then the public kafka_decode_/kafka_encode_ pair. `flex` is KFMT_COMPACT in
 * the message's flexible versions. Every loop is bounded by a count checked
 * against KREAD_COUNT_MAX and the bytes left (kread.c); there is no
 * recursion (struct nesting is fixed by the schemas).
 */"""

CODEC_HELPERS = """static SL_UNUSED bool kafka_uuid_is_zero(const struct kuuid *u)
{
	for (size_t i = 0; i < sizeof(u->b); i++) {
		if (u->b[i] != 0)
			return false;
	}
	return true;
}

static SL_UNUSED bool kafka_slice_equals(const struct kslice *s, const char *lit)
{
	size_t n = strlen(lit);

	return s->len >= 0 && (size_t)s->len == n && (n == 0 || memcmp(s->ptr, lit, n) == 0);
}
"""

SAMPLE_INTRO = """/*
 * Sample values: every field of every struct set to something other than
 * its schema default (integers 10..99, bool = !default, non-empty strings,
 * bytes and records, non-zero uuids, SAMPLE_COUNT elements per array), so
 * that encoding any version sends every field it has, tagged ones included.
 * Used by the round-trip unit tests and as fuzz seeds. Values depend only on
 * `seed`. Slices point into a static text; arrays come from the arena.
 */"""

SAMPLE_HELPERS = """#define SAMPLE_COUNT 2

struct sample {
	struct karena *arena;
	uint32_t next;
	enum sl_err err;
};

static const char sample_text[] =
	"sluice-sample-abcdefghijklmnopqrstuvwxyz-0123456789-ABCDEFGHIJKLMNOPQRSTUVWXYZ";

static int64_t sample_int(struct sample *sm)
{
	return 10 + (int64_t)(sm->next++ % 90);
}

static SL_UNUSED double sample_f64(struct sample *sm)
{
	return 0.5 + (double)(sm->next++ % 90);
}

static struct kslice sample_slice(struct sample *sm)
{
	uint32_t k = sm->next++;
	struct kslice s = { (const uint8_t *)sample_text + k % 16, (int32_t)(1 + k % 24) };

	return s;
}

static SL_UNUSED struct kuuid sample_uuid(struct sample *sm)
{
	struct kuuid u;
	uint32_t k = sm->next++;

	for (size_t i = 0; i < sizeof(u.b); i++)
		u.b[i] = (uint8_t)(k + i + 1);
	return u;
}

/* How many elements an array got: SAMPLE_COUNT, or 0 if sample_alloc failed. */
static SL_UNUSED int32_t sample_count(const void *items)
{
	return items != NULL ? SAMPLE_COUNT : 0;
}

/* Room for SAMPLE_COUNT elements, or NULL (and SL_ENOMEM) past the arena. */
static SL_UNUSED void *sample_alloc(struct sample *sm, size_t elem_size)
{
	void *p = karena_alloc(sm->arena, SAMPLE_COUNT * elem_size);

	if (p == NULL && sm->err == SL_OK)
		sm->err = SL_ENOMEM;
	return p;
}
"""


# ---------------------------------------------------------------- main


def build(schemas):
    msgs = []
    apis = []
    for name in SLUICE_APIS:
        req = Message(load_schema(schemas / f"{name}Request.json"), name)
        resp = Message(load_schema(schemas / f"{name}Response.json"), name)
        if (req.kind, resp.kind) != ("request", "response") or req.api_key != resp.api_key:
            raise GenError(f"{name}: request/response schemas do not pair up")
        if req.valid != resp.valid or req.flex != resp.flex:
            raise GenError(f"{name}: request and response version ranges differ")
        apis.append((name, req, resp))
    keys = [a[1].api_key for a in apis]
    if len(set(keys)) != len(keys):
        raise GenError("an api key appears twice in SLUICE_APIS")
    apis.sort(key=lambda a: a[1].api_key)
    for hname in HEADERS:
        h = Message(load_schema(schemas / f"{hname}.json"), hname)
        if h.kind != "header":
            raise GenError(f"{hname}: not a header schema")
        msgs.append(h)
    for _, req, resp in apis:
        msgs += [req, resp]
    return msgs, apis


def main(argv):
    repo = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schemas", type=Path, default=repo.parent / "shared" / "kafka-protocol",
                    help="directory of Kafka message schemas (*.json)")
    ap.add_argument("--out", type=Path, default=repo / "net", help="output directory")
    args = ap.parse_args(argv)
    try:
        msgs, apis = build(args.schemas)
        em = Emitter(msgs, apis)
        files = {
            "kafka_codec.h": em.header(),
            "kafka_codec.c": em.codec(),
            "kafka_codec_sample.c": em.sample(),
        }
    except GenError as e:
        print(f"gen_kafka_codec: {e}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for fname in sorted(files):
        (args.out / fname).write_text(reflow(files[fname]), encoding="utf-8", newline="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
