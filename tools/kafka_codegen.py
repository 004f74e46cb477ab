#!/usr/bin/env python3
"""Generates evert's Kafka message codec from src/kafka/protocol/messages.spec.

Usage: kafka_codegen.py SPEC OUT_HEADER OUT_SOURCE

The spec format is described at the top of messages.spec. For every api the
generator emits `<Name>Request` and `<Name>Response` structs with
`decode(Decoder&, int16_t version)` and `encode(Encoder&, int16_t version)`,
plus the table of apis (`kApis`) that ApiVersions answers from.
"""

import re
import sys

MAX_VERSION = 32767

PRIMITIVES = {
    # spec type: (C++ type, decode call, encode call, minimum wire bytes, default)
    "bool": ("bool", "d.read_bool()", "e.write_bool({v})", 1, "false"),
    "int8": ("int8_t", "d.read_int8()", "e.write_int8({v})", 1, "0"),
    "int16": ("int16_t", "d.read_int16()", "e.write_int16({v})", 2, "0"),
    "int32": ("int32_t", "d.read_int32()", "e.write_int32({v})", 4, "0"),
    "int64": ("int64_t", "d.read_int64()", "e.write_int64({v})", 8, "0"),
    "uint16": ("uint16_t", "d.read_uint16()", "e.write_uint16({v})", 2, "0"),
    "uint32": ("uint32_t", "d.read_uint32()", "e.write_uint32({v})", 4, "0"),
    "float64": ("double", "d.read_float64()", "e.write_float64({v})", 8, "0"),
    "uuid": ("Uuid", "d.read_uuid()", "e.write_uuid({v})", 16, "{}"),
}
VARIABLE = {"string", "bytes", "records"}


class SpecError(Exception):
    pass


class Field:
    def __init__(self, name, type_, versions, nullable, tag, default, line):
        self.name = name
        self.type = type_
        self.versions = versions
        self.nullable = nullable
        self.tag = tag
        self.default = default
        self.line = line
        self.children = []

    @property
    def is_array(self):
        return self.type.startswith("[]")

    @property
    def elem(self):
        return self.type[2:] if self.is_array else self.type

    @property
    def is_struct(self):
        return self.elem not in PRIMITIVES and self.elem not in VARIABLE

    def ever_nullable(self):
        return self.nullable is not None


class Api:
    def __init__(self, key, name, lo, hi, flex, line):
        self.key = key
        self.name = name
        self.lo = lo
        self.hi = hi
        self.flex = flex  # first flexible version or None
        self.line = line
        self.request = []
        self.response = []


def parse_versions(text, api, line):
    m = re.fullmatch(r"(\d+)\+", text)
    if m:
        return (int(m.group(1)), MAX_VERSION)
    m = re.fullmatch(r"(\d+)-(\d+)", text)
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
        if lo > hi:
            raise SpecError(f"line {line}: empty version range {text}")
        return (lo, hi)
    m = re.fullmatch(r"(\d+)", text)
    if m:
        return (int(m.group(1)), int(m.group(1)))
    if text == "all":
        return (api.lo, api.hi)
    raise SpecError(f"line {line}: bad version range '{text}'")


