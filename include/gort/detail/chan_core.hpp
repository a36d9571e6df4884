// The type-erased channel runtime behind gort::Chan<T> and gort::select. Users never name
// these; src/chan/chan.cpp explains the design.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

namespace gort::detail {

// How the runtime moves and destroys elements of a channel's type.
struct ElemOps {
  void (*move_construct)(void* dst, void* src) noexcept;  // dst is raw storage
  void (*destroy)(void* p) noexcept;
  std::size_t size;
  std::size_t align;
  // T is trivially copyable: a move is a byte copy and destroy does nothing, so the runtime
  // may copy the bytes itself instead of calling through the pointers above.
  bool trivial;
};

template <class T>
inline constexpr ElemOps kElemOps = {
    [](void* dst, void* src) noexcept { ::new (dst) T(std::move(*static_cast<T*>(src))); },
    [](void* p) noexcept { static_cast<T*>(p)->~T(); },
    sizeof(T),
    alignof(T),
    std::is_trivially_copyable_v<T>,
};

class ChanCore;  // opaque

ChanCore* chan_make(const ElemOps* ops, std::size_t cap);
void chan_retain(ChanCore* c) noexcept;
void chan_release(ChanCore* c) noexcept;
// Moves *elem into the channel (or straight to a waiting receiver). Blocks while full.
// Throws gort::Panic on a closed channel (then *elem is left untouched). c may be null:
// blocks forever.
void chan_send(ChanCore* c, void* elem);
// Move-constructs the received element into raw storage `out` and returns true, or
// returns false (out untouched) once the channel is closed and drained. c may be null.
bool chan_recv(ChanCore* c, void* out);
void chan_close(ChanCore* c);
std::size_t chan_len(const ChanCore* c) noexcept;
std::size_t chan_cap(const ChanCore* c) noexcept;

// One case of a select. For a send, elem points at the value to send; for a receive, at
// raw storage for the received element.
struct SelectCase {
  ChanCore* chan;  // null: a nil channel (never ready)
  void* elem;
  bool is_send;
};
// Go's selectgo. Returns the index of the case that ran, or n if none was ready and
// has_default. *recv_ok tells, for a receive case, whether a value was received (false:
// the channel was closed). Throws gort::Panic if the chosen case sends on a closed channel.
std::size_t select_run(SelectCase* cases, std::size_t n, bool has_default, bool* recv_ok);

}  // namespace gort::detail
