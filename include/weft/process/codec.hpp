#pragma once
/// Codec<T>: how a value crosses a process boundary (arguments and results of
/// a DestroyableProcess, the events of a child-process step).
///
///   static void encode(const T& value, std::string& out);  // appends to out
///   static T decode(std::string_view& in);  // reads from the front, advances in
///
/// Provided for bool, every integer and character type, float, double, long
/// double, enums, std::string, std::vector, std::pair and std::tuple of codec
/// types, nested freely. Users specialise weft::Codec for their own types,
/// right after the type's definition (before anything asks has_codec of it).
/// A Codec may also declare `static constexpr std::size_t min_encoded_size`
/// (the fewest bytes any value takes), which lets a vector of it check a
/// decoded count against the bytes left before reserving.
///
/// The encoding, meant for the same program on both ends of a pipe but
/// well-defined nonetheless:
/// - integers and character types: sizeof(T) bytes, two's complement, little
///   endian; bool: one byte, 0 or 1 (anything else is rejected);
/// - float and double: their IEEE bit pattern as a little-endian uint32 or
///   uint64, so every NaN payload, the infinities and -0.0 round-trip exactly;
///   long double: its significant bytes as they lie in memory (10 for x87
///   extended precision, whose 6 padding bytes are not sent; sizeof otherwise);
/// - enums: as their underlying type;
/// - std::string: a uint64 byte count, then the bytes; std::vector: a uint64
///   element count, then each element (vectors of one-byte integers as a
///   single block of bytes);
/// - std::pair and std::tuple: their elements in order, nothing else, so
///   encode_all(a, b) is the encoding of std::tuple{a, b}.
///
/// Decoding never reads past the view and never trusts a decoded length with
/// an allocation: a count larger than the bytes left could hold is rejected
/// before reserving. Bad input throws CodecError.
///
/// Everything here is plain computation, callable from any thread or fiber;
/// nothing suspends.

#include <algorithm>
#include <bit>
#include <climits>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace weft {

static_assert(CHAR_BIT == 8, "weft::Codec assumes 8-bit bytes");

/// Thrown by a decode given truncated or corrupt bytes; what() names the type
/// being decoded and why ("truncated", "length too large", "trailing bytes",
/// "invalid bool").
class CodecError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// How T is written to and read from bytes. Deliberately declared and not
/// defined: using a type without a Codec fails to compile with "incomplete
/// type 'weft::Codec<T>'", and the helpers below say so in words.
template <class T>
struct Codec;

