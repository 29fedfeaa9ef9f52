// Cancelling an io_uring operation when the ring has no room for the cancel:
// it is kept for a later round, reaches the operation it was meant for, and
// never the next operation that a fiber starts at the same address (requests
// live on their fiber's stack). Forces io_uring, whatever WEFT_BACKEND says.

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>

#include <weft/weft.hpp>

#include "fd_leak_check.hpp"
#include "runtime/hub_core.hpp"

using namespace std::chrono_literals;

namespace {

class UringCancel : public weft_test::FdLeakCheck {
 protected:
  void SetUp() override {
    if (const char* forced = std::getenv("WEFT_BACKEND")) saved_backend_ = forced;
    ::setenv("WEFT_BACKEND", "io_uring", 1);
  }
  void TearDown() override {
    if (saved_backend_) {
      ::setenv("WEFT_BACKEND", saved_backend_->c_str(), 1);
    } else {
      ::unsetenv("WEFT_BACKEND");
    }
  }

 private:
  std::optional<std::string> saved_backend_;
};

// A plain blocking client connected to `listener` (accepted later by a fiber).
int connect_client(const weft::TcpListener& listener) {
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(listener.local_port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  return client;
}

// Up to 100 rounds of `hub` (each waiting at most `wait`) until `done()`.
template <class Done>
bool run_until(weft::Hub& hub, Done done, std::chrono::nanoseconds wait = 0ns) {
  for (int round = 0; round < 100 && !done(); ++round)
    hub.run_once(wait);
  return done();
}

}  // namespace

TEST_F(UringCancel, ACancelKeptForAFullRingNeverReachesTheNextOperationAtTheSameAddress) {
  weft::Hub hub;
  ASSERT_EQ(hub.backend_name(), "io_uring");
  auto& backend = weft::detail::HubCore::current()->backend();
  auto listener = weft::TcpListener::bind("127.0.0.1", 0);
  const int client = connect_client(listener);

  int reads_started = 0;
  std::size_t got[2] = {0, 0};
  std::string error[2];
  hub.spawn([&] {
    auto stream = listener.accept();
    char byte;
    for (int i = 0; i < 2; ++i) {
      try {
        std::optional<weft::Timeout> limit;
        if (i == 0) limit.emplace(1ms);
        ++reads_started;
        got[i] = stream.read_some(&byte, 1);  // one call site: one request address
      } catch (const std::exception& e) {
        error[i] = e.what();
      }
    }
  });
  ASSERT_TRUE(run_until(hub, [&] { return reads_started == 1; }));
  hub.run_once();  // the first read is in the kernel

  // Its Timeout fires with no room for the cancel: the cancel is kept.
  backend.set_ring_full_for_cancels_for_test(true);
  ASSERT_TRUE(run_until(
      hub, [&] { return !hub.next_deadline().has_value(); }, 10ms));
  // The read ends on its own, with data, before the cancel could go out; the
  // fiber starts its second read, at the first one's address.
  ASSERT_EQ(::write(client, "a", 1), 1);
  ASSERT_TRUE(run_until(
      hub, [&] { return reads_started == 2; }, 10ms));
  EXPECT_EQ(got[0], 1u);
  EXPECT_EQ(error[0], "");
  hub.run_once();  // the second read is in the kernel

  // Room again: the kept cancel must not go out now and cut the second read.
  backend.set_ring_full_for_cancels_for_test(false);
  hub.run_once();
  hub.run_once();
  ASSERT_EQ(::write(client, "b", 1), 1);
  ASSERT_TRUE(run_until(
      hub, [&] { return hub.live_fibers() == 0; }, 10ms));
  EXPECT_EQ(got[1], 1u);
  EXPECT_EQ(error[1], "");
  ::close(client);
}

TEST_F(UringCancel, ACancelKeptForAFullRingReachesItsOperationOnceThereIsRoom) {
  weft::Hub hub;
  ASSERT_EQ(hub.backend_name(), "io_uring");
  auto& backend = weft::detail::HubCore::current()->backend();
  auto listener = weft::TcpListener::bind("127.0.0.1", 0);
  const int client = connect_client(listener);

  bool reading = false;
  bool timed_out = false;
  hub.spawn([&] {
    auto stream = listener.accept();
    char byte;
    try {
      weft::Timeout limit(1ms);
      reading = true;
      stream.read_some(&byte, 1);
    } catch (const weft::TimeoutError&) {
      timed_out = true;
    }
  });
  ASSERT_TRUE(run_until(hub, [&] { return reading; }));
  hub.run_once();  // the read is in the kernel

  backend.set_ring_full_for_cancels_for_test(true);
  ASSERT_TRUE(run_until(
      hub, [&] { return !hub.next_deadline().has_value(); }, 10ms));
  hub.run_once(1ms);
  EXPECT_FALSE(timed_out);  // the read is still in the kernel: no cancel went out

  backend.set_ring_full_for_cancels_for_test(false);
  ASSERT_TRUE(run_until(
      hub, [&] { return timed_out; }, 10ms));
  EXPECT_EQ(hub.live_fibers(), 0u);
  ::close(client);
}
