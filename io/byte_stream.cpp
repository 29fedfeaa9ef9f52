#include <weft/io/detail/byte_stream.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "io/socket_fd.hpp"

namespace weft::detail {

namespace {

using Op = IoRequest::Op;

IoRequest request(Op op, void* buffer, std::size_t length) {
  IoRequest r;
  r.op = op;
  r.buffer = buffer;
  r.length = std::min(length, IoRequest::max_length);
  r.stream = true;
  return r;
}

// Scatter and gather transfers go through recvmsg and sendmsg: sendmsg takes
// MSG_NOSIGNAL (writev raises SIGPIPE when the peer has gone), and both are
// stream transfers whose shortness the readiness tracking needs to see.
IoRequest message_request(Op op, msghdr& message, iovec* buffers, int count) {
  message = {};
  message.msg_iov = buffers;
  message.msg_iovlen = static_cast<std::size_t>(count);
  std::size_t total = 0;
  for (int i = 0; i < count; ++i)
    total += buffers[i].iov_len;
  IoRequest r;
  r.op = op;
  r.address = &message;
  r.length = std::min(total, IoRequest::max_length);
  r.stream = true;
  return r;
}

void require_buffer_count(int count, const char* what) {
  if (count < 0) {
    throw std::invalid_argument(std::string(what) + ": a negative count of buffers (" +
                                std::to_string(count) + ")");
  }
}

std::size_t checked(int rc, const char* what) {
  if (rc < 0) throw_errno(-rc, what);
  return static_cast<std::size_t>(rc);
}

}  // namespace

ByteStream::ByteStream(ByteStream&& other) noexcept
    : names_(other.names_), socket_(std::exchange(other.socket_, {})) {}

ByteStream& ByteStream::operator=(ByteStream&& other) noexcept {
  if (this != &other) {
    close();
    socket_ = std::exchange(other.socket_, {});
  }
  return *this;
}

ByteStream::~ByteStream() {
  close();
}

std::size_t ByteStream::read_some(void* buffer, std::size_t size) {
  if (size == 0) {  // 0 is the end of the stream: a read of nothing cannot answer
    throw std::invalid_argument(std::string(names_->read_some) + ": a buffer of 0 bytes");
  }
  auto r = request(Op::recv, buffer, size);
  return checked(socket_call(socket_, r, names_->read_some), names_->read_some);
}

void ByteStream::read_exact(void* buffer, std::size_t size) {
  auto* bytes = static_cast<char*>(buffer);
  std::size_t done = 0;
  while (done < size) {
    const std::size_t got = read_some(bytes + done, size - done);
    if (got == 0) {
      throw std::system_error(make_error_code(io_errc::end_of_stream),
                              std::string(names_->read_exact) +
                                  ": the peer closed the stream after " + std::to_string(done) +
                                  " of " + std::to_string(size) + " bytes");
    }
    done += got;
  }
}

std::size_t ByteStream::readv(const iovec* buffers, int count) {
  require_buffer_count(count, names_->readv);
  msghdr message;
  auto r = message_request(Op::recvmsg, message, const_cast<iovec*>(buffers), count);
  if (r.length == 0) {
    throw std::invalid_argument(std::string(names_->readv) + ": buffers of 0 bytes in all");
  }
  return checked(socket_call(socket_, r, names_->readv), names_->readv);
}

void ByteStream::write_all(const void* buffer, std::size_t size) {
  const auto* bytes = static_cast<const char*>(buffer);
  while (size > 0) {
    auto r = request(Op::send, const_cast<char*>(bytes), size);
    const std::size_t sent = checked(socket_call(socket_, r, names_->write_all), names_->write_all);
    bytes += sent;
    size -= sent;
  }
}

std::size_t ByteStream::writev(const iovec* buffers, int count) {
  require_buffer_count(count, names_->writev);
  std::vector<iovec> left(buffers, buffers + count);
  std::size_t total = 0;
  std::size_t first = 0;
  while (first < left.size()) {
    msghdr message;
    auto r = message_request(Op::sendmsg, message, left.data() + first,
                             static_cast<int>(left.size() - first));
    std::size_t sent = checked(socket_call(socket_, r, names_->writev), names_->writev);
    total += sent;
    while (first < left.size() && sent >= left[first].iov_len) {
      sent -= left[first].iov_len;
      ++first;
    }
    if (first < left.size()) {
      left[first].iov_base = static_cast<char*>(left[first].iov_base) + sent;
      left[first].iov_len -= sent;
    }
  }
  return total;
}

void ByteStream::shutdown() {
  if (::shutdown(socket_.fd, SHUT_WR) < 0) throw_errno(errno, names_->shutdown);
}

void ByteStream::close() noexcept {
  close_socket(socket_);
}

}  // namespace weft::detail