namespace detail {

/// T has a usable Codec: encode(const T&, std::string&) and a decode that
/// returns a T.
template <class T>
concept has_codec = requires(const T& value, std::string& out, std::string_view& in) {
  Codec<T>::encode(value, out);
  { Codec<T>::decode(in) } -> std::same_as<T>;
};

/// A result type a process may send back: a codec type, or void (nothing sent).
template <class T>
concept has_codec_or_void = std::is_void_v<T> || has_codec<T>;

/// The type's name as written in C++ (abi::__cxa_demangle); defined in step.cpp.
std::string demangled_name(const std::type_info& type);
/// The same for a mangled name, as std::type_info::name() gives it.
std::string demangled_name(const char* mangled);

template <class T>
struct CodecTypeName {
  static std::string get() {
    if constexpr (std::is_same_v<T, bool>)
      return "bool";
    else if constexpr (std::is_same_v<T, char>)
      return "char";
    else if constexpr (std::is_same_v<T, signed char>)
      return "signed char";
    else if constexpr (std::is_same_v<T, unsigned char>)
      return "unsigned char";
    else if constexpr (std::is_same_v<T, short>)
      return "short";
    else if constexpr (std::is_same_v<T, unsigned short>)
      return "unsigned short";
    else if constexpr (std::is_same_v<T, int>)
      return "int";
    else if constexpr (std::is_same_v<T, unsigned>)
      return "unsigned int";
    else if constexpr (std::is_same_v<T, long>)
      return "long";
    else if constexpr (std::is_same_v<T, unsigned long>)
      return "unsigned long";
    else if constexpr (std::is_same_v<T, long long>)
      return "long long";
    else if constexpr (std::is_same_v<T, unsigned long long>)
      return "unsigned long long";
    else if constexpr (std::is_same_v<T, float>)
      return "float";
    else if constexpr (std::is_same_v<T, double>)
      return "double";
    else if constexpr (std::is_same_v<T, long double>)
      return "long double";
    else if constexpr (std::is_same_v<T, std::string>)
      return "std::string";
    else
      return demangled_name(typeid(T));
  }
};
template <class T>
struct CodecTypeName<std::vector<T>> {
  static std::string get() { return "std::vector<" + CodecTypeName<T>::get() + ">"; }
};
template <class A, class B>
struct CodecTypeName<std::pair<A, B>> {
  static std::string get() {
    return "std::pair<" + CodecTypeName<A>::get() + ", " + CodecTypeName<B>::get() + ">";
  }
};
template <class... Ts>
struct CodecTypeName<std::tuple<Ts...>> {
  static std::string get() {
    std::string name = "std::tuple<";
    [[maybe_unused]] const char* separator = "";
    ((name += separator, name += CodecTypeName<Ts>::get(), separator = ", "), ...);
    return name + ">";
  }
};

template <class T>
[[noreturn]] void throw_codec_error(std::string_view why) {
  std::string message = "weft::Codec<" + CodecTypeName<T>::get() + ">: ";
  message += why;
  throw CodecError(message);
}

/// Throws "truncated" unless `in` holds at least `needed` bytes.
template <class T>
void require_bytes(std::string_view in, std::uint64_t needed) {
  if (in.size() < needed) {
    throw_codec_error<T>("truncated (needs " + std::to_string(needed) + " bytes, " +
                         std::to_string(in.size()) + " left)");
  }
}

/// Appends `value` as sizeof(U) little-endian bytes.
template <std::unsigned_integral U>
void put_le(std::string& out, U value) {
  char bytes[sizeof(U)];
  for (std::size_t i = 0; i < sizeof(U); ++i) {
    bytes[i] = static_cast<char>(static_cast<unsigned char>(value >> (8 * i)));
  }
  out.append(bytes, sizeof(U));
}

/// Reads sizeof(U) little-endian bytes from the front of `in` (which the caller
/// has checked holds them) and advances past them.
template <std::unsigned_integral U>
U take_le(std::string_view& in) {
  U value = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i) {
    value |= static_cast<U>(static_cast<U>(static_cast<unsigned char>(in[i])) << (8 * i));
  }
  in.remove_prefix(sizeof(U));
  return value;
}

/// Reads the uint64 length or count that begins a string or vector of type T.
template <class T>
std::uint64_t take_length(std::string_view& in) {
  require_bytes<T>(in, sizeof(std::uint64_t));
  return take_le<std::uint64_t>(in);
}

template <class T>
[[noreturn]] void throw_length_too_large(std::uint64_t length, std::string_view in) {
  throw_codec_error<T>("length too large (" + std::to_string(length) + " with " +
                       std::to_string(in.size()) + " bytes left)");
}

/// The fewest bytes any T encodes to: the Codec's min_encoded_size, or 0 when
/// it does not say.
template <class T>
constexpr std::size_t codec_min_encoded_size() {
  if constexpr (requires { Codec<T>::min_encoded_size; }) {
    return Codec<T>::min_encoded_size;
  } else {
    return 0;
  }
}

/// One-byte integers, whose encoding is their object representation: a vector
/// of them goes as one block.
template <class T>
concept byte_like = std::integral<T> && !std::is_same_v<T, bool> && sizeof(T) == 1;

}  // namespace detail

/// Integers and character types: sizeof(T) bytes, two's complement, little endian.
template <class T>
requires std::integral<T> &&(!std::is_same_v<T, bool>)struct Codec<T> {
  static constexpr std::size_t min_encoded_size = sizeof(T);
  static void encode(const T& value, std::string& out) {
    detail::put_le(out, static_cast<std::make_unsigned_t<T>>(value));
  }
  static T decode(std::string_view& in) {
    detail::require_bytes<T>(in, sizeof(T));
    return static_cast<T>(detail::take_le<std::make_unsigned_t<T>>(in));
  }
};

