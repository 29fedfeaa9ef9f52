// The hub's timer heap on its own: order, equal deadlines, cancel (also of a
// timer that is due while others fire), re-arming, extreme deadlines.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "runtime/timer_heap.hpp"

using weft::detail::TimerHeap;
using weft::detail::TimerNode;

namespace {

constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t int64_min = std::numeric_limits<std::int64_t>::min();

// What the test set each node to: the heap keeps the key in its own entries.
struct ModelTimer {
  TimerNode node;
  std::int64_t deadline_ns = 0;
  std::uint64_t arming_order = 0;  // equal deadlines fire in the order they were set
};

std::uint64_t armings = 0;

void arm(TimerHeap& heap, ModelTimer& timer, std::int64_t deadline_ns) {
  heap.arm(&timer.node, deadline_ns);
  timer.deadline_ns = deadline_ns;
  timer.arming_order = armings++;
}

const ModelTimer& model_of(const TimerNode* node) {
  return *static_cast<const ModelTimer*>(node->owner);
}

// The heap's order: deadline, then the order in which the timers were set.
bool fires_before(const TimerNode* a, const TimerNode* b) {
  const ModelTimer& x = model_of(a);
  const ModelTimer& y = model_of(b);
  return x.deadline_ns < y.deadline_ns ||
         (x.deadline_ns == y.deadline_ns && x.arming_order < y.arming_order);
}

std::vector<TimerNode*> pop_all_due(TimerHeap& heap, std::int64_t now) {
  std::vector<TimerNode*> fired;
  while (TimerNode* node = heap.pop_due(now))
    fired.push_back(node);
  return fired;
}

std::vector<std::unique_ptr<ModelTimer>> make_nodes(std::size_t count) {
  std::vector<std::unique_ptr<ModelTimer>> nodes;
  for (std::size_t i = 0; i < count; ++i) {
    nodes.push_back(std::make_unique<ModelTimer>());
    nodes.back()->node.owner = nodes.back().get();
  }
  return nodes;
}

}  // namespace

TEST(TimerHeap, PopsInDeadlineOrderAndEqualDeadlinesInArmingOrder) {
  // Few distinct deadlines among many timers: most of them tie.
  auto nodes = make_nodes(5000);
  std::mt19937_64 random(7);
  std::vector<std::pair<std::int64_t, std::size_t>> expected;  // (deadline, arming order)
  TimerHeap heap;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const auto deadline = static_cast<std::int64_t>(random() % 50);
    arm(heap, *nodes[i], deadline);
    expected.emplace_back(deadline, i);
  }
  std::sort(expected.begin(), expected.end());
  const std::vector<TimerNode*> fired = pop_all_due(heap, 49);
  ASSERT_EQ(fired.size(), nodes.size());
  for (std::size_t k = 0; k < fired.size(); ++k)
    ASSERT_EQ(fired[k], &nodes[expected[k].second]->node) << "at position " << k;
  EXPECT_TRUE(heap.empty());
}

TEST(TimerHeap, NothingPopsBeforeItsDeadline) {
  auto nodes = make_nodes(3);
  TimerHeap heap;
  arm(heap, *nodes[0], 100);
  arm(heap, *nodes[1], 200);
  arm(heap, *nodes[2], 300);
  EXPECT_EQ(heap.pop_due(99), nullptr);
  EXPECT_EQ(heap.top_deadline(), 100);
  EXPECT_EQ(pop_all_due(heap, 200), (std::vector<TimerNode*>{&nodes[0]->node, &nodes[1]->node}));
  EXPECT_EQ(heap.top(), &nodes[2]->node);
  EXPECT_TRUE(nodes[2]->node.armed());
  EXPECT_FALSE(nodes[0]->node.armed());
}

TEST(TimerHeap, ACancelledTimerNeverPopsAndTheRestKeepTheirOrder) {
  auto nodes = make_nodes(2000);
  std::mt19937_64 random(11);
  TimerHeap heap;
  for (auto& node : nodes)
    arm(heap, *node, static_cast<std::int64_t>(random() % 1000));
  std::vector<TimerNode*> kept;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (i % 3 == 0) {
      heap.disarm(&nodes[i]->node);
      EXPECT_FALSE(nodes[i]->node.armed());
    } else {
      kept.push_back(&nodes[i]->node);
    }
  }
  heap.disarm(&nodes[0]->node);  // again: a no-op
  EXPECT_EQ(heap.size(), kept.size());
  const std::vector<TimerNode*> fired = pop_all_due(heap, int64_max);
  ASSERT_EQ(fired.size(), kept.size());
  for (std::size_t k = 1; k < fired.size(); ++k)
    ASSERT_TRUE(fires_before(fired[k - 1], fired[k])) << "at position " << k;
}

