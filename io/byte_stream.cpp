#include <weft/io/detail/byte_stream.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
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
  IoRequest r;
  r.op = Op::readv;
  r.address = const_cast<iovec*>(buffers);
  r.address_length = static_cast<unsigned>(count);
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
  std::vector<iovec> left(buffers, buffers + count);
  std::size_t total = 0;
  std::size_t first = 0;
  while (first < left.size()) {
    IoRequest r;
    r.op = Op::writev;
    r.address = left.data() + first;
    r.address_length = static_cast<unsigned>(left.size() - first);
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
