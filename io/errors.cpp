#include <weft/io/errors.hpp>

#include <netdb.h>

namespace weft {

namespace {

class IoCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "weft.io"; }
  std::string message(int value) const override {
    switch (static_cast<io_errc>(value)) {
      case io_errc::end_of_stream:
        return "end of stream";
    }
    return "unknown weft.io error";
  }
};

class ResolverCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "weft.resolver"; }
  std::string message(int value) const override { return ::gai_strerror(value); }
};

}  // namespace

const std::error_category& io_category() noexcept {
  static const IoCategory category;
  return category;
}

const std::error_category& resolver_category() noexcept {
  static const ResolverCategory category;
  return category;
}

}  // namespace weft