/// bool: one byte, 0 or 1.
template <>
struct Codec<bool> {
  static constexpr std::size_t min_encoded_size = 1;
  static void encode(const bool& value, std::string& out) { out.push_back(value ? '\1' : '\0'); }
  static bool decode(std::string_view& in) {
    detail::require_bytes<bool>(in, 1);
    const auto byte = static_cast<unsigned char>(in[0]);
    if (byte > 1) detail::throw_codec_error<bool>("invalid bool (" + std::to_string(byte) + ")");
    in.remove_prefix(1);
    return byte == 1;
  }
};

/// Floating point: the exact bit pattern (see the top of this file).
template <std::floating_point T>
struct Codec<T> {
  // x87 extended precision: a 64-bit significand and 15-bit exponent in the
  // first 10 bytes of its 12 or 16.
  static constexpr bool kX87 =
      std::numeric_limits<T>::digits == 64 && std::numeric_limits<T>::max_exponent == 16384;
  static constexpr std::size_t kBytes = kX87 ? 10 : sizeof(T);
  static constexpr std::size_t min_encoded_size = kBytes;

  static void encode(const T& value, std::string& out) {
    if constexpr (sizeof(T) == sizeof(std::uint32_t)) {
      detail::put_le(out, std::bit_cast<std::uint32_t>(value));
    } else if constexpr (sizeof(T) == sizeof(std::uint64_t)) {
      detail::put_le(out, std::bit_cast<std::uint64_t>(value));
    } else {
      char bytes[sizeof(T)];
      std::memcpy(bytes, &value, sizeof(T));
      out.append(bytes, kBytes);
    }
  }
  static T decode(std::string_view& in) {
    detail::require_bytes<T>(in, kBytes);
    if constexpr (sizeof(T) == sizeof(std::uint32_t)) {
      return std::bit_cast<T>(detail::take_le<std::uint32_t>(in));
    } else if constexpr (sizeof(T) == sizeof(std::uint64_t)) {
      return std::bit_cast<T>(detail::take_le<std::uint64_t>(in));
    } else {
      T value{};
      std::memcpy(&value, in.data(), kBytes);
      in.remove_prefix(kBytes);
      return value;
    }
  }
};

/// Enums: as their underlying type (any value of it is accepted).
template <class T>
requires std::is_enum_v<T>
struct Codec<T> {
  using Underlying = std::underlying_type_t<T>;
  static constexpr std::size_t min_encoded_size = sizeof(Underlying);
  static void encode(const T& value, std::string& out) {
    Codec<Underlying>::encode(static_cast<Underlying>(value), out);
  }
  static T decode(std::string_view& in) { return static_cast<T>(Codec<Underlying>::decode(in)); }
};

/// std::string: a uint64 byte count, then the bytes.
template <>
struct Codec<std::string> {
  static constexpr std::size_t min_encoded_size = sizeof(std::uint64_t);
  static void encode(const std::string& value, std::string& out) {
    detail::put_le(out, static_cast<std::uint64_t>(value.size()));
    out.append(value);
  }
  static std::string decode(std::string_view& in) {
    const std::uint64_t length = detail::take_length<std::string>(in);
    if (length > in.size()) detail::throw_length_too_large<std::string>(length, in);
    std::string value(in.substr(0, static_cast<std::size_t>(length)));
    in.remove_prefix(static_cast<std::size_t>(length));
    return value;
  }
};

