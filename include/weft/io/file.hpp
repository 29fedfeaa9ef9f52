#pragma once
/// File: positional reads and writes that never block the hub. With io_uring
/// they run in the kernel's ring; with epoll (which cannot wait for files)
/// each call runs on the thread cache while the calling fiber waits. Errors
/// are std::system_error with the errno, the call and the path.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace weft {

/// An open file; owns its fd (move-only, closed on destruction).
///
/// From a fiber, every call but open, size and close is a suspension point
/// (kill and Timeout interrupt the wait; an operation the kernel or a worker
/// thread has already started still finishes first, so the buffer is never
/// written after the call has returned or thrown). Outside a fiber (a plain
/// thread, or a thread-cache worker inside to_thread::run_sync) the calls
/// are the plain blocking ones: a File can be handed to threads. Any number
/// of fibers may read and write at once, at their own offsets.
class File {
 public:
  File() noexcept = default;
  File(File&& other) noexcept;
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  /// open(2) with `flags` (O_RDONLY, O_RDWR | O_CREAT, ...) and O_CLOEXEC.
  /// This one is a plain open on the calling thread: it may block on a slow
  /// file system (NFS) for as long as open(2) does; wrap it in
  /// to_thread::run_sync where that matters. Does not suspend.
  static File open(const std::string& path, int flags, mode_t mode = 0644);

  /// Reads up to `size` bytes at `offset` (pread); returns the bytes read,
  /// fewer than `size` only at end of file, 0 at or past it.
  std::size_t read_at(void* buffer, std::size_t size, off_t offset);
  /// Writes all `size` bytes at `offset` (pwrite, again after a short write);
  /// returns `size`. Not with O_APPEND, where Linux ignores the offset.
  std::size_t write_at(const void* data, std::size_t size, off_t offset);
  /// Flushes the file's data and metadata to the device (fsync).
  void fsync();
  /// The file's size in bytes (fstat). Does not suspend.
  off_t size() const;

  /// Closes the file now (also done by the destructor). Idempotent; errors
  /// of close(2) are ignored: call fsync first to see them.
  void close() noexcept;

  bool is_open() const noexcept { return fd_ >= 0; }
  int native_handle() const noexcept { return fd_; }
  /// The path it was opened with.
  const std::string& path() const noexcept { return path_; }

 private:
  File(int fd, std::string path) noexcept;

  int fd_ = -1;
  std::uint64_t id_ = 0;  // names the open file for the backend (see runtime/reactor/backend.hpp)
  std::string path_;
};

}  // namespace weft
