#pragma once
/// A circular doubly linked intrusive list: O(1) push, pop and unlink of an
/// element that knows its hook. Used for the ready queue and wait queues.
///
/// An element takes part in a list by deriving from `ListHook<Tag>`; the tag
/// lets one object sit in several lists at once (a fiber is in the hub's list
/// of live fibers and, at times, in its ready queue).

#include <cstddef>

namespace weft::detail {

struct ListLinks {
  ListLinks* next = nullptr;
  ListLinks* prev = nullptr;

  bool linked() const noexcept { return next != nullptr; }

  void unlink() noexcept {
    next->prev = prev;
    prev->next = next;
    next = prev = nullptr;
  }
};

template <class Tag>
struct ListHook : ListLinks {};

template <class T, class Tag>
class IntrusiveList {
 public:
  IntrusiveList() noexcept { head_.next = head_.prev = &head_; }
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;

  bool empty() const noexcept { return head_.next == &head_; }
  std::size_t size() const noexcept { return size_; }

  void push_back(T* item) noexcept { insert_before(&head_, hook(item)); }
  void push_front(T* item) noexcept { insert_before(head_.next, hook(item)); }

  T* front() const noexcept { return empty() ? nullptr : owner(head_.next); }

  T* pop_front() noexcept {
    if (empty()) return nullptr;
    ListLinks* links = head_.next;
    links->unlink();
    --size_;
    return owner(links);
  }

  static bool contains_anywhere(const T* item) noexcept {
    return static_cast<const ListHook<Tag>*>(item)->linked();
  }

  void remove(T* item) noexcept {
    hook(item)->unlink();
    --size_;
  }

  template <class Fn>
  void for_each(Fn&& fn) const {
    for (ListLinks* l = head_.next; l != &head_;) {
      ListLinks* next = l->next;  // fn may unlink the element it is given
      fn(owner(l));
      l = next;
    }
  }

 private:
  static ListLinks* hook(T* item) noexcept { return static_cast<ListHook<Tag>*>(item); }
  static T* owner(ListLinks* links) noexcept {
    return static_cast<T*>(static_cast<ListHook<Tag>*>(links));
  }

  void insert_before(ListLinks* position, ListLinks* links) noexcept {
    links->next = position;
    links->prev = position->prev;
    position->prev->next = links;
    position->prev = links;
    ++size_;
  }

  ListLinks head_;
  std::size_t size_ = 0;
};

}  // namespace weft::detail
