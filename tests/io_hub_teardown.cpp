// A hub destroyed while its fibers wait in I/O: every operation is taken back
// from the kernel before the fibers' stacks (which hold the buffers) go, the
// fibers unwind (destructors run), and no fd is left behind.

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

#include "fd_leak_check.hpp"

using namespace std::chrono_literals;

namespace {

// Counts the fibers whose stacks were unwound.
struct Unwound {
  std::atomic<int>* count;
  ~Unwound() { count->fetch_add(1); }
};

void run_rounds(weft::Hub& hub, int rounds) {
  for (int i = 0; i < rounds; ++i)
    hub.run_once(1ms);
}

}  // namespace

TEST(IoHubTeardown, FibersWaitingInAcceptReadAndWriteUnwindAndNothingLeaks) {
  const std::size_t fds_before = weft_test::open_fds();
  std::atomic<int> unwound{0};
  std::atomic<int> waiting{0};
  {
    std::optional<weft::TcpListener> listener;
    std::optional<weft::TcpStream> idle_client;  // never writes: its peer's read waits
    std::optional<weft::TcpStream> busy_client;  // writes to a peer that never reads
    std::optional<weft::TcpStream> unread_peer;
    std::optional<weft::Hub> hub(std::in_place);
    hub->spawn([&] {
      listener = weft::TcpListener::bind("127.0.0.1", 0);
      idle_client = weft::TcpStream::connect("127.0.0.1", listener->local_port());
      auto reader_side = listener->accept();
      busy_client = weft::TcpStream::connect("127.0.0.1", listener->local_port());
      unread_peer = listener->accept();
      weft::spawn([&, reader_side = std::move(reader_side)]() mutable {
        Unwound guard{&unwound};
        char buffer[4096];
        ++waiting;
        reader_side.read_some(buffer, sizeof buffer);
        ADD_FAILURE() << "the read returned";
      });
      weft::spawn([&] {
        Unwound guard{&unwound};
        ++waiting;
        listener->accept();  // nobody else connects
        ADD_FAILURE() << "accept returned";
      });
      weft::spawn([&] {
        Unwound guard{&unwound};
        std::vector<char> chunk(1 << 20, 'x');
        ++waiting;
        for (;;)  // the buffers fill, then the write waits in the kernel
          busy_client->write_all(chunk.data(), chunk.size());
      });
    });
    for (int i = 0; i < 200 && waiting.load() < 3; ++i)
      run_rounds(*hub, 1);
    run_rounds(*hub, 20);  // the write fills the socket buffers and parks in the kernel
    ASSERT_EQ(waiting.load(), 3);
    EXPECT_EQ(unwound.load(), 0);
    hub.reset();  // three fibers suspended in I/O
    EXPECT_EQ(unwound.load(), 3);
  }
  EXPECT_EQ(weft_test::open_fds(), fds_before);
}

TEST(IoHubTeardown, AHubOnAnotherThreadStopsWhileItsFibersWaitInIo) {
  const std::size_t fds_before = weft_test::open_fds();
  std::atomic<int> unwound{0};
  {
    weft::Runtime runtime(weft::RuntimeOptions{.hubs = 2});
    std::vector<weft::TcpStream> accepted;  // open until after stop(): the readers get nothing
    runtime.run([&] {
      auto listener = weft::TcpListener::bind("127.0.0.1", 0);
      const int port = listener.local_port();
      std::vector<weft::GreenThread<void>> readers;
      for (int i = 0; i < 16; ++i) {
        readers.push_back(runtime.spawn_on(1, [&, port] {
          Unwound guard{&unwound};
          auto stream = weft::TcpStream::connect("127.0.0.1", port);
          char buffer[256];
          stream.read_some(buffer, sizeof buffer);
        }));
      }
      for (int i = 0; i < 16; ++i)
        accepted.push_back(listener.accept());
      weft::sleep(10ms);  // the readers are now waiting in the kernel
      EXPECT_EQ(unwound.load(), 0);
    });
    runtime.stop();  // hub 1's fibers are still reading
    EXPECT_EQ(unwound.load(), 16);
  }
  EXPECT_EQ(weft_test::open_fds(), fds_before);
}

TEST(IoHubTeardown, AListenerOutlivesTheHubItAcceptedOnAndServesTheNextOne) {
  const std::size_t fds_before = weft_test::open_fds();
  {
    std::optional<weft::TcpListener> listener;
    weft::run([&] {
      listener = weft::TcpListener::bind("127.0.0.1", 0);
      auto client = weft::TcpStream::connect("127.0.0.1", listener->local_port());
      listener->accept();  // io_uring: a multishot accept now runs in this hub's ring
    });                    // the hub is destroyed with the listener still open
    weft::run([&] {        // a new hub
      auto client = weft::TcpStream::connect("127.0.0.1", listener->local_port());
      auto peer = weft::with_timeout(1s, [&] { return listener->accept(); });
      EXPECT_EQ(peer.peer_port(), client.local_port());
    });
    listener.reset();  // closed from a thread whose hub has gone
  }
  EXPECT_EQ(weft_test::open_fds(), fds_before);
}
