// A minimal protocol-buffers encoder for writing pprof's profile.proto.
//
// Why by hand: a profile is one message type, written rarely, and only encoded (never
// parsed). Go's runtime/pprof hand-encodes it for the same reason (protobuf.go): linking
// libprotobuf and running protoc would add a build-time tool and a runtime dependency to
// every program that links gort, for ~80 lines of varints.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace gort::pprof::detail {

class ProtoWriter {
 public:
  void uint64(int field, std::uint64_t v) {
    tag(field, 0);
    varint(v);
  }
  void int64(int field, std::int64_t v) { uint64(field, static_cast<std::uint64_t>(v)); }
  void boolean(int field, bool v) { uint64(field, v ? 1 : 0); }
  void string(int field, std::string_view s) {
    tag(field, 2);
    varint(s.size());
    buf_.append(s);
  }
  void message(int field, const ProtoWriter& m) { string(field, m.buf_); }
  // A packed repeated varint field.
  template <class T>
  void packed(int field, std::span<const T> vs) {
    if (vs.empty()) return;
    ProtoWriter body;
    for (T v : vs) body.varint(static_cast<std::uint64_t>(v));
    string(field, body.buf_);
  }
  const std::string& bytes() const noexcept { return buf_; }

 private:
  void tag(int field, int wire_type) {
    varint((static_cast<std::uint64_t>(field) << 3) | static_cast<std::uint64_t>(wire_type));
  }
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      buf_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    buf_.push_back(static_cast<char>(v));
  }
  std::string buf_;
};

}  // namespace gort::pprof::detail
