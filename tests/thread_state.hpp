#pragma once
// A barrier for "that thread is blocked in the kernel now" (its state in
// /proc is S, an interruptible sleep): a test can make something happen while
// a hub or a host loop waits in epoll_wait, poll or io_uring_enter, instead of
// sleeping to make that likely. A thread that sleeps for another reason (a
// lock inside the allocator) only makes the event come early, which the
// tests that use this accept: they never fail because of it, they just test
// the other order that time.

#include <sys/types.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace weft_test {

inline pid_t this_thread_tid() {
  return ::gettid();
}

inline bool sleeping_in_kernel(pid_t tid) {
  std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  std::getline(stat, line);
  // "tid (comm) S ...": the name may hold spaces and parentheses.
  const auto end_of_name = line.rfind(')');
  return end_of_name != std::string::npos && end_of_name + 2 < line.size() &&
         line[end_of_name + 2] == 'S';
}

inline void wait_until_sleeping(pid_t tid) {
  while (!sleeping_in_kernel(tid))
    std::this_thread::yield();
}

}  // namespace weft_test