def parse(path):
    apis = []
    api = None
    block = None
    stack = []  # (indent, field list)
    with open(path) as f:
        lines = f.readlines()
    for no, raw in enumerate(lines, 1):
        text = raw.rstrip("\n")
        if "#" in text:
            text = text[: text.index("#")]
        if not text.strip():
            continue
        indent = len(text) - len(text.lstrip(" "))
        words = text.split()
        if indent == 0 and words[0] == "api":
            # api <key> <Name> <min>-<max> flexible <N>+|none
            if len(words) != 6 or words[4] != "flexible":
                raise SpecError(f"line {no}: expected 'api KEY Name MIN-MAX flexible N+|none'")
            lo_hi = re.fullmatch(r"(\d+)-(\d+)", words[3])
            if not lo_hi:
                raise SpecError(f"line {no}: bad version range {words[3]}")
            flex = None
            if words[5] != "none":
                m = re.fullmatch(r"(\d+)\+", words[5])
                if not m:
                    raise SpecError(f"line {no}: bad flexible version {words[5]}")
                flex = int(m.group(1))
            api = Api(int(words[1]), words[2], int(lo_hi.group(1)), int(lo_hi.group(2)), flex, no)
            apis.append(api)
            block = None
            continue
        if indent == 0 and words[0] in ("request", "response"):
            if api is None:
                raise SpecError(f"line {no}: {words[0]} before any api")
            block = api.request if words[0] == "request" else api.response
            stack = [(0, block)]
            continue
        if block is None:
            raise SpecError(f"line {no}: field outside a request/response block")
        if indent % 2 != 0 or indent == 0:
            raise SpecError(f"line {no}: fields are indented by multiples of 2 spaces")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if not stack:
            raise SpecError(f"line {no}: bad indentation")
        parent_indent, parent = stack[-1]
        if indent != parent_indent + 2:
            raise SpecError(f"line {no}: indented too far")
        if len(words) < 2:
            raise SpecError(f"line {no}: expected '<name> <type> ...'")
        name, type_ = words[0], words[1]
        rest = words[2:]
        versions = (api.lo, api.hi)
        nullable = None
        tag = None
        default = None
        i = 0
        if i < len(rest) and re.fullmatch(r"\d+(\+|-\d+)?|all", rest[i]):
            versions = parse_versions(rest[i], api, no)
            i += 1
        while i < len(rest):
            if rest[i] == "nullable" and i + 1 < len(rest):
                nullable = parse_versions(rest[i + 1], api, no)
                i += 2
            elif rest[i] == "tag" and i + 1 < len(rest):
                tag = int(rest[i + 1])
                i += 2
            elif rest[i] == "default" and i + 1 < len(rest):
                default = " ".join(rest[i + 1:])
                i = len(rest)
            else:
                raise SpecError(f"line {no}: unexpected '{rest[i]}'")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise SpecError(f"line {no}: field names are snake_case: {name}")
        field = Field(name, type_, versions, nullable, tag, default, no)
        elem = field.elem
        if elem not in PRIMITIVES and elem not in VARIABLE and not re.fullmatch(r"[A-Z][A-Za-z0-9]*", elem):
            raise SpecError(f"line {no}: unknown type {type_}")
        if tag is not None and api.flex is None:
            raise SpecError(f"line {no}: tagged field in an api without flexible versions")
        parent.append(field)
        if field.is_struct:
            stack.append((indent, field.children))
    for a in apis:
        for kind, fields in (("request", a.request), ("response", a.response)):
            check_structs(a, kind, fields)
    keys = [a.key for a in apis]
    if len(keys) != len(set(keys)):
        raise SpecError("an api key is declared twice")
    return apis


def check_structs(api, kind, fields, seen=None):
    if seen is None:
        seen = set()
    for f in fields:
        if f.is_struct:
            if not f.children:
                raise SpecError(f"line {f.line}: struct {f.elem} has no fields")
            if f.elem in seen:
                raise SpecError(f"line {f.line}: struct name {f.elem} used twice in {api.name} {kind}")
            seen.add(f.elem)
            check_structs(api, kind, f.children, seen)


def vcond(rng, api, var="v"):
    """A C++ condition for 'version in rng', simplified against the api range."""
    lo, hi = rng
    parts = []
    if lo > api.lo:
        parts.append(f"{var} >= {lo}")
    if hi < api.hi:
        parts.append(f"{var} <= {hi}")
    return " && ".join(parts) if parts else "true"


def cpp_literal(field, text):
    if text == "null":
        return "std::nullopt"
    if text in ("true", "false"):
        return text
    if text.startswith('"'):
        return text
    return text


