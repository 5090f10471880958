// A strict, tiny JSON syntax checker for the fuzz targets: the decoder's output is handed to
// JSON.parse on the main thread, so anything it writes must be RFC 8259 JSON. Checks syntax
// only (duplicate keys are legal JSON); strings may carry raw bytes >= 0x80 (JSON.parse reads
// invalid UTF-8 as U+FFFD) but never an unescaped control character.
#pragma once

#include <cstddef>
#include <string>
#include <utility>

namespace fuzz {

class JsonCheck {
 public:
  explicit JsonCheck(std::string s) : s_(std::move(s)) {}

  // True when the whole text is one JSON array; *items = its number of elements.
  bool TopLevelArray(size_t* items) {
    Ws();
    if (!Peek('[')) return false;
    size_t n = 0;
    if (!Array(0, &n)) return false;
    Ws();
    *items = n;
    return i_ == s_.size();
  }

  const std::string& Text() const { return s_; }

  // Where the text stopped being JSON (for the crash message).
  size_t Position() const { return i_; }

 private:
  static constexpr int kMaxDepth = 200;  // the decoder stops at 16 levels of attributes

  bool Peek(char c) const { return i_ < s_.size() && s_[i_] == c; }
  void Ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) i_++;
  }
  bool Lit(const char* w) {
    for (; *w; w++, i_++)
      if (i_ >= s_.size() || s_[i_] != *w) return false;
    return true;
  }
  static bool Digit(char c) { return c >= '0' && c <= '9'; }
  static bool Hex(char c) { return Digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

  bool Value(int depth) {
    if (depth > kMaxDepth) return false;
    Ws();
    if (i_ >= s_.size()) return false;
    switch (s_[i_]) {
      case '{':
        return Object(depth + 1);
      case '[': {
        size_t n;
        return Array(depth + 1, &n);
      }
      case '"':
        return String();
      case 't':
        return Lit("true");
      case 'f':
        return Lit("false");
      case 'n':
        return Lit("null");
      default:
        return Number();
    }
  }
  bool Object(int depth) {
    i_++;  // '{'
    Ws();
    if (Peek('}')) {
      i_++;
      return true;
    }
    for (;;) {
      Ws();
      if (!Peek('"') || !String()) return false;
      Ws();
      if (!Peek(':')) return false;
      i_++;
      if (!Value(depth)) return false;
      Ws();
      if (Peek(',')) {
        i_++;
        continue;
      }
      if (Peek('}')) {
        i_++;
        return true;
      }
      return false;
    }
  }
  bool Array(int depth, size_t* n) {
    i_++;  // '['
    *n = 0;
    Ws();
    if (Peek(']')) {
      i_++;
      return true;
    }
    for (;;) {
      if (!Value(depth)) return false;
      ++*n;
      Ws();
      if (Peek(',')) {
        i_++;
        continue;
      }
      if (Peek(']')) {
        i_++;
        return true;
      }
      return false;
    }
  }
  bool String() {
    i_++;  // '"'
    while (i_ < s_.size()) {
      unsigned char c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return true;
      if (c < 0x20) return false;
      if (c != '\\') continue;
      if (i_ >= s_.size()) return false;
      char e = s_[i_++];
      if (e == 'u') {
        for (int k = 0; k < 4; k++)
          if (i_ >= s_.size() || !Hex(s_[i_++])) return false;
      } else if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' && e != 't') {
        return false;
      }
    }
    return false;
  }
  bool Number() {
    if (Peek('-')) i_++;
    if (Peek('0')) {
      i_++;
    } else {
      if (i_ >= s_.size() || !Digit(s_[i_])) return false;
      while (i_ < s_.size() && Digit(s_[i_])) i_++;
    }
    if (Peek('.')) {
      i_++;
      if (i_ >= s_.size() || !Digit(s_[i_])) return false;
      while (i_ < s_.size() && Digit(s_[i_])) i_++;
    }
    if (Peek('e') || Peek('E')) {
      i_++;
      if (Peek('+') || Peek('-')) i_++;
      if (i_ >= s_.size() || !Digit(s_[i_])) return false;
      while (i_ < s_.size() && Digit(s_[i_])) i_++;
    }
    return true;
  }

  const std::string s_;
  size_t i_ = 0;
};

}  // namespace fuzz
