// The invariants both fuzz targets assert on the decoder (nl::MessagesToJson, json.h), for any
// input bytes. Out-of-bounds reads and undefined behaviour are ASan's and UBSan's to report;
// a broken invariant aborts with a message, which libFuzzer records as a crash.
//   1. Success: the output is one syntactically valid JSON array with one item per netlink
//      message, as counted by an independent walk of the message headers (below).
//   2. The message walk finds a malformed header (length below 16 or past the end, or bytes
//      left over that are not alignment padding): the decoder fails.
//   3. Failure: `err` is non-empty and the output string is left exactly as it was.
//   4. The same bytes split at a message boundary into two datagrams (the overload that
//      decodes a dump) decode to exactly the same result.
//   5. A filter only removes top-level attributes: if the unfiltered decode succeeds, the
//      filtered one succeeds too, with valid JSON.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../netlink/decode.h"
#include "../netlink/json.h"
#include "json_check.h"

namespace fuzz {

[[noreturn]] inline void Fail(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "nsnet-fuzz: invariant broken: %s%s%s\n", what, detail.empty() ? "" : ": ", detail.c_str());
  std::abort();
}

// Walks nlmsghdr lengths without the library's helpers (attr.h), as the oracle for 1 and 2.
struct Walk {
  bool well_formed = true;
  size_t messages = 0;
  size_t first_end = 0;  // aligned end of the first message, 0 if none
};

inline Walk WalkMessages(const uint8_t* p, size_t len) {
  Walk w;
  size_t off = 0;
  while (off + 16 <= len) {
    uint32_t n;
    std::memcpy(&n, p + off, 4);
    if (n < 16 || n > len - off) {
      w.well_formed = false;
      return w;
    }
    w.messages++;
    off += (static_cast<size_t>(n) + 3) & ~size_t(3);
    if (w.messages == 1) w.first_end = off;
  }
  if (off < len) w.well_formed = false;  // 1..15 bytes that are no header
  return w;
}

inline void CheckJson(const std::string& out, size_t start, size_t expect_items) {
  std::string json = out.substr(start);
  JsonCheck c(std::move(json));
  size_t items = 0;
  if (!c.TopLevelArray(&items))
    Fail("output is not a JSON array", "at byte " + std::to_string(c.Position()) + " of " + c.Text().substr(0, 2000));
  if (items != expect_items)
    Fail("one array item per message",
         std::to_string(items) + " items for " + std::to_string(expect_items) + " messages");
}

// The checker's own check, once per process: a checker that accepts everything would make
// invariant 1 vacuous.
inline bool CheckerWorks() {
  static const bool works = [] {
    size_t n = 0;
    for (const char* good :
         {"[]", " [ ] ", "[{}]", "[{\"a\":1,\"b\":[true,false,null,\"x\\u0001\\n\"],\"c\":-1.5e3},0]",
          "[\"\xff\xfe raw bytes\"]"}) {
      JsonCheck c(good);
      if (!c.TopLevelArray(&n)) Fail("the JSON checker rejects valid JSON", good);
    }
    JsonCheck two("[1,{\"k\":[3,4]}]");
    if (!two.TopLevelArray(&n) || n != 2) Fail("the JSON checker miscounts items");
    for (const char* bad : {"", "[", "[1,]", "[,]", "{\"a\":1}", "[\"\x01\"]", "[01]", "[\"\\q\"]", "[1]x", "[1 2]",
                            "[{\"a\"}]", "[{a:1}]", "[-]", "[1.]", "[tru]", "[\"abc]"}) {
      JsonCheck c(bad);
      if (c.TopLevelArray(&n)) Fail("the JSON checker accepts invalid JSON", bad);
    }
    return true;
  }();
  return works;
}

// Decodes [p, p+len) as `protocol` and checks every invariant. `filter_type`: the attribute
// type a filter leaves out (and, separately, the only one it keeps).
inline void CheckDecode(int protocol, const uint8_t* p, size_t len, uint16_t filter_type) {
  CheckerWorks();
  static const std::string kPrefix = "prefix:";  // MessagesToJson appends to what is there
  std::string out = kPrefix, err;
  bool ok = nl::MessagesToJson(protocol, p, len, out, err);
  Walk w = WalkMessages(p, len);
  if (ok) {
    if (!w.well_formed) Fail("a malformed message sequence was accepted");
    if (out.compare(0, kPrefix.size(), kPrefix) != 0) Fail("the output's existing text was changed");
    CheckJson(out, kPrefix.size(), w.messages);
  } else {
    if (err.empty()) Fail("failure without an error message");
    if (out != kPrefix) Fail("a failed decode left output behind", out.substr(0, 200));
  }

  // 4: one datagram, or two split at the first message boundary.
  std::vector<std::vector<uint8_t>> chunks;
  if (w.first_end > 0 && w.first_end < len) {
    chunks.emplace_back(p, p + w.first_end);
    chunks.emplace_back(p + w.first_end, p + len);
  } else {
    chunks.emplace_back(p, p + len);
  }
  std::string out2 = kPrefix, err2;
  bool ok2 = nl::MessagesToJson(protocol, chunks, out2, err2);
  if (ok2 != ok || out2 != out) Fail("datagram split changes the result", err + " / " + err2);
  if (ok2 == false && err2 != err) Fail("datagram split changes the error", err + " / " + err2);

  // 5: filters.
  nl::AttrFilter omit, only;
  omit.omit.push_back(filter_type);
  only.only.push_back(filter_type);
  for (const nl::AttrFilter* f : {&omit, &only}) {
    std::string out3, err3;
    bool ok3 = nl::MessagesToJson(protocol, p, len, out3, err3, f);
    if (ok && !ok3) Fail("a filter made a decodable message fail", err3);
    if (ok3)
      CheckJson(out3, 0, w.messages);
    else if (err3.empty())
      Fail("filtered failure without an error message");
  }
}

}  // namespace fuzz