def cpp_type(field):
    elem = field.elem
    if elem in PRIMITIVES:
        base = PRIMITIVES[elem][0]
    elif elem == "string" or elem == "bytes":
        base = "std::string"
    elif elem == "records":
        base = "Records"
    else:
        base = elem
    if field.is_array:
        t = f"std::vector<{base}>"
        return f"std::optional<{t}>" if field.ever_nullable() else t
    if elem in ("string", "bytes") and field.ever_nullable():
        return f"std::optional<{base}>"
    if field.is_struct and field.ever_nullable():
        return f"std::optional<{base}>"
    return base


def default_init(field):
    if field.default is not None:
        return f" = {cpp_literal(field, field.default)}"
    if field.is_array:
        return ""
    if field.elem in PRIMITIVES:
        return f" = {PRIMITIVES[field.elem][4]}" if field.elem != "uuid" else "{}"
    return ""


def min_wire_bytes(field, flex_possible, api):
    """A lower bound of the bytes one value of this field takes on the wire."""
    if field.tag is not None:
        return 0
    if field.is_array:
        return 1 if flex_possible else 4
    elem = field.elem
    if elem in PRIMITIVES:
        return PRIMITIVES[elem][3]
    if elem == "string":
        return 1 if flex_possible else 2
    if elem in ("bytes", "records"):
        return 1 if flex_possible else 4
    # A struct: the fields present in every version; at least 1 for safety.
    total = sum(min_wire_bytes(c, flex_possible, api) for c in field.children
                if c.versions[0] <= api.lo and c.versions[1] >= api.hi)
    return max(total, 1)


