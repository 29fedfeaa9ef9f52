#pragma once
// Command-line flags of the form --name=value for the examples. Unknown flags
// and malformed values end the program with a message (exit status 2), so a
// typo in a benchmark script never runs the wrong configuration silently.

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

namespace example {

class Args {
 public:
  Args(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      const auto equals = arg.find('=');
      if (arg.rfind("--", 0) != 0 || equals == std::string::npos)
        fail("expected --name=value", arg);
      values_[arg.substr(2, equals - 2)] = arg.substr(equals + 1);
    }
  }

  std::string text(const std::string& name, const std::string& fallback) {
    auto found = values_.find(name);
    if (found == values_.end()) return fallback;
    std::string value = found->second;
    values_.erase(found);
    return value;
  }

  double number(const std::string& name, double fallback) {
    const std::string value = text(name, "");
    if (value.empty()) return fallback;
    char* end = nullptr;
    const double parsed = std::strtod(value.c_str(), &end);
    if (*end != '\0' || parsed < 0) fail("not a non-negative number", "--" + name + "=" + value);
    return parsed;
  }

  /// Call once every flag has been read: anything left over is a typo.
  void reject_unknown() const {
    if (!values_.empty()) fail("unknown flag", "--" + values_.begin()->first);
  }

 private:
  [[noreturn]] static void fail(const char* why, const std::string& arg) {
    std::fprintf(stderr, "%s: %s\n", why, arg.c_str());
    std::exit(2);
  }

  std::map<std::string, std::string> values_;
};

}  // namespace example