/// std::vector<T>: a uint64 element count, then each element.
template <class T>
requires detail::has_codec<T>
struct Codec<std::vector<T>> {
  static constexpr std::size_t min_encoded_size = sizeof(std::uint64_t);
  static void encode(const std::vector<T>& value, std::string& out) {
    detail::put_le(out, static_cast<std::uint64_t>(value.size()));
    if constexpr (detail::byte_like<T>) {
      if (!value.empty()) out.append(reinterpret_cast<const char*>(value.data()), value.size());
    } else {
      for (const T& element : value)
        Codec<T>::encode(element, out);
    }
  }
  static std::vector<T> decode(std::string_view& in) {
    using Self = std::vector<T>;
    const std::uint64_t count = detail::take_length<Self>(in);
    std::vector<T> value;
    if constexpr (detail::byte_like<T>) {
      if (count > in.size()) detail::throw_length_too_large<Self>(count, in);
      if (count > 0) {
        value.resize(static_cast<std::size_t>(count));
        std::memcpy(value.data(), in.data(), value.size());
        in.remove_prefix(value.size());
      }
      return value;
    } else {
      constexpr std::size_t min_size = detail::codec_min_encoded_size<T>();
      if constexpr (min_size > 0) {
        if (count > in.size() / min_size) detail::throw_length_too_large<Self>(count, in);
        value.reserve(static_cast<std::size_t>(count));
      } else {
        // Elements of unknown size: reserve no more than one per byte left, and
        // let each element's decode find the bytes missing. (Elements that
        // encode to nothing, like std::tuple<>, can only be bounded by
        // max_size().)
        if (count > value.max_size()) detail::throw_length_too_large<Self>(count, in);
        value.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(count, in.size())));
      }
      for (std::uint64_t i = 0; i < count; ++i)
        value.push_back(Codec<T>::decode(in));
      return value;
    }
  }
};

/// std::pair<A, B>: first, then second.
template <class A, class B>
requires detail::has_codec<A> && detail::has_codec<B>
struct Codec<std::pair<A, B>> {
  static constexpr std::size_t min_encoded_size =
      detail::codec_min_encoded_size<A>() + detail::codec_min_encoded_size<B>();
  static void encode(const std::pair<A, B>& value, std::string& out) {
    Codec<A>::encode(value.first, out);
    Codec<B>::encode(value.second, out);
  }
  static std::pair<A, B> decode(std::string_view& in) {
    A first = Codec<A>::decode(in);
    B second = Codec<B>::decode(in);
    return std::pair<A, B>(std::move(first), std::move(second));
  }
};

/// std::tuple<Ts...>: each element in order.
template <class... Ts>
requires(detail::has_codec<Ts>&&...) struct Codec<std::tuple<Ts...>> {
  static constexpr std::size_t min_encoded_size = (detail::codec_min_encoded_size<Ts>() + ... + 0);
  static void encode(const std::tuple<Ts...>& value, [[maybe_unused]] std::string& out) {
    std::apply([&](const Ts&... elements) { (Codec<Ts>::encode(elements, out), ...); }, value);
  }
  static std::tuple<Ts...> decode([[maybe_unused]] std::string_view& in) {
    // A braced list evaluates its initialisers left to right, so the elements
    // are read in order.
    return std::tuple<Ts...>{Codec<Ts>::decode(in)...};
  }
};

namespace detail {

/// The values' encodings, one after another (the encoding of
/// std::tuple<Ts...>{values...}); no values (a void result) give "".
template <class... Ts>
std::string encode_all(const Ts&... values) {
  static_assert((has_codec<Ts> && ...),
                "weft::Codec<T>: no Codec for this type; specialise weft::Codec<T> with static "
                "void encode(const T&, std::string&) and static T decode(std::string_view&)");
  std::string out;
  (Codec<Ts>::encode(values, out), ...);
  return out;
}

/// Decodes one T that must take all of `bytes`: throws CodecError when bytes
/// are missing ("truncated") or left over ("trailing bytes"). For T = void,
/// checks that `bytes` is empty.
template <class T>
T decode_whole(std::string_view bytes) {
  static_assert(has_codec_or_void<T>,
                "weft::Codec<T>: no Codec for this type; specialise weft::Codec<T> with static "
                "void encode(const T&, std::string&) and static T decode(std::string_view&)");
  if constexpr (std::is_void_v<T>) {
    if (!bytes.empty()) {
      throw CodecError("weft::Codec<void>: trailing bytes (" + std::to_string(bytes.size()) +
                       " where nothing was expected)");
    }
  } else {
    try {
      T value = Codec<T>::decode(bytes);
      if (!bytes.empty()) {
        throw_codec_error<T>("trailing bytes (" + std::to_string(bytes.size()) +
                             " after the value)");
      }
      return value;
    } catch (const CodecError& error) {
      // An element's error also names the whole value being decoded.
      const std::string prefix = "weft::Codec<" + CodecTypeName<T>::get() + ">: ";
      if (std::string_view(error.what()).starts_with(prefix)) throw;
      throw CodecError(prefix + "in " + error.what());
    }
  }
}

/// Calls `function(args...)` and encodes what it returns ("" for void).
template <class F, class... Args>
std::string invoke_and_encode(F&& function, Args&&... args) {
  using Result = std::invoke_result_t<F, Args...>;
  if constexpr (std::is_void_v<Result>) {
    std::invoke(std::forward<F>(function), std::forward<Args>(args)...);
    return {};
  } else {
    return encode_all(std::invoke(std::forward<F>(function), std::forward<Args>(args)...));
  }
}

}  // namespace detail