TEST(TimerHeap, ATimerCancelledWhileOthersFireDoesNotFire) {
  // The hub pops a due timer and runs it; what it runs may cancel another
  // timer that is due too (a Timeout whose fiber a sleep's wake-up ends).
  auto nodes = make_nodes(3);
  TimerHeap heap;
  arm(heap, *nodes[0], 10);
  arm(heap, *nodes[1], 10);
  arm(heap, *nodes[2], 10);
  ASSERT_EQ(heap.pop_due(10), &nodes[0]->node);
  heap.disarm(&nodes[1]->node);
  EXPECT_EQ(pop_all_due(heap, 10), std::vector<TimerNode*>{&nodes[2]->node});
}

TEST(TimerHeap, ATimerArmedWhileOthersFireKeepsTheOrder) {
  auto nodes = make_nodes(3);
  TimerHeap heap;
  arm(heap, *nodes[0], 10);
  arm(heap, *nodes[1], 10);
  ASSERT_EQ(heap.pop_due(10), &nodes[0]->node);
  arm(heap, *nodes[2], 10);  // set later: fires after the one already waiting
  arm(heap, *nodes[0], 5);   // re-armed for the past: fires first
  EXPECT_EQ(pop_all_due(heap, 10),
            (std::vector<TimerNode*>{&nodes[0]->node, &nodes[1]->node, &nodes[2]->node}));
}

TEST(TimerHeap, ReArmingMovesATimerAndCountsAsSettingItAgain) {
  auto nodes = make_nodes(3);
  TimerHeap heap;
  arm(heap, *nodes[0], 50);
  arm(heap, *nodes[1], 50);
  arm(heap, *nodes[2], 70);
  arm(heap, *nodes[0], 50);  // same deadline, set again: now behind nodes[1]
  arm(heap, *nodes[2], 10);
  EXPECT_EQ(heap.size(), 3u);
  EXPECT_EQ(pop_all_due(heap, 100),
            (std::vector<TimerNode*>{&nodes[2]->node, &nodes[1]->node, &nodes[0]->node}));
}

TEST(TimerHeap, FarAndNearDeadlinesOrderWithoutOverflow) {
  // Deadlines are compared, never subtracted: the extremes order correctly.
  auto nodes = make_nodes(6);
  TimerHeap heap;
  arm(heap, *nodes[0], int64_max);
  arm(heap, *nodes[1], 0);
  arm(heap, *nodes[2], int64_min);
  arm(heap, *nodes[3], int64_max - 1);
  arm(heap, *nodes[4], -1);
  arm(heap, *nodes[5], int64_max);
  EXPECT_EQ(pop_all_due(heap, 0),
            (std::vector<TimerNode*>{&nodes[2]->node, &nodes[4]->node, &nodes[1]->node}));
  EXPECT_EQ(heap.pop_due(int64_max - 2), nullptr);
  EXPECT_EQ(pop_all_due(heap, int64_max),
            (std::vector<TimerNode*>{&nodes[3]->node, &nodes[0]->node, &nodes[5]->node}));
}

TEST(TimerHeap, SlotsAreReusedAcrossManyArmsAndCancels) {
  // Arm and cancel far more timers than are ever armed at once, against a
  // sorted model of what is armed.
  auto nodes = make_nodes(64);
  std::mt19937_64 random(3);
  TimerHeap heap;
  for (int step = 0; step < 200000; ++step) {
    ModelTimer* node = nodes[random() % nodes.size()].get();
    if (node->node.armed() && random() % 2 == 0) {
      heap.disarm(&node->node);
    } else {
      arm(heap, *node, static_cast<std::int64_t>(random() % 100));
    }
  }
  std::vector<TimerNode*> armed;
  for (auto& node : nodes)
    if (node->node.armed()) armed.push_back(&node->node);
  std::sort(armed.begin(), armed.end(), fires_before);
  EXPECT_EQ(heap.size(), armed.size());
  EXPECT_EQ(pop_all_due(heap, 100), armed);
}
