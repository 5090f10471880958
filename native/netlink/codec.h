// Conversion between JS objects and netlink messages, driven by the schema tables.
//   message object: { type, name, flags, seq, pid, header: {...}, attrs: {...} }
//   attrs: one property per known attribute (names from the tables), plus
//          `unknown: [{ type, nested, data: Buffer }]` for attributes without a table row.
#pragma once

#include <napi.h>

#include <string>

#include "attr.h"
#include "schema.h"

namespace nl {

// Encodes one request object { type, flags, header, attrs } as a message with sequence `seq`.
// Returns false and sets `err` when the object does not fit the schema.
bool EncodeMessage(Napi::Env env, int protocol, Napi::Object req, uint32_t seq, Builder& b,
                   std::string& err);

// Decodes every message in `data` (one or more concatenated netlink messages) into `out`.
// Returns false and sets `err` on a malformed message; nothing is read out of bounds.
bool DecodeMessages(Napi::Env env, int protocol, const uint8_t* data, size_t len, Napi::Array out,
                    std::string& err);

// Formats a link-layer address as "aa:bb:cc:dd:ee:ff"; parses it back (1..32 bytes).
std::string FormatMac(const uint8_t* p, size_t n);
bool ParseMac(const std::string& s, uint8_t* out, size_t* n);

// Stable code for an errno value: "EEXIST", "ENODEV", ...
std::string ErrnoCode(int err);

}  // namespace nl