/// Frames on a byte stream (a pipe): an 8-byte little-endian payload length,
/// then the payload.
inline constexpr std::size_t kFrameHeaderBytes = 8;

/// Appends one frame carrying `payload` to `out`.
inline void append_frame(std::string& out, std::string_view payload) {
  detail::put_le(out, static_cast<std::uint64_t>(payload.size()));
  out.append(payload);
}

/// Splits a byte stream back into the payloads of append_frame, however the
/// bytes arrive. Buffers only bytes actually fed, never what a header
/// announces. Not thread-safe: one reader per stream.
class FrameReader {
 public:
  /// A header announcing more than `max_payload` bytes makes next_frame()
  /// throw CodecError ("length too large").
  explicit FrameReader(std::uint64_t max_payload = std::numeric_limits<std::uint64_t>::max())
      : max_payload_(max_payload) {}

  /// Appends bytes received from the stream.
  void feed(std::string_view bytes) {
    // Drop consumed bytes once they are most of the buffer, so a long-lived
    // stream's buffer stays the size of its unread bytes.
    if (consumed_ > 0 && consumed_ >= buffer_.size() / 2) {
      buffer_.erase(0, consumed_);
      consumed_ = 0;
    }
    buffer_.append(bytes);
  }

  /// The next complete frame's payload, or nullopt when it has not all arrived.
  std::optional<std::string> next_frame() {
    std::string_view unread = std::string_view(buffer_).substr(consumed_);
    if (unread.size() < kFrameHeaderBytes) return std::nullopt;
    const std::uint64_t length = detail::take_le<std::uint64_t>(unread);
    if (length > max_payload_) {
      throw CodecError("weft::FrameReader: length too large (" + std::to_string(length) +
                       " bytes announced, at most " + std::to_string(max_payload_) + ")");
    }
    if (length > unread.size()) return std::nullopt;
    std::string payload(unread.substr(0, static_cast<std::size_t>(length)));
    consumed_ += kFrameHeaderBytes + static_cast<std::size_t>(length);
    if (consumed_ == buffer_.size()) {
      buffer_.clear();
      consumed_ = 0;
    }
    return payload;
  }

  /// Whether bytes of an incomplete frame are buffered (a stream that ends
  /// now ends mid-frame). False between frames.
  bool partial() const { return buffer_.size() > consumed_ && !has_complete_frame(); }

  /// Bytes fed and not yet returned in a frame.
  std::size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  bool has_complete_frame() const {
    std::string_view unread = std::string_view(buffer_).substr(consumed_);
    if (unread.size() < kFrameHeaderBytes) return false;
    return detail::take_le<std::uint64_t>(unread) <= unread.size();
  }

  std::string buffer_;
  std::size_t consumed_ = 0;
  std::uint64_t max_payload_;
};

namespace detail {
// The process layer's names for the framing.
using weft::append_frame;
using weft::FrameReader;
}  // namespace detail

}  // namespace weft
