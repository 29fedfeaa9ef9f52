#include <weft/io/file.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>

#include <weft/process/to_thread.hpp>
#include <weft/runtime/detail/fiber_base.hpp>

#include "io/socket_fd.hpp"
#include "runtime/hub_core.hpp"
#include "runtime/reactor/io_call.hpp"

namespace weft {

namespace {

using Op = detail::IoRequest::Op;

// A fiber waits: for the ring on io_uring, for a cached thread on epoll
// (readiness means nothing for files: the call would block the hub). A plain
// thread has nobody to yield to and makes the blocking call itself.
int file_call(detail::IoRequest& r, std::uint64_t id, const char* what) {
  detail::HubCore* hub = detail::HubCore::current();
  if (!hub || !detail::current_fiber()) return detail::call_now(r);
  if (hub->backend().runs_operations()) return detail::run_io(r, id, what);
  return to_thread::run_sync([&r] { return detail::call_now(r); });
}

detail::IoRequest positional(Op op, int fd, void* buffer, std::size_t length, off_t offset) {
  detail::IoRequest r;
  r.op = op;
  r.fd = fd;
  r.buffer = buffer;
  r.length = std::min(length, detail::IoRequest::max_length);
  r.offset = offset;
  return r;
}

}  // namespace

File::File(int fd, std::string path) noexcept
    : fd_(fd), id_(detail::next_fd_id()), path_(std::move(path)) {}

File::File(File&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      id_(std::exchange(other.id_, 0)),
      path_(std::move(other.path_)) {}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    id_ = std::exchange(other.id_, 0);
    path_ = std::move(other.path_);
  }
  return *this;
}

File::~File() {
  close();
}

File File::open(const std::string& path, int flags, mode_t mode) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) detail::throw_errno(errno, "File::open " + path);
  return File(fd, path);
}

std::size_t File::read_at(void* buffer, std::size_t size, off_t offset) {
  if (fd_ < 0) detail::throw_errno(EBADF, "File::read_at");
  if (offset < 0) detail::throw_errno(EINVAL, "File::read_at " + path_ + ": negative offset");
  auto* bytes = static_cast<char*>(buffer);
  std::size_t done = 0;
  // Loop on short reads, so that fewer bytes than asked always means end of file.
  while (done < size) {
    auto r =
        positional(Op::read, fd_, bytes + done, size - done, offset + static_cast<off_t>(done));
    const int rc = file_call(r, id_, "File::read_at");
    if (rc < 0) detail::throw_errno(-rc, "File::read_at " + path_);
    if (rc == 0) break;
    done += static_cast<std::size_t>(rc);
  }
  return done;
}

std::size_t File::write_at(const void* data, std::size_t size, off_t offset) {
  if (fd_ < 0) detail::throw_errno(EBADF, "File::write_at");
  if (offset < 0) detail::throw_errno(EINVAL, "File::write_at " + path_ + ": negative offset");
  const auto* bytes = static_cast<const char*>(data);
  std::size_t done = 0;
  while (done < size) {
    auto r = positional(Op::write, fd_, const_cast<char*>(bytes + done), size - done,
                        offset + static_cast<off_t>(done));
    const int rc = file_call(r, id_, "File::write_at");
    if (rc < 0) detail::throw_errno(-rc, "File::write_at " + path_);
    // pwrite(2) of a regular file makes progress or fails; 0 would loop forever.
    if (rc == 0) detail::throw_errno(EIO, "File::write_at " + path_ + ": wrote nothing");
    done += static_cast<std::size_t>(rc);
  }
  return done;
}

void File::fsync() {
  if (fd_ < 0) detail::throw_errno(EBADF, "File::fsync");
  detail::IoRequest r;
  r.op = Op::fsync;
  r.fd = fd_;
  const int rc = file_call(r, id_, "File::fsync");
  if (rc < 0) detail::throw_errno(-rc, "File::fsync " + path_);
}

off_t File::size() const {
  struct stat status {};
  if (::fstat(fd_, &status) < 0) detail::throw_errno(errno, "File::size " + path_);
  return status.st_size;
}

void File::close() noexcept {
  if (fd_ < 0) return;
  // No backend.forget(): files are never watched (epoll sends their calls to
  // the thread cache), so the backend holds nothing about this fd.
  ::close(fd_);
  fd_ = -1;
}

}  // namespace weft
