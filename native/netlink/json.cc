#include "json.h"

#include <arpa/inet.h>

#include <charconv>
#include <vector>

// No codec.h here: it brings in N-API, and this file must build without it (the fuzzer).
#include "decode.h"

namespace nl {

void JsonString(std::string& out, const char* s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  out.push_back('"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 15]);
        } else {
          out.push_back(static_cast<char>(c));  // invalid UTF-8 becomes U+FFFD when read
        }
    }
  }
  out.push_back('"');
}

void JsonHex(std::string& out, const uint8_t* p, size_t n) {
  static const char hex[] = "0123456789abcdef";
  out.push_back('"');
  for (size_t i = 0; i < n; i++) {
    out.push_back(hex[p[i] >> 4]);
    out.push_back(hex[p[i] & 15]);
  }
  out.push_back('"');
}

std::string FormatMac(const uint8_t* p, size_t n) {
  static const char hex[] = "0123456789abcdef";
  std::string s;
  s.reserve(n * 3);
  for (size_t i = 0; i < n; i++) {
    if (i) s.push_back(':');
    s.push_back(hex[p[i] >> 4]);
    s.push_back(hex[p[i] & 15]);
  }
  return s;
}

namespace {

// Decimal text of an integer, appended without a temporary string (a dump formats thousands).
template <typename T>
void AppendNumber(std::string& out, T v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

class JsonVisitor {
 public:
  explicit JsonVisitor(std::string& out) : out_(out) {}
  void Open() {
    out_.push_back('{');
    frames_.push_back({});
  }
  void Close() {
    Frame& f = frames_.back();
    if (!f.unknown.empty()) {
      Key("unknown");
      out_.push_back('[');
      out_ += f.unknown;
      out_.push_back(']');
    }
    frames_.pop_back();
    out_.push_back('}');
  }
  void Uint(const Attr* a, uint64_t v) {
    Key(a->name);
    if (v > 9007199254740991ull) {
      out_.push_back('"');
      AppendNumber(out_, v);
      out_.push_back('"');
    } else {
      AppendNumber(out_, v);
    }
  }
  void Int(const Attr* a, int64_t v) {
    Key(a->name);
    AppendNumber(out_, v);
  }
  void Str(const Attr* a, const char* s, size_t n) {
    Key(a->name);
    JsonString(out_, s, n);
  }
  void Bytes(const Attr* a, const uint8_t* p, size_t n) {
    Key(a->name);
    JsonHex(out_, p, n);
  }
  void Flag(const Attr* a) {
    Key(a->name);
    out_ += "true";
  }
  void Addr(const Attr* a, const uint8_t* p, size_t n) {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(n == 4 ? AF_INET : AF_INET6, p, buf, sizeof buf);
    Key(a->name);
    JsonString(out_, buf, strlen(buf));
  }
  void Mac(const Attr* a, const uint8_t* p, size_t n) {
    Key(a->name);
    JsonString(out_, FormatMac(p, n));
  }
  void Field(const nl::Field& f, int64_t v) {
    Key(f.name);
    AppendNumber(out_, v);
  }
  // name == nullptr: an item of the list being written.
  void Begin(const char* name, const Attr*) {
    if (name)
      Key(name);
    else if (frames_.back().count++)
      out_.push_back(',');
    Open();
  }
  void End() { Close(); }
  void BeginList(const Attr* a) {
    Key(a->name);
    out_.push_back('[');
    frames_.push_back({});
    frames_.back().list = true;
  }
  void EndList() {
    // Stray non-element attributes inside a list are kept in a trailing {"unknown": [...]} item.
    Frame& f = frames_.back();
    if (!f.unknown.empty()) {
      if (f.count) out_.push_back(',');
      out_ += "{\"unknown\":[" + f.unknown + "]}";
    }
    frames_.pop_back();
    out_.push_back(']');
  }
  void Unknown(uint16_t type, bool nested, const uint8_t* p, size_t n) {
    std::string& u = frames_.back().unknown;
    if (!u.empty()) u.push_back(',');
    u += "{\"type\":" + std::to_string(type) + ",\"nested\":" + (nested ? "true" : "false") + ",\"data\":";
    JsonHex(u, p, n);
    u.push_back('}');
  }
  void Key(const char* k) {
    Frame& f = frames_.back();
    if (f.count++) out_.push_back(',');
    out_.push_back('"');
    out_ += k;  // schema names are plain identifiers
    out_ += "\":";
  }

 private:
  struct Frame {
    size_t count = 0;
    std::string unknown;
    bool list = false;
  };
  std::string& out_;
  std::vector<Frame> frames_;
};

}  // namespace

namespace {

// Appends the messages of one buffer, comma-separated, continuing `first`.
bool AppendMessages(int protocol, const uint8_t* data, size_t len, std::string& out, std::string& err,
                    const AttrFilter* filter, bool& first) {
  bool inner_ok = true;
  bool ok = ForEachMessage(data, len, [&](const MessageView& m) {
    if (!first) out.push_back(',');
    first = false;
    out += "{\"type\":";
    AppendNumber(out, m.hdr.nlmsg_type);
    out += ",\"name\":";
    JsonString(out, MessageName(protocol, m.hdr.nlmsg_type));
    out += ",\"flags\":";
    AppendNumber(out, m.hdr.nlmsg_flags);
    out += ",\"seq\":";
    AppendNumber(out, m.hdr.nlmsg_seq);
    out += ",\"pid\":";
    AppendNumber(out, m.hdr.nlmsg_pid);
    const MessageSpec* spec = Registry::Get().Find(protocol, m.hdr.nlmsg_type);
    if (!spec) {
      out += ",\"data\":";
      JsonHex(out, m.payload, m.len);
    } else {
      const Struct& header = spec->ReplyHeader();
      if (m.len < header.size) {
        err = std::string(spec->name) + ": message shorter than its header";
        inner_ok = false;
        return false;
      }
      out += ",\"header\":";
      JsonVisitor hv(out);
      hv.Open();
      DecodeStruct(m.payload, header, hv);
      hv.Close();
      out += ",\"attrs\":";
      JsonVisitor av(out);
      av.Open();
      DecodeError derr;
      size_t hl = Align(header.size);
      if (!DecodeAttrs(m.payload + std::min(hl, m.len), m.len > hl ? m.len - hl : 0, spec->attrs, av, derr, 0,
                       filter)) {
        err = std::string(spec->name) + ": " + (derr.what ? derr.what : "malformed attributes");
        inner_ok = false;
        return false;
      }
      av.Close();
    }
    out.push_back('}');
    return true;
  });
  if (!inner_ok) return false;
  if (!ok) {
    err = "malformed netlink message (length out of bounds)";
    return false;
  }
  return true;
}

}  // namespace

bool MessagesToJson(int protocol, const uint8_t* data, size_t len, std::string& out, std::string& err,
                    const AttrFilter* filter) {
  size_t start = out.size();
  bool first = true;
  out.push_back('[');
  if (!AppendMessages(protocol, data, len, out, err, filter, first)) {
    out.resize(start);
    return false;
  }
  out.push_back(']');
  return true;
}

bool MessagesToJson(int protocol, const std::vector<std::vector<uint8_t>>& chunks, std::string& out, std::string& err,
                    const AttrFilter* filter) {
  size_t start = out.size();
  bool first = true;
  out.push_back('[');
  for (const auto& c : chunks) {
    if (!AppendMessages(protocol, c.data(), c.size(), out, err, filter, first)) {
      out.resize(start);
      return false;
    }
  }
  out.push_back(']');
  return true;
}

}  // namespace nl
