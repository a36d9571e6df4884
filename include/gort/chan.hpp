// Channels: Go's `chan T`. A Chan<T> is a cheap, copyable handle to a shared channel;
// default-constructed it is the nil channel. T may be move-only and need not be
// default-constructible.
#pragma once

#include <cstddef>
#include <iterator>
#include <optional>
#include <utility>

#include "gort/detail/chan_core.hpp"

namespace gort {

template <class T>
class Chan {
 public:
  Chan() = default;  // the nil channel: send and receive block forever
  Chan(const Chan& o) noexcept : core_(o.core_) {
    if (core_ != nullptr) detail::chan_retain(core_);
  }
  Chan(Chan&& o) noexcept : core_(std::exchange(o.core_, nullptr)) {}
  Chan& operator=(Chan o) noexcept {
    std::swap(core_, o.core_);
    return *this;
  }
  ~Chan() {
    if (core_ != nullptr) detail::chan_release(core_);
  }

  // ch <- v: blocks until delivered or buffered; throws gort::Panic if closed.
  void send(T v) const { detail::chan_send(core_, &v); }
  // v, ok := <-ch: std::nullopt once the channel is closed and drained.
  std::optional<T> recv() const {
    alignas(T) unsigned char buf[sizeof(T)];
    if (!detail::chan_recv(core_, buf)) return std::nullopt;
    T* p = std::launder(reinterpret_cast<T*>(buf));
    std::optional<T> out(std::move(*p));
    p->~T();
    return out;
  }
  // close(ch): throws gort::Panic if already closed or nil.
  void close() const { detail::chan_close(core_); }
  std::size_t len() const noexcept { return detail::chan_len(core_); }
  std::size_t cap() const noexcept { return detail::chan_cap(core_); }

  friend bool operator==(const Chan& a, const Chan& b) noexcept { return a.core_ == b.core_; }
  explicit operator bool() const noexcept { return core_ != nullptr; }  // non-nil

  // for (T v : ch): receives until the channel is closed and drained.
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(const Chan* ch) : ch_(ch) { ++*this; }
    T& operator*() { return *cur_; }
    iterator& operator++() {
      cur_.reset();  // T need not be assignable: re-emplace
      if (std::optional<T> v = ch_->recv()) {
        cur_.emplace(std::move(*v));
      } else {
        ch_ = nullptr;
      }
      return *this;
    }
    friend bool operator==(const iterator& a, const iterator& b) { return a.ch_ == b.ch_; }

   private:
    const Chan* ch_ = nullptr;
    std::optional<T> cur_;
  };
  iterator begin() const { return iterator(this); }
  iterator end() const { return iterator(); }

  detail::ChanCore* core() const noexcept { return core_; }

 private:
  template <class U>
  friend Chan<U> make_chan(std::size_t);
  explicit Chan(detail::ChanCore* c) noexcept : core_(c) {}
  detail::ChanCore* core_ = nullptr;
};

// make(chan T, cap)
template <class T>
Chan<T> make_chan(std::size_t cap = 0) {
  return Chan<T>(detail::chan_make(&detail::kElemOps<T>, cap));
}

}  // namespace gort
