// Reading the keys of the objects a request is given, for the encoder (codec.cc): an object's
// own enumerable string keys, and a key's text without a heap allocation for the usual short
// names.
#pragma once

#include <napi.h>

#include <string>
#include <string_view>

namespace nl {

// A property name as text, without a heap allocation for the usual short names. Encoding a
// message reads every key of every object it is given (an nf_tables batch of 10,000 map elements
// has 40,000): the key's own value is then used to read the property, not a string made again
// from its text.
class KeyText {
 public:
  bool Read(napi_env env, napi_value key) {
    size_t len = 0;
    if (napi_get_value_string_utf8(env, key, short_, sizeof short_, &len) != napi_ok) return false;
    // A truncated copy stops short of a character that does not fit, so it is at least
    // sizeof short_ - 4 bytes long: anything shorter is the whole name.
    if (len + 5 <= sizeof short_) {
      view_ = std::string_view(short_, len);
      return true;
    }
    if (napi_get_value_string_utf8(env, key, nullptr, 0, &len) != napi_ok) return false;
    long_.assign(len + 1, '\0');
    if (napi_get_value_string_utf8(env, key, long_.data(), long_.size(), &len) != napi_ok) return false;
    long_.resize(len);
    view_ = long_;
    return true;
  }
  std::string_view view() const { return view_; }
  std::string str() const { return std::string(view_); }

 private:
  char short_[64];
  std::string long_;
  std::string_view view_;
};

// The object's own enumerable string keys. (Object::GetPropertyNames also walks the prototype
// chain, which took a third of an nf_tables batch's encoding; requests are plain objects.)
inline bool OwnKeys(Napi::Object obj, Napi::Array* out, std::string& err) {
  napi_value keys;
  if (napi_get_all_property_names(obj.Env(), obj, napi_key_own_only,
                                  static_cast<napi_key_filter>(napi_key_enumerable | napi_key_skip_symbols),
                                  napi_key_numbers_to_strings, &keys) != napi_ok) {
    err = "the keys of an object could not be read";
    return false;
  }
  *out = Napi::Array(obj.Env(), keys);
  return true;
}

}  // namespace nl
