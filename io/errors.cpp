#include <weft/io/errors.hpp>

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

}  // namespace

const std::error_category& io_category() noexcept {
  static const IoCategory category;
  return category;
}

}  // namespace weft
