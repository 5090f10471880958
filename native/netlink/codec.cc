#include "codec.h"

#include <arpa/inet.h>
#include <endian.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "keys.h"

namespace nl {

bool ParseMac(const std::string& s, uint8_t* out, size_t* n) {
  size_t i = 0, count = 0;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  while (i < s.size()) {
    if (count == 32 || i + 1 >= s.size()) return false;
    int hi = nib(s[i]), lo = nib(s[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[count++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
    if (i < s.size()) {
      if (s[i] != ':') return false;
      if (++i == s.size()) return false;
    }
  }
  *n = count;
  return count > 0;
}

std::string ErrnoCode(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : "E" + std::to_string(err);
}

namespace {

bool ToInteger(Napi::Value v, double min, double max, uint64_t* out) {
  if (v.IsBigInt()) {
    bool lossless = false;
    uint64_t x = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless || static_cast<double>(x) > max) return false;
    *out = x;
    return true;
  }
  if (v.IsBoolean()) {
    *out = v.As<Napi::Boolean>().Value() ? 1 : 0;
    return true;
  }
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d) || d < min || d > max) return false;
  *out = d < 0 ? static_cast<uint64_t>(static_cast<int64_t>(d)) : static_cast<uint64_t>(d);
  return true;
}

// A Buffer, or a hex string (how decoded binary values come back), as bytes.
bool BytesOf(Napi::Value v, std::vector<uint8_t>& out) {
  if (v.IsBuffer()) {
    auto buf = v.As<Napi::Buffer<uint8_t>>();
    out.assign(buf.Data(), buf.Data() + buf.Length());
    return true;
  }
  return v.IsString() && ParseHex(v.As<Napi::String>().Utf8Value(), out);
}

bool EncodeAttrs(Napi::Env env, Napi::Object obj, const Table* table, Builder& b, std::string& err);

bool EncodeStruct(Napi::Object obj, const Struct& s, Builder& b, std::string& err) {
  std::vector<uint8_t> raw(s.size, 0);
  Napi::Array names;
  if (!OwnKeys(obj, &names, err)) return false;
  KeyText key;
  for (uint32_t i = 0; i < names.Length(); i++) {
    Napi::Value name = names.Get(i);
    if (!key.Read(obj.Env(), name)) {
      err = std::string("a field name of ") + s.name + " is not a string";
      return false;
    }
    const nl::Field* f = nullptr;
    for (const auto& field : s.fields)
      if (key.view() == field.name) f = &field;
    if (!f) {
      err = "unknown field '" + key.str() + "' of " + s.name;
      return false;
    }
    Napi::Value v = obj.Get(name);
    if (v.IsUndefined()) continue;
    double max = f->size == 1 ? 0xff : f->size == 2 ? 0xffff : 0xffffffffu;
    double min = f->is_signed ? -(max + 1) / 2 : 0;
    if (f->is_signed) max = (max - 1) / 2;
    uint64_t x;
    if (!ToInteger(v, min, max, &x)) {
      err = std::string("field ") + s.name + "." + f->name + " out of range";
      return false;
    }
    uint32_t x32 = f->big_endian ? htonl(static_cast<uint32_t>(x)) : static_cast<uint32_t>(x);
    uint16_t x16 = f->big_endian ? htons(static_cast<uint16_t>(x)) : static_cast<uint16_t>(x);
    uint8_t x8 = static_cast<uint8_t>(x);
    std::memcpy(raw.data() + f->offset,
                f->size == 1   ? static_cast<void*>(&x8)
                : f->size == 2 ? static_cast<void*>(&x16)
                               : static_cast<void*>(&x32),
                f->size);
  }
  b.PutHeader(raw.data(), raw.size());
  return true;
}

bool EncodeValue(Napi::Env env, const Attr* a, Napi::Value v, Napi::Object siblings, const Table* table, Builder& b,
                 std::string& err) {
  auto bad = [&](const char* what) {
    err = std::string("attribute ") + table->name + "." + a->name + ": " + what;
    return false;
  };
  uint64_t x = 0;
  switch (a->kind) {
    case Kind::U8:
      if (!ToInteger(v, 0, 0xff, &x)) return bad("expected an integer 0..255");
      b.AttrScalar<uint8_t>(a->type, static_cast<uint8_t>(x));
      return true;
    case Kind::U16:
      if (!ToInteger(v, 0, 0xffff, &x)) return bad("expected an integer 0..65535");
      b.AttrScalar<uint16_t>(a->type, static_cast<uint16_t>(x));
      return true;
    case Kind::U32:
      if (!ToInteger(v, 0, 4294967295.0, &x)) return bad("expected a 32-bit unsigned integer");
      b.AttrScalar<uint32_t>(a->type, static_cast<uint32_t>(x));
      return true;
    case Kind::U64:
      if (!ToInteger(v, 0, 18446744073709551615.0, &x)) return bad("expected a 64-bit unsigned integer");
      b.AttrScalar<uint64_t>(a->type, x);
      return true;
    case Kind::S32:
      if (!ToInteger(v, -2147483648.0, 2147483647.0, &x)) return bad("expected a 32-bit signed integer");
      b.AttrScalar<int32_t>(a->type, static_cast<int32_t>(x));
      return true;
    case Kind::Be16:
      if (!ToInteger(v, 0, 0xffff, &x)) return bad("expected an integer 0..65535");
      b.AttrScalar<uint16_t>(a->type, htons(static_cast<uint16_t>(x)));
      return true;
    case Kind::Be32:
      if (!ToInteger(v, 0, 4294967295.0, &x)) return bad("expected a 32-bit unsigned integer");
      b.AttrScalar<uint32_t>(a->type, htonl(static_cast<uint32_t>(x)));
      return true;
    case Kind::Be64: {
      if (v.IsString()) {  // decoded 64-bit values beyond 2^53 come back as decimal strings
        std::string s = v.As<Napi::String>().Utf8Value();
        char* end = nullptr;
        errno = 0;
        unsigned long long n = std::strtoull(s.c_str(), &end, 10);
        if (s.empty() || *end || errno) return bad("expected a 64-bit unsigned integer");
        x = n;
      } else if (!ToInteger(v, 0, 18446744073709551615.0, &x)) {
        return bad("expected a 64-bit unsigned integer");
      }
      b.AttrScalar<uint64_t>(a->type, htobe64(x));
      return true;
    }
    case Kind::SBe32:
      if (!ToInteger(v, -2147483648.0, 2147483647.0, &x)) return bad("expected a 32-bit signed integer");
      b.AttrScalar<uint32_t>(a->type, htonl(static_cast<uint32_t>(static_cast<int32_t>(x))));
      return true;
    case Kind::List: {
      if (!v.IsArray()) return bad("expected an array");
      Napi::Array arr = v.As<Napi::Array>();
      size_t off = b.BeginNest(a->type);
      for (uint32_t i = 0; i < arr.Length(); i++) {
        Napi::Value e = arr.Get(i);
        if (!e.IsObject()) return bad("list items must be objects");
        size_t eoff = b.BeginNest(a->list_elem);
        if (!EncodeAttrs(env, e.As<Napi::Object>(), a->nested, b, err)) return false;
        b.EndNest(eoff);
      }
      b.EndNest(off);
      return !b.NestTooLong(off) || bad("list longer than 65535 bytes");
    }
    case Kind::String: {
      if (!v.IsString()) return bad("expected a string");
      std::string s = v.As<Napi::String>().Utf8Value();
      if (s.find('\0') != std::string::npos) return bad("string contains NUL");
      b.AttrString(a->type, s);
      return true;
    }
    case Kind::Binary: {
      std::vector<uint8_t> raw;
      if (!BytesOf(v, raw)) return bad("expected a Buffer or a hex string");
      b.Attr(a->type, raw.data(), raw.size());
      return true;
    }
    case Kind::Flag:
      if (!v.IsBoolean()) return bad("expected a boolean");
      if (v.As<Napi::Boolean>().Value()) b.AttrFlag(a->type);
      return true;
    case Kind::Addr: {
      if (!v.IsString()) return bad("expected an IP address string");
      std::string s = v.As<Napi::String>().Utf8Value();
      uint8_t raw[16];
      if (inet_pton(AF_INET, s.c_str(), raw) == 1)
        b.Attr(a->type, raw, 4);
      else if (inet_pton(AF_INET6, s.c_str(), raw) == 1)
        b.Attr(a->type, raw, 16);
      else
        return bad("not an IPv4 or IPv6 address");
      return true;
    }
    case Kind::Mac: {
      if (!v.IsString()) return bad("expected a MAC address string");
      uint8_t raw[32];
      size_t n = 0;
      if (!ParseMac(v.As<Napi::String>().Utf8Value(), raw, &n)) return bad("not a MAC address");
      b.Attr(a->type, raw, n);
      return true;
    }
    case Kind::Nested: {
      if (!v.IsObject()) return bad("expected an object");
      size_t off = b.BeginNest(a->type);
      if (!EncodeAttrs(env, v.As<Napi::Object>(), a->nested, b, err)) return false;
      b.EndNest(off);
      return !b.NestTooLong(off) || bad("nest longer than 65535 bytes");
    }
    case Kind::NestedMsg: {
      if (!v.IsObject()) return bad("expected { header, attrs }");
      Napi::Object o = v.As<Napi::Object>();
      size_t off = b.BeginNest(a->type);
      Napi::Value h = o.Get("header"), at = o.Get("attrs");
      if (!EncodeStruct(h.IsObject() ? h.As<Napi::Object>() : Napi::Object::New(env), *a->header, b, err)) return false;
      if (at.IsObject() && !EncodeAttrs(env, at.As<Napi::Object>(), a->nested, b, err)) return false;
      b.EndNest(off);
      return !b.NestTooLong(off) || bad("nest longer than 65535 bytes");
    }
    case Kind::Variant: {
      std::vector<uint8_t> raw;
      if (!v.IsObject() || v.IsBuffer()) {  // raw data for a kind without a table
        if (!BytesOf(v, raw)) return bad("expected an object, a Buffer or a hex string");
        b.Attr(a->type | NLA_F_NESTED, raw.data(), raw.size());
        return true;
      }
      Napi::Value key = siblings.Get(a->selector);
      if (!key.IsString()) return bad("needs its selector attribute");
      std::string k = key.As<Napi::String>().Utf8Value();
      const Table* t = a->variants->Find(k.data(), k.size());
      if (!t) return bad("no attribute table for this kind; pass a Buffer");
      if (!v.IsObject()) return bad("expected an object");
      size_t off = b.BeginNest(a->type);
      if (!EncodeAttrs(env, v.As<Napi::Object>(), t, b, err)) return false;
      b.EndNest(off);
      return !b.NestTooLong(off) || bad("nest longer than 65535 bytes");
    }
  }
  return bad("unsupported kind");
}

bool EncodeAttrs(Napi::Env env, Napi::Object obj, const Table* table, Builder& b, std::string& err) {
  Napi::Array names;
  if (!OwnKeys(obj, &names, err)) return false;
  KeyText key;
  for (uint32_t i = 0; i < names.Length(); i++) {
    Napi::Value name = names.Get(i);
    if (!key.Read(env, name)) {
      err = std::string("an attribute name of ") + table->name + " is not a string";
      return false;
    }
    Napi::Value v = obj.Get(name);
    if (v.IsUndefined()) continue;
    if (key.view() == "unknown") {
      if (!v.IsArray()) {
        err = "unknown: expected an array";
        return false;
      }
      Napi::Array arr = v.As<Napi::Array>();
      for (uint32_t j = 0; j < arr.Length(); j++) {
        Napi::Value e = arr.Get(j);
        if (!e.IsObject()) {
          err = "unknown: expected { type, data }";
          return false;
        }
        Napi::Object u = e.As<Napi::Object>();
        uint64_t type;
        std::vector<uint8_t> raw;
        if (!ToInteger(u.Get("type"), 1, 0x3fff, &type) || !BytesOf(u.Get("data"), raw)) {
          err = "unknown: expected { type, data }";
          return false;
        }
        uint16_t t = static_cast<uint16_t>(type) | (u.Get("nested").ToBoolean() ? NLA_F_NESTED : 0);
        b.Attr(t, raw.data(), raw.size());
      }
      continue;
    }
    const Attr* a = table->ByName(key.view().data(), key.view().size());
    if (!a) {
      err = "unknown attribute '" + key.str() + "' for " + table->name;
      return false;
    }
    if (!EncodeValue(env, a, v, obj, table, b, err)) return false;
  }
  return true;
}

}  // namespace

bool EncodeMessage(Napi::Env env, int protocol, Napi::Object req, uint32_t seq, Builder& b, std::string& err) {
  uint64_t type = 0, flags = 0;
  if (!ToInteger(req.Get("type"), 0, 0xffff, &type)) {
    err = "message type must be an integer";
    return false;
  }
  if (!ToInteger(req.Get("flags"), 0, 0xffff, &flags)) {
    err = "message flags must be an integer";
    return false;
  }
  const MessageSpec* spec = Registry::Get().Find(protocol, static_cast<uint16_t>(type));
  if (!spec) {
    err = "no schema for message type " + std::to_string(type);
    return false;
  }
  size_t start = b.Size();
  b.BeginMessage(static_cast<uint16_t>(type), static_cast<uint16_t>(flags), seq);
  Napi::Value h = req.Get("header"), a = req.Get("attrs");
  if (!EncodeStruct(h.IsObject() ? h.As<Napi::Object>() : Napi::Object::New(env), *spec->header, b, err) ||
      (a.IsObject() && !EncodeAttrs(env, a.As<Napi::Object>(), spec->attrs, b, err))) {
    b.Bytes().resize(start);
    return false;
  }
  b.EndMessage();
  return true;
}

Napi::Value ParseJson(Napi::Env env, const std::string& json) {
  // Pure ASCII (the usual case: names, numbers, hex) becomes a one-byte string without UTF-8
  // decoding, which costs as much as the parse itself on large dumps.
  bool ascii = true;
  for (unsigned char c : json)
    if (c >= 0x80) {
      ascii = false;
      break;
    }
  // Raw Node-API calls, each checked, and no chaining: while a worker thread is being
  // terminated no JS can run, every call below fails, and node-addon-api's chained form
  // (env.Global().Get(...).As<Object>().Get(...)) then calls into an empty value whose env is
  // null — a fatal error that took the whole process down (test/kernel/release.test.ts).
  // Failure returns an empty value of this env: callers pass it on, and node-addon-api
  // swallows the unthrowable error (NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS, binding.gyp).
  napi_value str, global, json_obj, parse, result;
  napi_status st = ascii ? napi_create_string_latin1(env, json.data(), json.size(), &str)
                         : napi_create_string_utf8(env, json.data(), json.size(), &str);
  if (st != napi_ok || napi_get_global(env, &global) != napi_ok ||
      napi_get_named_property(env, global, "JSON", &json_obj) != napi_ok ||
      napi_get_named_property(env, json_obj, "parse", &parse) != napi_ok ||
      napi_call_function(env, json_obj, parse, 1, &str, &result) != napi_ok)
    return Napi::Value(env, nullptr);
  return Napi::Value(env, result);
}

bool ParseHex(const std::string& s, std::vector<uint8_t>& out) {
  if (s.size() % 2) return false;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  out.resize(s.size() / 2);
  for (size_t i = 0; i < out.size(); i++) {
    int hi = nib(s[2 * i]), lo = nib(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

}  // namespace nl
