// Declarative message schemas: the one description of each netlink message family that both
// the encoder (JS object -> bytes) and the decoder (bytes -> JS object) read. A message is a
// fixed header struct followed by attributes; each attribute is a row: name, type id, value
// kind and, for nests, the table of the nested attributes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace nl {

enum class Kind : uint8_t {
  U8,
  U16,
  U32,
  U64,
  S32,
  Be16,       // network byte order u16 (ports)
  Be32,       // network byte order u32
  Be64,       // network byte order u64 (nf_tables handles, counters)
  SBe32,      // network byte order s32 (nf_tables chain priority, verdict codes)
  String,     // NUL-terminated on the wire, JS string
  Binary,     // opaque bytes, JS Buffer
  Flag,       // zero-length attribute, JS true
  Addr,       // IPv4 (4 bytes) or IPv6 (16 bytes), JS string
  Mac,        // link-layer address, JS "aa:bb:..." string
  Nested,     // nested attributes of `nested`
  NestedMsg,  // a fixed header `header` followed by attributes of `nested` (VETH_INFO_PEER)
  Variant,    // nested attributes whose table is chosen by a sibling attribute's string value
  List,       // nested: repeated `list_elem` attributes, each of table `nested`; a JS array
};

// One field of a fixed header struct (ifinfomsg, rtmsg, ...).
struct Field {
  const char* name;
  uint16_t offset;
  uint8_t size;  // 1, 2 or 4
  bool is_signed;
  bool big_endian = false;  // network byte order (nfgenmsg.res_id)
};

struct Struct {
  const char* name;
  uint16_t size;
  std::vector<Field> fields;
};

struct Table;

// The tables a Variant chooses from, keyed by the selector's string value.
struct VariantSet {
  std::vector<std::pair<std::string, const Table*>> tables;
  const Table* Find(const char* key, size_t len) const {
    for (const auto& [k, t] : tables)
      if (k.size() == len && std::memcmp(k.data(), key, len) == 0) return t;
    return nullptr;
  }
};

struct Attr {
  const char* name;
  uint16_t type;
  Kind kind;
  const Table* nested = nullptr;         // Nested, NestedMsg
  const Struct* header = nullptr;        // NestedMsg
  const VariantSet* variants = nullptr;  // Variant
  const char* selector = nullptr;        // Variant: name of the sibling attribute holding the key
  uint16_t list_elem = 1;                // List: the type of each element (NFTA_LIST_ELEM = 1)
};

struct Table {
  const char* name;
  std::vector<Attr> attrs;

  const Attr* ByType(uint16_t type) const {
    for (const auto& a : attrs)
      if (a.type == type) return &a;
    return nullptr;
  }
  const Attr* ByName(const char* name, size_t len) const {
    for (const auto& a : attrs)
      if (std::strlen(a.name) == len && std::memcmp(a.name, name, len) == 0) return &a;
    return nullptr;
  }
};

// A message type of one netlink protocol: RTM_NEWLINK of NETLINK_ROUTE, ...
struct MessageSpec {
  int protocol;
  uint16_t type;
  const char* name;
  const Struct* header;
  const Table* attrs;
  // The kernel's answer has another fixed header (sock_diag: inet_diag_req_v2 in,
  // inet_diag_msg out); nullptr when it is the same.
  const Struct* reply_header = nullptr;
  const Struct& ReplyHeader() const { return reply_header ? *reply_header : *header; }
};

// All message specs, filled once at module load (RegisterAll) and immutable afterwards, so
// every thread and every Node environment may read it.
class Registry {
 public:
  static const Registry& Get();
  const MessageSpec* Find(int protocol, uint16_t type) const {
    for (const auto& m : messages_)
      if (m.protocol == protocol && m.type == type) return &m;
    return nullptr;
  }
  void Add(const MessageSpec& m) { messages_.push_back(m); }

 private:
  std::vector<MessageSpec> messages_;
};

// Message type names for errors when no spec exists ("NLMSG_ERROR", "RTM_NEWLINK").
std::string MessageName(int protocol, uint16_t type);

}  // namespace nl
