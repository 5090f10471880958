// Conversion between JS objects and netlink messages, driven by the schema tables.
//   message object: { type, name, flags, seq, pid, header: {...}, attrs: {...} }
//   attrs: one property per known attribute (names from the tables), plus
//          `unknown: [{ type, nested, data }]` for attributes without a table row.
// Decoding goes through JSON text (json.h); binary values come back as hex strings and are
// accepted back as hex strings or Buffers.
#pragma once

#include <napi.h>

#include <string>
#include <vector>

#include "attr.h"
#include "schema.h"

namespace nl {

// Encodes one request object { type, flags, header, attrs } as a message with sequence `seq`.
// Returns false and sets `err` when the object does not fit the schema.
bool EncodeMessage(Napi::Env env, int protocol, Napi::Object req, uint32_t seq, Builder& b, std::string& err);

// Parses JSON text (see json.h) with the engine's JSON.parse.
Napi::Value ParseJson(Napi::Env env, const std::string& json);

// Parses a hex string ("0a1b") into bytes.
bool ParseHex(const std::string& s, std::vector<uint8_t>& out);

// Parses a link-layer address "aa:bb:cc:dd:ee:ff" (1..32 bytes; FormatMac in json.h writes it).
bool ParseMac(const std::string& s, uint8_t* out, size_t* n);

// Stable code for an errno value: "EEXIST", "ENODEV", ...
std::string ErrnoCode(int err);

}  // namespace nl