class Gen:
    def __init__(self, api):
        self.api = api
        self.flex_possible = api.flex is not None

    def flex_expr(self):
        if self.api.flex is None:
            return "false"
        if self.api.flex <= self.api.lo:
            return "true"
        return f"v >= {self.api.flex}"

    # ---------- declarations ----------
    def declare_fields(self, fields, indent, out):
        pad = " " * indent
        for f in fields:
            if f.is_struct:
                out.append(f"{pad}struct {f.elem} {{")
                self.declare_fields(f.children, indent + 2, out)
                out.append(f"{pad}  void decode(Decoder& d, int16_t v);")
                out.append(f"{pad}  void encode(Encoder& e, int16_t v) const;")
                out.append(f"{pad}}};")
        for f in fields:
            out.append(f"{pad}{cpp_type(f)} {f.name}{default_init(f)};")

    # ---------- decoding ----------
    def decode_value(self, f, target, indent, out, in_array=False):
        pad = " " * indent
        elem = f.elem
        nullable_c = vcond(f.nullable, self.api) if f.nullable else "false"
        if elem in PRIMITIVES:
            out.append(f"{pad}{target} = {PRIMITIVES[elem][1]};")
        elif elem in ("string", "bytes"):
            kind = "string" if elem == "string" else "bytes"
            if f.ever_nullable() and not in_array:
                out.append(f"{pad}if ({nullable_c}) {{")
                out.append(f"{pad}  {target} = d.read_nullable_{kind}(flex);")
                out.append(f"{pad}}} else {{")
                out.append(f"{pad}  {target} = d.read_{kind}(flex);")
                out.append(f"{pad}}}")
            else:
                out.append(f"{pad}{target} = d.read_{kind}(flex);")
        elif elem == "records":
            out.append(f"{pad}{target} = d.read_records(flex);")
            if not f.ever_nullable():
                out.append(f"{pad}if ({target}.is_null) d.fail(\"null records in {f.name}\");")
            else:
                out.append(f"{pad}if ({target}.is_null && !({nullable_c})) d.fail(\"null records in {f.name}\");")
        else:
            if f.ever_nullable() and not in_array:
                out.append(f"{pad}{target}.emplace().decode(d, v);")
            else:
                out.append(f"{pad}{target}.decode(d, v);")

    def decode_field(self, f, indent, out):
        pad = " " * indent
        if f.is_array:
            elem_field = Field(f.name, f.elem, f.versions, None, None, None, f.line)
            elem_field.children = f.children
            minb = min_wire_bytes(elem_field, self.flex_possible, self.api)
            nullable_c = vcond(f.nullable, self.api) if f.nullable else "false"
            out.append(f"{pad}{{")
            out.append(f"{pad}  int32_t n = d.read_array_length(flex, {minb});")
            out.append(f"{pad}  if (n < 0) {{")
            if f.ever_nullable():
                out.append(f"{pad}    if ({nullable_c}) {{ {f.name}.reset(); }} else {{ d.fail(\"null array {f.name}\"); }}")
            else:
                out.append(f"{pad}    d.fail(\"null array {f.name}\");")
            out.append(f"{pad}  }} else {{")
            vec = f"{f.name}.emplace()" if f.ever_nullable() else f.name
            out.append(f"{pad}    auto& vec = {vec};")
            out.append(f"{pad}    vec.clear();")
            out.append(f"{pad}    vec.reserve(size_t(std::min<int32_t>(n, 1024)));")
            out.append(f"{pad}    for (int32_t i = 0; i < n && d.ok(); ++i) {{")
            out.append(f"{pad}      auto& item = vec.emplace_back();")
            self.decode_value(elem_field, "item", indent + 6, out, in_array=True)
            out.append(f"{pad}    }}")
            out.append(f"{pad}  }}")
            out.append(f"{pad}}}")
        else:
            self.decode_value(f, f.name, indent, out)

    def emit_untagged(self, fields, out, emit_field):
        """The `flex` flag, then each untagged field in wire order, guarded by
        its version range; shared by decoders and encoders."""
        out.append("  [[maybe_unused]] const bool flex = " + self.flex_expr() + ";")
        for f in fields:
            if f.tag is not None:
                continue
            cond = vcond(f.versions, self.api)
            if cond == "true":
                emit_field(f, 2, out)
            else:
                out.append(f"  if ({cond}) {{")
                emit_field(f, 4, out)
                out.append("  }")

    def decode_body(self, fields, out):
        self.emit_untagged(fields, out, self.decode_field)
        if self.api.flex is not None:
            tagged = [f for f in fields if f.tag is not None]
            out.append("  if (flex) {")
            if tagged:
                out.append("    d.read_tagged_fields([&](uint32_t tag, Decoder& sub) {")
                out.append("      [[maybe_unused]] Decoder& d = sub;")
                out.append("      switch (tag) {")
                for f in tagged:
                    out.append(f"        case {f.tag}:")
                    out.append(f"          if (!({vcond(f.versions, self.api)})) return false;")
                    inner = []
                    self.decode_field(f, 10, inner)
                    out.extend(inner)
                    out.append("          return true;")
                out.append("        default:")
                out.append("          return false;")
                out.append("      }")
                out.append("    });")
            else:
                out.append("    d.read_tagged_fields([](uint32_t, Decoder&) { return false; });")
            out.append("  }")

    # ---------- encoding ----------
    def encode_value(self, f, value, indent, out, in_array=False):
        pad = " " * indent
        elem = f.elem
        if elem in PRIMITIVES:
            out.append(f"{pad}{PRIMITIVES[elem][2].format(v=value)};")
        elif elem in ("string", "bytes"):
            kind = "string" if elem == "string" else "bytes"
            if f.ever_nullable() and not in_array:
                nullable_c = vcond(f.nullable, self.api)
                out.append(f"{pad}if ({nullable_c}) {{")
                out.append(f"{pad}  e.write_nullable_{kind}({value}, flex);")
                out.append(f"{pad}}} else {{")
                out.append(f"{pad}  e.write_{kind}({value}.value_or(std::string()), flex);")
                out.append(f"{pad}}}")
            else:
                out.append(f"{pad}e.write_{kind}({value}, flex);")
        elif elem == "records":
            out.append(f"{pad}e.write_records({value}, flex);")
        else:
            if f.ever_nullable() and not in_array:
                out.append(f"{pad}if ({value}) {value}->encode(e, v);")
            else:
                out.append(f"{pad}{value}.encode(e, v);")

    def encode_field(self, f, indent, out):
        pad = " " * indent
        if f.is_array:
            elem_field = Field(f.name, f.elem, f.versions, None, None, None, f.line)
            elem_field.children = f.children
            if f.ever_nullable():
                out.append(f"{pad}if (!{f.name}) {{")
                out.append(f"{pad}  e.write_null_array(flex);")
                out.append(f"{pad}}} else {{")
                out.append(f"{pad}  e.write_array_length(int32_t({f.name}->size()), flex);")
                out.append(f"{pad}  for (const auto& item : *{f.name}) {{")
                self.encode_value(elem_field, "item", indent + 4, out, in_array=True)
                out.append(f"{pad}  }}")
                out.append(f"{pad}}}")
            else:
                out.append(f"{pad}e.write_array_length(int32_t({f.name}.size()), flex);")
                out.append(f"{pad}for (const auto& item : {f.name}) {{")
                self.encode_value(elem_field, "item", indent + 2, out, in_array=True)
                out.append(f"{pad}}}")
        else:
            self.encode_value(f, f.name, indent, out)

    def default_check(self, f):
        """A C++ expression true when a tagged field holds its default."""
        if f.is_array:
            return f"!{f.name} || {f.name}->empty()" if f.ever_nullable() else f"{f.name}.empty()"
        if f.elem in PRIMITIVES:
            d = cpp_literal(f, f.default) if f.default is not None else PRIMITIVES[f.elem][4]
            if f.elem == "uuid":
                return f"{f.name} == Uuid{{}}"
            return f"{f.name} == {d}"
        if f.elem in ("string", "bytes"):
            if f.ever_nullable():
                return f"!{f.name}"
            return f"{f.name}.empty()"
        if f.elem == "records":
            return f"{f.name}.size_bytes() == 0"
        if f.ever_nullable():
            return f"!{f.name}"
        return "false"

    def encode_body(self, fields, out):
        self.emit_untagged(fields, out, self.encode_field)
        if self.api.flex is not None:
            tagged = sorted([f for f in fields if f.tag is not None], key=lambda f: f.tag)
            out.append("  if (flex) {")
            if not tagged:
                out.append("    e.write_empty_tagged_fields();")
            else:
                out.append("    std::vector<std::pair<uint32_t, Encoder>> tags;")
                for f in tagged:
                    out.append(f"    if (({vcond(f.versions, self.api)}) && !({self.default_check(f)})) {{")
                    out.append("      Encoder sub;")
                    out.append("      {")
                    out.append("        Encoder& e = sub;")
                    inner = []
                    self.encode_field(f, 8, inner)
                    out.extend(inner)
                    out.append("      }")
                    out.append(f"      tags.emplace_back({f.tag}, std::move(sub));")
                    out.append("    }")
                out.append("    e.write_uvarint(tags.size());")
                out.append("    for (auto& [tag, sub] : tags) {")
                out.append("      e.write_uvarint(tag);")
                out.append("      e.write_uvarint(sub.size_bytes());")
                out.append("      e.append(std::move(sub));")
                out.append("    }")
            out.append("  }")

    def define_structs(self, qual, fields, out):
        for f in fields:
            if f.is_struct:
                name = f"{qual}::{f.elem}"
                self.define_structs(name, f.children, out)
                out.append(f"void {name}::decode(Decoder& d, [[maybe_unused]] int16_t v) {{")
                self.decode_body(f.children, out)
                out.append("}")
                out.append("")
                out.append(f"void {name}::encode(Encoder& e, [[maybe_unused]] int16_t v) const {{")
                self.encode_body(f.children, out)
                out.append("}")
                out.append("")


