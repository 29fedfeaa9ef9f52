// The C++ runtime keeps per-thread exception state (the exception being
// handled, the count in flight); fibers that switch inside catch blocks or
// while unwinding must each see their own.

#include <gtest/gtest.h>

#include <exception>
#include <string>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

TEST(ExceptionState, RethrowInsideACatchBlockAfterOtherFibersThrewAndCaught) {
  weft::run([] {
    auto a = weft::spawn([]() -> std::string {
      try {
        throw std::runtime_error("from a");
      } catch (...) {
        weft::sleep(1ms);  // b throws and catches while a is inside its handler
        try {
          throw;
        } catch (const std::runtime_error& e) {
          return e.what();
        }
      }
    });
    auto b = weft::spawn([] {
      for (int i = 0; i < 3; ++i) {
        try {
          throw std::logic_error("from b");
        } catch (const std::logic_error&) {
          weft::yield();
        }
      }
    });
    EXPECT_EQ(a.wait(), "from a");
    b.wait();
    EXPECT_EQ(std::current_exception(), nullptr);
  });
}

TEST(ExceptionState, UncaughtExceptionsIsPerFiberWhileUnwinding) {
  weft::run([] {
    struct SuspendsWhileUnwinding {
      int& seen;
      ~SuspendsWhileUnwinding() {
        weft::yield();
        seen = std::uncaught_exceptions();
      }
    };
    int during_unwind = -1;
    int other_fiber = -1;
    auto unwinding = weft::spawn([&] {
      SuspendsWhileUnwinding guard{during_unwind};
      throw std::runtime_error("unwinding");
    });
    auto other = weft::spawn([&] {
      weft::yield();
      other_fiber = std::uncaught_exceptions();
    });
    EXPECT_THROW(unwinding.wait(), std::runtime_error);
    other.wait();
    EXPECT_EQ(during_unwind, 1);
    EXPECT_EQ(other_fiber, 0);
  });
}
