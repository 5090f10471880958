// Decoded messages as JSON text, built off the main thread (on a handle's worker) and parsed
// once with JSON.parse on the main thread: far cheaper than one N-API call per attribute, and
// free of N-API, so the same code runs under the fuzzer.
//
// A message: {"type":16,"name":"RTM_NEWLINK","flags":2,"seq":1,"pid":0,
//             "header":{...},"attrs":{...,"unknown":[{"type":62,"nested":true,"data":"hex"}]}}
// Binary values are lowercase hex strings; integers beyond 2^53 are decimal strings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace nl {

// Appends a JSON array of the messages in [data, data+len) to `out`. Returns false and sets
// `err` on a malformed message (nothing is read out of bounds).
struct AttrFilter;

// `filter`: top-level attributes to leave out (statistics a caller did not ask for).
bool MessagesToJson(int protocol, const uint8_t* data, size_t len, std::string& out, std::string& err,
                    const AttrFilter* filter = nullptr);
// The same over several buffers (the datagrams of a dump), as one array.
bool MessagesToJson(int protocol, const std::vector<std::vector<uint8_t>>& chunks, std::string& out, std::string& err,
                    const AttrFilter* filter = nullptr);

// Appends `s` as a quoted JSON string.
void JsonString(std::string& out, const char* s, size_t n);
inline void JsonString(std::string& out, const std::string& s) { JsonString(out, s.data(), s.size()); }

// Appends bytes as a quoted lowercase hex string.
void JsonHex(std::string& out, const uint8_t* p, size_t n);

// Formats a link-layer address as "aa:bb:cc:dd:ee:ff" (ParseMac in codec.h reads it back).
std::string FormatMac(const uint8_t* p, size_t n);

}  // namespace nl
