#include "views/event_decoder.h"

#include <simdjson.h>

#include <limits>

#include <fmt/format.h>

namespace evert::views {

static_assert(EventDecoder::kPadding >= simdjson::SIMDJSON_PADDING);

using sql::Type;
using sql::Value;
namespace od = simdjson::ondemand;

struct EventDecoder::Impl {
  sql::Schema schema;
  od::parser parser;
  std::vector<uint8_t> seen;
  std::string copy;  // padded copy when the caller's buffer is too short

  int column_of(std::string_view key) const {
    for (size_t i = 0; i < schema.size(); ++i) {
      if (schema[i].name == key) return int(i);
    }
    return -1;
  }

  bool read_value(od::value v, Type type, Value* out, std::string_view name, std::string* reason) {
    od::json_type jt;
    if (v.type().get(jt)) {
      *reason = fmt::format("field \"{}\" is not valid JSON", name);
      return false;
    }
    if (jt == od::json_type::null) {
      out->type = Type::kNull;
      return true;
    }
    auto mistyped = [&] {
      *reason = fmt::format("field \"{}\" is not of type {}", name, sql::type_name(type));
      return false;
    };
    switch (type) {
      case Type::kInt: {
        int64_t x;
        if (jt != od::json_type::number || v.get_int64().get(x)) return mistyped();
        out->type = Type::kInt;
        out->i = x;
        return true;
      }
      case Type::kDouble: {
        double x;
        if (jt == od::json_type::string) {  // how write_json() spells non-finite doubles
          std::string_view s;
          if (v.get_string().get(s)) return mistyped();
          if (s == "NaN") {
            x = std::numeric_limits<double>::quiet_NaN();
          } else if (s == "Infinity") {
            x = std::numeric_limits<double>::infinity();
          } else if (s == "-Infinity") {
            x = -std::numeric_limits<double>::infinity();
          } else {
            return mistyped();
          }
          out->type = Type::kDouble;
          out->d = x;
          return true;
        }
        if (jt != od::json_type::number || v.get_double().get(x)) return mistyped();
        out->type = Type::kDouble;
        out->d = x;
        return true;
      }
      case Type::kText: {
        std::string_view s;
        if (jt != od::json_type::string || v.get_string().get(s)) return mistyped();
        out->type = Type::kText;
        out->s.assign(s.data(), s.size());
        return true;
      }
      case Type::kBool: {
        bool b;
        if (jt != od::json_type::boolean || v.get_bool().get(b)) return mistyped();
        *out = Value::boolean(b);
        return true;
      }
      case Type::kTimestamp: {
        if (jt == od::json_type::number) {
          int64_t ms;
          constexpr int64_t kMsMax = INT64_MAX / 1000;
          if (v.get_int64().get(ms) || ms > kMsMax || ms < -kMsMax) return mistyped();
          *out = Value::timestamp(ms * 1000);
          return true;
        }
        std::string_view s;
        if (jt != od::json_type::string || v.get_string().get(s)) return mistyped();
        auto t = sql::parse_timestamp(s);
        if (!t) return mistyped();
        *out = Value::timestamp(*t);
        return true;
      }
      case Type::kNull: return mistyped();
    }
    return mistyped();
  }

  bool read_object(od::object obj, sql::Row* row, std::string* reason) {
    row->resize(schema.size());
    for (Value& v : *row) v.type = Type::kNull;
    seen.assign(schema.size(), 0);
    for (auto field_result : obj) {
      if (field_result.error()) {
        *reason = "not valid JSON";
        return false;
      }
      od::field field = field_result.value_unsafe();
      std::string_view key;
      if (field.unescaped_key().get(key)) {
        *reason = "not valid JSON";
        return false;
      }
      int col = column_of(key);
      if (col < 0) continue;  // extra fields are ignored
      if (!read_value(field.value(), schema[size_t(col)].type, &(*row)[size_t(col)], schema[size_t(col)].name, reason))
        return false;
      seen[size_t(col)] = 1;
    }
    for (size_t i = 0; i < schema.size(); ++i) {
      if (!seen[i]) {
        *reason = fmt::format("missing field \"{}\"", schema[i].name);
        return false;
      }
    }
    return true;
  }

  bool iterate(std::string_view json, size_t capacity, od::document* doc, std::string* reason) {
    const char* data = json.data();
    if (capacity < json.size() + simdjson::SIMDJSON_PADDING) {
      copy.assign(json);
      copy.resize(json.size() + simdjson::SIMDJSON_PADDING);
      data = copy.data();
      capacity = copy.size();
    }
    if (parser.iterate(data, json.size(), capacity).get(*doc)) {
      *reason = "not valid JSON";
      return false;
    }
    return true;
  }
};

EventDecoder::EventDecoder(sql::Schema schema) : impl_(std::make_unique<Impl>()) { impl_->schema = std::move(schema); }
EventDecoder::~EventDecoder() = default;

bool EventDecoder::decode_row(std::string_view json, size_t capacity, sql::Row* row, std::string* reason) {
  od::document doc;
  if (!impl_->iterate(json, capacity, &doc, reason)) return false;
  od::object obj;
  if (doc.get_object().get(obj)) {
    *reason = "not a JSON object";
    return false;
  }
  return impl_->read_object(obj, row, reason);
}

bool EventDecoder::decode_change(std::string_view json, size_t capacity, std::optional<sql::Row>* before,
                                 std::optional<sql::Row>* after, std::string* reason) {
  od::document doc;
  if (!impl_->iterate(json, capacity, &doc, reason)) return false;
  od::object obj;
  if (doc.get_object().get(obj)) {
    *reason = "not a JSON object";
    return false;
  }
  before->reset();
  after->reset();
  for (auto field_result : obj) {
    std::string_view key;
    if (field_result.error()) {
      *reason = "not valid JSON";
      return false;
    }
    od::field field = field_result.value_unsafe();
    if (field.unescaped_key().get(key)) {
      *reason = "not valid JSON";
      return false;
    }
    if (key != "before" && key != "after") continue;
    od::value v = field.value();
    od::json_type jt;
    if (v.type().get(jt)) {
      *reason = "not valid JSON";
      return false;
    }
    if (jt == od::json_type::null) continue;
    od::object inner;
    if (v.get_object().get(inner)) {
      *reason = fmt::format("\"{}\" is not an object", key);
      return false;
    }
    sql::Row row;
    if (!impl_->read_object(inner, &row, reason)) return false;
    (key == "before" ? *before : *after) = std::move(row);
  }
  return true;
}

void write_row_json(JsonWriter& w, const sql::Schema& schema, const sql::Row& row) {
  w.begin_object();
  for (size_t i = 0; i < schema.size() && i < row.size(); ++i) {
    w.key(schema[i].name);
    sql::write_json(w, row[i]);
  }
  w.end_object();
}

std::string row_to_json(const sql::Schema& schema, const sql::Row& row) {
  JsonWriter w;
  write_row_json(w, schema, row);
  return w.str();
}

}  // namespace evert::views
