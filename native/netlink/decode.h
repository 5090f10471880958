// Schema-driven decoder, independent of N-API so that it can run under a fuzzer.
// The Visitor receives typed values; see JsonVisitor (json.cc).
//
//   struct Visitor {
//     void Uint(const Attr*, uint64_t); void Int(const Attr*, int64_t);
//     void Str(const Attr*, const char*, size_t); void Bytes(const Attr*, const uint8_t*, size_t);
//     void Flag(const Attr*); void Addr(const Attr*, const uint8_t*, size_t);
//     void Mac(const Attr*, const uint8_t*, size_t);
//     void Field(const nl::Field&, int64_t);               // header struct field
//     void Begin(const char* name, const Attr*); void End();  // nested object
//     void BeginList(const Attr*); void EndList();  // array of objects (Begin(nullptr) per item)
//     void Unknown(uint16_t type, bool nested, const uint8_t*, size_t);
//   };
#pragma once

#include <arpa/inet.h>
#include <endian.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "attr.h"
#include "schema.h"

namespace nl {

struct DecodeError {
  const char* what = nullptr;  // nullptr: no error
};

// Which top-level attributes a caller wants: all but `omit`, or only `only` when non-empty.
struct AttrFilter {
  std::vector<uint16_t> omit, only;
  bool Skip(uint16_t type) const {
    if (!only.empty()) return std::find(only.begin(), only.end(), type) == only.end();
    return std::find(omit.begin(), omit.end(), type) != omit.end();
  }
};

// `filter`: attributes left out entirely at this level (a caller that needs less).
template <typename V>
bool DecodeAttrs(const uint8_t* p, size_t len, const Table* table, V& v, DecodeError& err, int depth = 0,
                 const AttrFilter* filter = nullptr);

template <typename V>
void DecodeStruct(const uint8_t* p, const Struct& s, V& v) {
  for (const auto& f : s.fields) {
    int64_t val = 0;
    switch (f.size) {
      case 1: {
        uint8_t x;
        std::memcpy(&x, p + f.offset, 1);
        val = f.is_signed ? static_cast<int8_t>(x) : x;
        break;
      }
      case 2: {
        uint16_t x;
        std::memcpy(&x, p + f.offset, 2);
        if (f.big_endian) x = ntohs(x);
        val = f.is_signed ? static_cast<int16_t>(x) : x;
        break;
      }
      default: {
        uint32_t x;
        std::memcpy(&x, p + f.offset, 4);
        if (f.big_endian) x = ntohl(x);
        val = f.is_signed ? static_cast<int32_t>(x) : static_cast<int64_t>(x);
        break;
      }
    }
    v.Field(f, val);
  }
}

// Finds the string value of the sibling attribute named `selector` in the same attribute set.
inline bool FindSelector(const uint8_t* p, size_t len, const Table* table, const char* selector, const char** out,
                         size_t* out_len) {
  const Attr* sel = table->ByName(selector, std::strlen(selector));
  if (!sel) return false;
  bool found = false;
  ForEachAttr(p, len, [&](const AttrView& a) {
    if (a.type == sel->type && !found) {
      size_t n = strnlen(reinterpret_cast<const char*>(a.data), a.len);
      *out = reinterpret_cast<const char*>(a.data);
      *out_len = n;
      found = true;
    }
  });
  return found;
}

template <typename V>
bool DecodeValue(const Attr* spec, const AttrView& a, const uint8_t* set, size_t set_len, const Table* table, V& v,
                 DecodeError& err, int depth) {
  auto sized = [&](size_t n) { return a.len == n; };
  switch (spec->kind) {
    case Kind::U8:
      if (!sized(1)) return false;
      v.Uint(spec, a.data[0]);
      return true;
    case Kind::U16: {
      if (!sized(2)) return false;
      uint16_t x;
      std::memcpy(&x, a.data, 2);
      v.Uint(spec, x);
      return true;
    }
    case Kind::U32: {
      if (!sized(4)) return false;
      uint32_t x;
      std::memcpy(&x, a.data, 4);
      v.Uint(spec, x);
      return true;
    }
    case Kind::U64: {
      if (!sized(8)) return false;
      uint64_t x;
      std::memcpy(&x, a.data, 8);
      v.Uint(spec, x);
      return true;
    }
    case Kind::S32: {
      if (!sized(4)) return false;
      int32_t x;
      std::memcpy(&x, a.data, 4);
      v.Int(spec, x);
      return true;
    }
    case Kind::Be16: {
      if (!sized(2)) return false;
      uint16_t x;
      std::memcpy(&x, a.data, 2);
      v.Uint(spec, ntohs(x));
      return true;
    }
    case Kind::Be32: {
      if (!sized(4)) return false;
      uint32_t x;
      std::memcpy(&x, a.data, 4);
      v.Uint(spec, ntohl(x));
      return true;
    }
    case Kind::Be64: {
      if (!sized(8)) return false;
      uint64_t x;
      std::memcpy(&x, a.data, 8);
      v.Uint(spec, be64toh(x));
      return true;
    }
    case Kind::SBe32: {
      if (!sized(4)) return false;
      uint32_t x;
      std::memcpy(&x, a.data, 4);
      v.Int(spec, static_cast<int32_t>(ntohl(x)));
      return true;
    }
    case Kind::String:
      v.Str(spec, reinterpret_cast<const char*>(a.data), strnlen(reinterpret_cast<const char*>(a.data), a.len));
      return true;
    case Kind::Binary:
      v.Bytes(spec, a.data, a.len);
      return true;
    case Kind::Flag:
      if (!sized(0)) return false;
      v.Flag(spec);
      return true;
    case Kind::Addr:
      if (a.len != 4 && a.len != 16) return false;
      v.Addr(spec, a.data, a.len);
      return true;
    case Kind::Mac:
      if (a.len == 0 || a.len > 32) return false;
      v.Mac(spec, a.data, a.len);
      return true;
    case Kind::Nested:
      v.Begin(spec->name, spec);
      if (!DecodeAttrs(a.data, a.len, spec->nested, v, err, depth + 1)) {
        v.End();
        return false;
      }
      v.End();
      return true;
    case Kind::List: {
      v.BeginList(spec);
      bool ok = true;
      bool well_formed = ForEachAttr(a.data, a.len, [&](const AttrView& e) {
        if (!ok) return;
        if (e.type != spec->list_elem) {
          v.Unknown(e.type, e.nested, e.data, e.len);
          return;
        }
        v.Begin(nullptr, spec);
        if (!DecodeAttrs(e.data, e.len, spec->nested, v, err, depth + 1)) ok = false;
        v.End();
      });
      v.EndList();
      if (!ok) return false;
      if (!well_formed) {
        err.what = "malformed attribute (length out of bounds)";
        return false;
      }
      return true;
    }
    case Kind::NestedMsg: {
      if (a.len < spec->header->size) return false;
      v.Begin(spec->name, spec);
      v.Begin("header", nullptr);
      DecodeStruct(a.data, *spec->header, v);
      v.End();
      v.Begin("attrs", nullptr);
      bool ok = DecodeAttrs(a.data + Align(spec->header->size),
                            a.len > Align(spec->header->size) ? a.len - Align(spec->header->size) : 0, spec->nested, v,
                            err, depth + 1);
      v.End();
      v.End();
      return ok;
    }
    case Kind::Variant: {
      const char* key = nullptr;
      size_t key_len = 0;
      const Table* t = nullptr;
      if (FindSelector(set, set_len, table, spec->selector, &key, &key_len)) t = spec->variants->Find(key, key_len);
      if (!t) {
        v.Bytes(spec, a.data, a.len);
        return true;
      }  // a kind we have no table for
      v.Begin(spec->name, spec);
      if (!DecodeAttrs(a.data, a.len, t, v, err, depth + 1)) {
        v.End();
        return false;
      }
      v.End();
      return true;
    }
  }
  return false;
}

template <typename V>
bool DecodeAttrs(const uint8_t* p, size_t len, const Table* table, V& v, DecodeError& err, int depth,
                 const AttrFilter* filter) {
  if (depth > 16) {
    err.what = "attributes nested too deeply";
    return false;
  }
  bool inner_ok = true;
  bool ok = ForEachAttr(p, len, [&](const AttrView& a) {
    if (!inner_ok) return;
    if (filter && filter->Skip(a.type)) return;
    const Attr* spec = table ? table->ByType(a.type) : nullptr;
    if (!spec) {
      v.Unknown(a.type, a.nested, a.data, a.len);
      return;
    }
    if (!DecodeValue(spec, a, p, len, table, v, err, depth)) {
      if (err.what) {
        inner_ok = false;
        return;
      }
      // A value whose size does not fit its kind is kept as raw bytes, never fatal.
      v.Unknown(a.type, a.nested, a.data, a.len);
    }
  });
  if (!inner_ok) return false;
  if (!ok) {
    err.what = "malformed attribute (length out of bounds)";
    return false;
  }
  return true;
}

}  // namespace nl
