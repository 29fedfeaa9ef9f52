// A program that never called weft::process_main cannot start a `spawn` or
// `forkserver` child (the child would run its main again): the first start
// says so with std::logic_error, starts nothing, and the work stays
// unstarted. `fork` needs no process_main. This binary's main is gtest's.

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include <weft/weft.hpp>

#include "child_process_check.hpp"

namespace {

inline const weft::ProcessEntry<int()> one{"test.one", [] { return 1; }};
inline const weft::ProcessEntry<void(weft::StepEmitter<int>&)> emits_one{
    "test.emits_one", [](weft::StepEmitter<int>& emit) { emit(1); }};

class ForkWithoutProcessMain : public weft_test::ChildProcessLeakCheck {};

class WithoutProcessMain : public weft_test::ChildProcessLeakCheck,
                           public ::testing::WithParamInterface<weft::StartMethod> {};

INSTANTIATE_TEST_SUITE_P(StartMethods, WithoutProcessMain,
                         ::testing::Values(weft::StartMethod::spawn, weft::StartMethod::forkserver),
                         weft_test::start_method_name);

}  // namespace

TEST_P(WithoutProcessMain, StartThrowsALogicErrorNamingProcessMainAndStartsNothing) {
  weft::DestroyableProcess work(GetParam(), one);
  try {
    work.start();
    FAIL() << "no exception";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("weft::process_main(argc, argv)"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(work.pid(), -1);
  EXPECT_FALSE(work.join(std::chrono::seconds(0)));  // still unstarted
  EXPECT_FALSE(work.ran());
}

TEST_P(WithoutProcessMain, AStepThrowsTheSameAtConstruction) {
  EXPECT_THROW(weft::ChildProcessStep<int>(GetParam(), emits_one), std::logic_error);
}

TEST_F(ForkWithoutProcessMain, NeedsNoProcessMain) {
  weft::DestroyableProcess work(weft::StartMethod::fork, one);
  work.start();
  EXPECT_EQ(work.get_or_throw(), 1);
}