def generate(apis, header_path, source_path, spec_name):
    h = []
    h.append(f"// Generated by tools/kafka_codegen.py from {spec_name}. Do not edit.")
    h.append("#pragma once")
    h.append("")
    h.append("#include <cstdint>")
    h.append("#include <optional>")
    h.append("#include <string>")
    h.append("#include <vector>")
    h.append("")
    h.append('#include "kafka/protocol/wire.h"')
    h.append("")
    h.append("namespace evert::kafka {")
    h.append("")
    h.append("struct ApiInfo {")
    h.append("  int16_t key;")
    h.append("  const char* name;")
    h.append("  int16_t min_version;")
    h.append("  int16_t max_version;")
    h.append("  int16_t first_flexible_version;  // -1: no flexible version implemented")
    h.append("};")
    h.append("")
    h.append(f"inline constexpr ApiInfo kApis[] = {{")
    for a in sorted(apis, key=lambda a: a.key):
        h.append(f'    {{{a.key}, "{a.name}", {a.lo}, {a.hi}, {a.flex if a.flex is not None else -1}}},')
    h.append("};")
    h.append("")
    h.append("// nullptr when evert does not implement the api.")
    h.append("const ApiInfo* find_api(int16_t key);")
    h.append("")
    h.append("namespace api_key {")
    for a in sorted(apis, key=lambda a: a.key):
        h.append(f"inline constexpr int16_t k{a.name} = {a.key};")
    h.append("}  // namespace api_key")
    h.append("")
    for a in apis:
        g = Gen(a)
        for kind, fields in (("Request", a.request), ("Response", a.response)):
            h.append(f"struct {a.name}{kind} {{")
            h.append(f"  static constexpr int16_t kApiKey = {a.key};")
            h.append(f"  static constexpr int16_t kMinVersion = {a.lo};")
            h.append(f"  static constexpr int16_t kMaxVersion = {a.hi};")
            h.append(f"  static constexpr int16_t kFirstFlexibleVersion = {a.flex if a.flex is not None else -1};")
            g.declare_fields(fields, 2, h)
            h.append("  // Reads the body; check d.ok() / d.status() afterwards.")
            h.append("  void decode(Decoder& d, int16_t v);")
            h.append("  void encode(Encoder& e, int16_t v) const;")
            h.append("};")
            h.append("")
    h.append("}  // namespace evert::kafka")
    h.append("")

    c = []
    c.append(f"// Generated by tools/kafka_codegen.py from {spec_name}. Do not edit.")
    c.append('#include "kafka/protocol/messages.h"')
    c.append("")
    c.append("#include <algorithm>")
    c.append("")
    c.append("namespace evert::kafka {")
    c.append("")
    c.append("const ApiInfo* find_api(int16_t key) {")
    c.append("  for (const auto& a : kApis)")
    c.append("    if (a.key == key) return &a;")
    c.append("  return nullptr;")
    c.append("}")
    c.append("")
    for a in apis:
        g = Gen(a)
        for kind, fields in (("Request", a.request), ("Response", a.response)):
            qual = f"{a.name}{kind}"
            g.define_structs(qual, fields, c)
            c.append(f"void {qual}::decode(Decoder& d, [[maybe_unused]] int16_t v) {{")
            g.decode_body(fields, c)
            c.append("}")
            c.append("")
            c.append(f"void {qual}::encode(Encoder& e, [[maybe_unused]] int16_t v) const {{")
            g.encode_body(fields, c)
            c.append("}")
            c.append("")
    c.append("}  // namespace evert::kafka")
    c.append("")

    for path, lines in ((header_path, h), (source_path, c)):
        text = "\n".join(lines)
        try:
            with open(path) as f:
                if f.read() == text:
                    continue
        except OSError:
            pass
        with open(path, "w") as f:
            f.write(text)


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    spec, header, source = sys.argv[1:]
    try:
        apis = parse(spec)
    except SpecError as e:
        print(f"{spec}: {e}", file=sys.stderr)
        return 1
    generate(apis, header, source, "src/kafka/protocol/messages.spec")
    return 0


if __name__ == "__main__":
    sys.exit(main())
