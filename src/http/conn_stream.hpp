// ConnStream: a gort::net::Conn as a Boost.Beast SyncReadStream and SyncWriteStream, so
// Beast's HTTP parser (http::read_header, http::read) reads straight from a goroutine's
// connection. Beast's sync algorithms call read_some/write_some and look at the
// error_code; gort's Conn throws std::system_error and returns 0 at end of stream. The
// adapter translates: 0 bytes -> asio's error::eof (what Beast turns into
// http::error::end_of_stream or partial_message), a std::system_error -> the same errno
// in boost::system's generic category (ETIMEDOUT for a passed deadline, EBADF for a
// closed conn, ECONNRESET...). Nothing else: no buffering (Beast's flat_buffer does it),
// no state.
//
// Context: goroutine (the calls park in the netpoller). Exceptions are caught and turned
// into codes inside each call, before anything can park: an exception being handled is
// thread state, and a goroutine may resume on another thread.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>
#include <cstddef>
#include <span>
#include <system_error>

#include "gort/net.hpp"

namespace gort::http::detail {

class ConnStream {
 public:
  explicit ConnStream(net::Conn& c) noexcept : conn_(c) {}

  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, boost::system::error_code& ec) {
    const boost::asio::mutable_buffer b = first_nonempty(buffers);
    ec = {};
    if (b.size() == 0) return 0;
    std::size_t n = 0;
    try {
      n = conn_.read(std::span(static_cast<std::byte*>(b.data()), b.size()));
    } catch (const std::system_error& e) {
      ec = translate(e);
      return 0;
    }
    if (n == 0) ec = boost::asio::error::eof;
    return n;
  }

  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers, boost::system::error_code& ec) {
    std::size_t total = 0;
    ec = {};
    try {
      for (auto it = boost::asio::buffer_sequence_begin(buffers);
           it != boost::asio::buffer_sequence_end(buffers); ++it) {
        const boost::asio::const_buffer b(*it);
        conn_.write(std::span(static_cast<const std::byte*>(b.data()), b.size()));
        total += b.size();
      }
    } catch (const std::system_error& e) {
      ec = translate(e);
    }
    return total;
  }

  // The throwing forms the concepts also require.
  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers) {
    boost::system::error_code ec;
    const std::size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers) {
    boost::system::error_code ec;
    const std::size_t n = write_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  template <class BufferSequence>
  static boost::asio::mutable_buffer first_nonempty(const BufferSequence& buffers) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      const boost::asio::mutable_buffer b(*it);
      if (b.size() != 0) return b;
    }
    return {};
  }
  static boost::system::error_code translate(const std::system_error& e) noexcept {
    return {e.code().value(), boost::system::generic_category()};
  }

  net::Conn& conn_;
};

static_assert(boost::beast::is_sync_read_stream<ConnStream>::value);
static_assert(boost::beast::is_sync_write_stream<ConnStream>::value);

}  // namespace gort::http::detail
