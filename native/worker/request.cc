#include "request.h"

#include <linux/netlink.h>

#include <cerrno>
#include <cstring>

#include "../netlink/codec.h"
#include "../netlink/json.h"
#include "errors.h"

namespace nsnet {

bool Terminating(Napi::Env env) {
  // napi_coerce_to_bool is one of the calls that first check whether the environment may still
  // run JavaScript (NAPI_PREAMBLE): napi_pending_exception, with no exception of ours pending,
  // means it may not (a worker being terminated).
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || pending) return false;
  napi_value r;
  return napi_coerce_to_bool(env, env.Global(), &r) == napi_pending_exception;
}

std::unique_ptr<nl::Request> BuildRequest(Napi::Env env, int protocol, Napi::Array arr, bool atomic) {
  auto req = std::make_unique<nl::Request>();
  req->atomic = atomic;
  nl::Builder b;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsObject()) {
      InvalidArgument(env, "request " + std::to_string(i) + " is not an object").ThrowAsJavaScriptException();
      return nullptr;
    }
    std::string err;
    size_t off = b.Size();
    if (!nl::EncodeMessage(env, protocol, v.As<Napi::Object>(), 0, b, err)) {
      InvalidArgument(env, "request " + std::to_string(i) + ": " + err).ThrowAsJavaScriptException();
      return nullptr;
    }
    nl::MsgResult m;
    // request.omit / request.only: names of reply attributes to leave out / to keep.
    Napi::Object ro = v.As<Napi::Object>();
    nlmsghdr hh;
    std::memcpy(&hh, b.Bytes().data() + off, sizeof hh);
    const nl::MessageSpec* spec = nl::Registry::Get().Find(protocol, hh.nlmsg_type);
    for (auto [key, dest] :
         {std::pair<const char*, std::vector<uint16_t>*>{"omit", &m.filter.omit}, {"only", &m.filter.only}}) {
      Napi::Value list = ro.Get(key);
      if (!spec || !list.IsArray()) continue;
      Napi::Array names = list.As<Napi::Array>();
      for (uint32_t j = 0; j < names.Length(); j++) {
        Napi::Value n = names.Get(j);
        if (!n.IsString()) {
          InvalidArgument(env, std::string(key) + ": attribute names are strings").ThrowAsJavaScriptException();
          return nullptr;
        }
        std::string name = n.As<Napi::String>().Utf8Value();
        const nl::Attr* a = spec->attrs->ByName(name.data(), name.size());
        if (!a) {
          InvalidArgument(env, std::string(key) + ": no attribute '" + name + "'").ThrowAsJavaScriptException();
          return nullptr;
        }
        dest->push_back(a->type);
      }
    }
    nlmsghdr h;
    std::memcpy(&h, b.Bytes().data() + off, sizeof h);
    m.offset = off;
    m.len = h.nlmsg_len;
    m.type = h.nlmsg_type;
    m.dump = (h.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
    req->msgs.push_back(std::move(m));
  }
  req->bytes = std::move(b.Bytes());
  return req;
}

void ResultsToJson(int protocol, nl::Request& req) {
  std::string& out = req.json;
  // The text is about as long as the messages it describes: one allocation, not a dozen
  // doublings with their page faults (a dump of 2,000 links is ~3 MB of messages).
  size_t raw = 0;
  for (const nl::MsgResult& m : req.msgs)
    for (const auto& c : m.replies) raw += c.size();
  out.reserve(raw + 128 * req.msgs.size() + 16);
  out.push_back('[');
  for (size_t i = 0; i < req.msgs.size(); i++) {
    nl::MsgResult& m = req.msgs[i];
    if (i) out.push_back(',');
    out += "{\"operation\":";
    nl::JsonString(out, nl::MessageName(protocol, m.type));
    if (m.err) {
      out += ",\"errno\":" + std::to_string(m.err) + ",\"code\":";
      nl::JsonString(out, nl::ErrnoCode(m.err));
      if (!m.extack.empty()) {
        out += ",\"extack\":";
        nl::JsonString(out, m.extack);
      }
      if (m.extack_offset >= 0) out += ",\"extackOffset\":" + std::to_string(m.extack_offset);
    }
    out += ",\"replies\":";
    std::string err;
    if (!nl::MessagesToJson(protocol, m.replies, out, err, &m.filter)) {
      req.error = {EBADMSG, "ERR_MALFORMED_REPLY", "the kernel's reply could not be decoded: " + err};
      out.clear();
      return;
    }
    std::vector<std::vector<uint8_t>>().swap(m.replies);
    out.push_back('}');
  }
  out.push_back(']');
}

}  // namespace nsnet
