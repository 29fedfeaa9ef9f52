// weft::Codec<T>: round trips of every provided type at its edges, decode
// advancing the view exactly, truncated and corrupt input rejected with
// CodecError, and the framing of a byte stream.

#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <weft/weft.hpp>

namespace {

struct Point {
  int x = 0;
  std::string label;
  bool operator==(const Point&) const = default;
};

// No Codec: using it with encode_all or Codec<...>::encode does not compile
// (weft::Codec<NoCodec> is an incomplete type, and the helpers' static_assert
// says "weft::Codec<T>: no Codec for this type"). gtest cannot check a compile
// error, so the test checks the concept that the helpers assert on.
struct NoCodec {
  int value = 0;
};

enum class Colour : std::uint8_t { kRed = 1, kGreen = 2, kBlue = 255 };
enum class Wide : std::int64_t { kLow = std::numeric_limits<std::int64_t>::min(), kHigh = 7 };
enum Plain { kPlainA, kPlainB = 1000 };

}  // namespace

template <>
struct weft::Codec<Point> {
  static void encode(const Point& point, std::string& out) {
    Codec<int>::encode(point.x, out);
    Codec<std::string>::encode(point.label, out);
  }
  static Point decode(std::string_view& in) {
    Point point;
    point.x = Codec<int>::decode(in);
    point.label = Codec<std::string>::decode(in);
    return point;
  }
};

namespace {

using weft::Codec;
using weft::CodecError;

static_assert(weft::detail::has_codec<int>);
static_assert(weft::detail::has_codec<Point>);
static_assert(weft::detail::has_codec<std::vector<Point>>);
static_assert(
    weft::detail::has_codec<std::vector<std::pair<std::string, std::tuple<int, double>>>>);
static_assert(!weft::detail::has_codec<NoCodec>);
static_assert(!weft::detail::has_codec<std::vector<NoCodec>>);
static_assert(!weft::detail::has_codec<std::pair<int, NoCodec>>);
static_assert(!weft::detail::has_codec<std::tuple<int, NoCodec>>);
static_assert(!weft::detail::has_codec<void>);
static_assert(weft::detail::has_codec_or_void<void>);
static_assert(!weft::detail::has_codec_or_void<NoCodec>);

// Encodes `value`, checks the bytes decode back to an equal value, that decode
// consumes exactly them (a suffix after them is left in the view), and that
// decode_whole agrees. Returns the encoding.
template <class T>
std::string round_trip(const T& value) {
  std::string bytes;
  Codec<T>::encode(value, bytes);
  EXPECT_EQ(bytes, weft::detail::encode_all(value));

  std::string with_suffix = bytes + "tail";
  std::string_view in = with_suffix;
  const T decoded = Codec<T>::decode(in);
  EXPECT_TRUE(decoded == value);
  EXPECT_EQ(in, "tail");
  EXPECT_EQ(in.data(), with_suffix.data() + bytes.size());

  EXPECT_TRUE(weft::detail::decode_whole<T>(bytes) == value);
  return bytes;
}

// Every proper prefix of `bytes` (T's encoding) fails with CodecError.
template <class T>
void expect_every_prefix_truncated(const std::string& bytes) {
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    // A copy of just the prefix, so ASan sees a read past it.
    const std::string prefix = bytes.substr(0, cut);
    std::string_view in = prefix;
    EXPECT_THROW(Codec<T>::decode(in), CodecError) << "cut at " << cut << " of " << bytes.size();
    EXPECT_THROW(weft::detail::decode_whole<T>(prefix), CodecError) << "cut at " << cut;
  }
}

template <class T>
void round_trip_limits() {
  SCOPED_TRACE(typeid(T).name());
  const auto bytes = round_trip<T>(std::numeric_limits<T>::min());
  EXPECT_EQ(bytes.size(), sizeof(T));
  round_trip<T>(std::numeric_limits<T>::max());
  round_trip<T>(T{0});
  round_trip<T>(T{1});
  if constexpr (std::is_signed_v<T>) round_trip<T>(T{-1});
  expect_every_prefix_truncated<T>(bytes);
}

TEST(Codec, EveryIntegerTypeAtItsLimits) {
  round_trip_limits<char>();
  round_trip_limits<signed char>();
  round_trip_limits<unsigned char>();
  round_trip_limits<short>();
  round_trip_limits<unsigned short>();
  round_trip_limits<int>();
  round_trip_limits<unsigned int>();
  round_trip_limits<long>();
  round_trip_limits<unsigned long>();
  round_trip_limits<long long>();
  round_trip_limits<unsigned long long>();
  round_trip_limits<char8_t>();
  round_trip_limits<char16_t>();
  round_trip_limits<char32_t>();
  round_trip_limits<wchar_t>();
  round_trip_limits<std::int8_t>();
  round_trip_limits<std::uint64_t>();
}

TEST(Codec, IntegersAreFixedWidthLittleEndian) {
  EXPECT_EQ(weft::detail::encode_all(std::uint32_t{0x01020304}), std::string("\4\3\2\1", 4));
  EXPECT_EQ(weft::detail::encode_all(std::int16_t{-2}), std::string("\xfe\xff", 2));
  EXPECT_EQ(weft::detail::encode_all(std::numeric_limits<std::int64_t>::min()),
            std::string("\0\0\0\0\0\0\0\x80", 8));
}

TEST(Codec, BoolIsOneByteZeroOrOne) {
  EXPECT_EQ(round_trip(true), std::string("\1", 1));
  EXPECT_EQ(round_trip(false), std::string("\0", 1));
  for (int byte = 2; byte < 256; ++byte) {
    const std::string bad(1, static_cast<char>(byte));
    std::string_view in = bad;
    EXPECT_THROW(Codec<bool>::decode(in), CodecError) << byte;
    EXPECT_EQ(in.size(), 1u);
  }
  try {
    weft::detail::decode_whole<bool>("\x07");
    FAIL() << "no throw";
  } catch (const CodecError& error) {
    EXPECT_NE(std::string(error.what()).find("weft::Codec<bool>: invalid bool"), std::string::npos)
        << error.what();
  }
  expect_every_prefix_truncated<bool>("\1");
}

template <class T, class Bits>
void expect_same_bits(T value) {
  const std::string bytes = weft::detail::encode_all(value);
  const T decoded = weft::detail::decode_whole<T>(bytes);
  EXPECT_EQ(std::bit_cast<Bits>(decoded), std::bit_cast<Bits>(value));
}

TEST(Codec, FloatAndDoubleKeepTheirExactBits) {
  for (const std::uint32_t bits :
       {0x00000000u, 0x80000000u /* -0.0 */, 0x7f800000u /* +inf */, 0xff800000u /* -inf */,
        0x7fc00000u /* quiet NaN */, 0x7fc12345u /* NaN payload */, 0xffc00001u /* -NaN payload */,
        0x7f800001u /* signalling NaN */, 0x00000001u /* denormal */, 0x3f800000u /* 1.0 */}) {
    expect_same_bits<float, std::uint32_t>(std::bit_cast<float>(bits));
  }
  for (const std::uint64_t bits :
       {0x0000000000000000ull, 0x8000000000000000ull, 0x7ff0000000000000ull, 0xfff0000000000000ull,
        0x7ff8000000000000ull, 0x7ff8dead0000beefull, 0xfff0000000000001ull, 0x7ff0000000000001ull,
        0x0000000000000001ull, 0x3ff0000000000000ull}) {
    expect_same_bits<double, std::uint64_t>(std::bit_cast<double>(bits));
  }
  EXPECT_EQ(weft::detail::encode_all(1.0), std::string("\0\0\0\0\0\0\xf0\x3f", 8));
  round_trip(std::numeric_limits<double>::max());
  round_trip(std::numeric_limits<double>::lowest());
  round_trip(std::numeric_limits<float>::denorm_min());
  expect_every_prefix_truncated<float>(weft::detail::encode_all(2.5f));
  expect_every_prefix_truncated<double>(weft::detail::encode_all(-0.0));
}

// The bytes of a long double that carry its value (x87: 10 of 16).
std::string significant_bytes(long double value) {
  char bytes[sizeof(long double)];
  std::memcpy(bytes, &value, sizeof bytes);
  return std::string(bytes, Codec<long double>::kBytes);
}

TEST(Codec, LongDoubleKeepsItsExactBits) {
  std::vector<long double> values = {0.0L,
                                     -0.0L,
                                     1.0L / 3.0L,
                                     std::numeric_limits<long double>::infinity(),
                                     -std::numeric_limits<long double>::infinity(),
                                     std::numeric_limits<long double>::max(),
                                     std::numeric_limits<long double>::denorm_min(),
                                     std::numeric_limits<long double>::quiet_NaN()};
  // A NaN with a payload: flip low significand bits of a quiet NaN.
  long double payload_nan = std::numeric_limits<long double>::quiet_NaN();
  unsigned char raw[sizeof(long double)];
  std::memcpy(raw, &payload_nan, sizeof raw);
  raw[0] ^= 0xa5;
  raw[1] ^= 0x5a;
  std::memcpy(&payload_nan, raw, sizeof raw);
  values.push_back(payload_nan);

  for (const long double value : values) {
    const std::string bytes = weft::detail::encode_all(value);
    EXPECT_EQ(bytes.size(), Codec<long double>::kBytes);
    EXPECT_EQ(bytes, significant_bytes(value));
    const long double decoded = weft::detail::decode_whole<long double>(bytes);
    EXPECT_EQ(significant_bytes(decoded), significant_bytes(value));
    if (!std::isnan(value)) {
      EXPECT_EQ(decoded, value);
    }
    EXPECT_EQ(std::signbit(decoded), std::signbit(value));
  }
  expect_every_prefix_truncated<long double>(weft::detail::encode_all(1.5L));
}

TEST(Codec, EnumsGoAsTheirUnderlyingType) {
  EXPECT_EQ(round_trip(Colour::kBlue), std::string("\xff", 1));
  round_trip(Colour::kRed);
  round_trip(static_cast<Colour>(0));  // any underlying value
  EXPECT_EQ(round_trip(Wide::kLow).size(), 8u);
  round_trip(Wide::kHigh);
  EXPECT_EQ(round_trip(kPlainB), weft::detail::encode_all(std::underlying_type_t<Plain>{1000}));
  expect_every_prefix_truncated<Wide>(weft::detail::encode_all(Wide::kHigh));
}

TEST(Codec, Strings) {
  EXPECT_EQ(round_trip(std::string()), std::string(8, '\0'));
  EXPECT_EQ(round_trip(std::string("abc")), std::string("\3\0\0\0\0\0\0\0abc", 11));
  const std::string with_nuls("a\0b\0\0c\0", 7);
  round_trip(with_nuls);
  std::string all_bytes;
  for (int byte = 0; byte < 256; ++byte)
    all_bytes.push_back(static_cast<char>(byte));
  round_trip(all_bytes);
  round_trip(std::string(100000, 'x'));
  expect_every_prefix_truncated<std::string>(weft::detail::encode_all(with_nuls));
}

TEST(Codec, Vectors) {
  round_trip(std::vector<int>{});
  round_trip(std::vector<int>{1, -2, 3, std::numeric_limits<int>::min()});
  round_trip(std::vector<bool>{true, false, true});
  round_trip(std::vector<std::string>{"", "one", std::string("\0two", 4)});
  round_trip(std::vector<std::vector<double>>{{}, {1.5}, {-0.0, 2.0}});
  round_trip(std::vector<Colour>{Colour::kRed, Colour::kBlue});
  EXPECT_EQ(round_trip(std::vector<std::uint16_t>{0x0102, 0x0304}),
            std::string("\2\0\0\0\0\0\0\0\2\1\4\3", 12));

  // 1 MiB of bytes, as one block.
  std::vector<std::uint8_t> mebibyte(1 << 20);
  for (std::size_t i = 0; i < mebibyte.size(); ++i) {
    mebibyte[i] = static_cast<std::uint8_t>(i * 131 + 7);
  }
  EXPECT_EQ(round_trip(mebibyte).size(), 8 + mebibyte.size());
  std::vector<char> chars(1 << 20, '\0');
  chars.back() = 'z';
  round_trip(chars);
  std::vector<signed char> signed_chars = {-128, -1, 0, 127};
  EXPECT_EQ(round_trip(signed_chars), std::string("\4\0\0\0\0\0\0\0\x80\xff\0\x7f", 12));

  // Large vectors of wider elements.
  std::vector<std::int64_t> many(100000);
  for (std::size_t i = 0; i < many.size(); ++i)
    many[i] = static_cast<std::int64_t>(i) * -977;
  round_trip(many);

  expect_every_prefix_truncated<std::vector<int>>(weft::detail::encode_all(std::vector<int>{1, 2}));
  expect_every_prefix_truncated<std::vector<std::uint8_t>>(
      weft::detail::encode_all(std::vector<std::uint8_t>{1, 2, 3}));
  expect_every_prefix_truncated<std::vector<bool>>(
      weft::detail::encode_all(std::vector<bool>{true, false}));
}

TEST(Codec, PairsAndTuples) {
  EXPECT_EQ(round_trip(std::pair<int, std::string>(7, "seven")),
            weft::detail::encode_all(7, std::string("seven")));
  round_trip(std::tuple<>());
  EXPECT_EQ(round_trip(std::tuple<>()), "");
  round_trip(std::tuple<int>(-1));
  round_trip(
      std::tuple<bool, char, double, std::string, Colour>(true, 'c', -0.5, "s", Colour::kGreen));
  // A tuple's encoding is its elements', one after another: what encode_all sends.
  const auto tuple = std::make_tuple(std::uint8_t{1}, std::string("two"), 3.0);
  EXPECT_EQ(round_trip(tuple), weft::detail::encode_all(std::uint8_t{1}, std::string("two"), 3.0));
  expect_every_prefix_truncated<std::pair<std::int16_t, std::string>>(
      weft::detail::encode_all(std::int16_t{5}, std::string("xy")));
}

using Nested = std::vector<std::pair<std::string, std::tuple<int, double>>>;

Nested nested_value() {
  return {{"", {0, 0.0}},
          {std::string("a\0b", 3), {-1, std::numeric_limits<double>::infinity()}},
          {"longer key", {std::numeric_limits<int>::max(), -0.0}}};
}

TEST(Codec, NestedContainers) {
  round_trip(nested_value());
  round_trip(Nested{});
  using Deep = std::tuple<std::vector<std::vector<std::string>>,
                          std::pair<bool, std::vector<Point>>, std::vector<std::tuple<>>>;
  const Deep deep{{{"a", "b"}, {}, {std::string(3, '\0')}},
                  {true, {{1, "one"}, {-2, ""}}},
                  std::vector<std::tuple<>>(5)};
  round_trip(deep);
  expect_every_prefix_truncated<Deep>(weft::detail::encode_all(deep));
}

TEST(Codec, TruncatedNestedValueAtEveryCutThrows) {
  expect_every_prefix_truncated<Nested>(weft::detail::encode_all(nested_value()));
}

TEST(Codec, UserSpecialisation) {
  const Point point{-42, std::string("p\0q", 3)};
  EXPECT_EQ(round_trip(point), weft::detail::encode_all(-42, std::string("p\0q", 3)));
  const std::vector<Point> points = {{1, "one"}, {}, point};
  round_trip(points);
  round_trip(std::pair<Point, std::vector<Point>>(point, points));
  expect_every_prefix_truncated<std::vector<Point>>(weft::detail::encode_all(points));
}

TEST(Codec, DecodeAdvancesExactlyPastEachValue) {
  const std::string bytes = weft::detail::encode_all(std::uint8_t{9}, std::string("hello"),
                                                     std::vector<int>{1, 2}, true, -0.25);
  std::string_view in = bytes;
  EXPECT_EQ(Codec<std::uint8_t>::decode(in), 9);
  EXPECT_EQ(in.size(), bytes.size() - 1);
  EXPECT_EQ(Codec<std::string>::decode(in), "hello");
  EXPECT_EQ(in.size(), bytes.size() - 1 - 13);
  EXPECT_EQ(Codec<std::vector<int>>::decode(in), (std::vector<int>{1, 2}));
  EXPECT_EQ(in.size(), 1u + 8u);
  EXPECT_TRUE(Codec<bool>::decode(in));
  EXPECT_EQ(Codec<double>::decode(in), -0.25);
  EXPECT_TRUE(in.empty());
  EXPECT_EQ(in.data(), bytes.data() + bytes.size());
}

// A count or length from corrupt bytes that the remaining bytes cannot hold
// throws "length too large" before anything the size of it is allocated.
TEST(Codec, CorruptHugeLengthThrowsWithoutAllocating) {
  for (const std::uint64_t huge :
       {std::uint64_t{1} << 62, std::numeric_limits<std::uint64_t>::max(), std::uint64_t{1} << 40,
        std::uint64_t{100}}) {
    const std::string bytes = weft::detail::encode_all(huge) + "abcdefgh";
    auto expect_too_large = [&](auto decode) {
      try {
        decode();
        ADD_FAILURE() << "no throw for " << huge;
      } catch (const CodecError& error) {
        EXPECT_NE(std::string(error.what()).find("length too large"), std::string::npos)
            << error.what();
      } catch (const std::bad_alloc&) {
        ADD_FAILURE() << "tried to allocate " << huge;
      } catch (const std::length_error&) {
        ADD_FAILURE() << "tried to allocate " << huge;
      }
    };
    expect_too_large([&] { weft::detail::decode_whole<std::string>(bytes); });
    expect_too_large([&] { weft::detail::decode_whole<std::vector<char>>(bytes); });
    expect_too_large([&] { weft::detail::decode_whole<std::vector<std::uint64_t>>(bytes); });
    expect_too_large([&] { weft::detail::decode_whole<std::vector<std::string>>(bytes); });
    expect_too_large([&] { weft::detail::decode_whole<Nested>(bytes); });
  }
  // Elements of unknown size (a user Codec): the count is not checked up
  // front, but at most one element per remaining byte is reserved and the
  // missing elements are found truncated.
  const std::string points =
      weft::detail::encode_all(std::numeric_limits<std::uint64_t>::max()) + "abcdefgh";
  EXPECT_THROW(weft::detail::decode_whole<std::vector<Point>>(points), CodecError);
}

TEST(Codec, ErrorsNameTheTypeAndWhy) {
  auto message = [](auto decode) -> std::string {
    try {
      decode();
    } catch (const CodecError& error) {
      return error.what();
    }
    return "no throw";
  };
  EXPECT_EQ(message([] { weft::detail::decode_whole<int>("ab"); }),
            "weft::Codec<int>: truncated (needs 4 bytes, 2 left)");
  EXPECT_EQ(
      message([] { weft::detail::decode_whole<std::vector<std::string>>(std::string("\1\0", 2)); }),
      "weft::Codec<std::vector<std::string>>: truncated (needs 8 bytes, 2 left)");
  EXPECT_EQ(message([] {
              weft::detail::decode_whole<std::string>(std::string("\x10\0\0\0\0\0\0\0abc", 11));
            }),
            "weft::Codec<std::string>: length too large (16 with 3 bytes left)");
  EXPECT_EQ(message([] { weft::detail::decode_whole<std::uint16_t>("abc"); }),
            "weft::Codec<unsigned short>: trailing bytes (1 after the value)");
  EXPECT_EQ(message([] {
              weft::detail::decode_whole<std::pair<int, std::tuple<double>>>(std::string(13, 'x'));
            }),
            "weft::Codec<std::pair<int, std::tuple<double>>>: trailing bytes (1 after the value)");
  // A failure inside a value names the whole value's type too.
  const std::string in_point = message([] { weft::detail::decode_whole<Point>("12"); });
  EXPECT_TRUE(in_point.starts_with("weft::Codec<")) << in_point;
  EXPECT_NE(in_point.find("Point>: in weft::Codec<int>: truncated (needs 4 bytes, 2 left)"),
            std::string::npos)
      << in_point;
}

TEST(Codec, DecodeWholeRejectsTrailingAndMissingBytes) {
  const std::string bytes = weft::detail::encode_all(nested_value());
  EXPECT_EQ(weft::detail::decode_whole<Nested>(bytes), nested_value());
  EXPECT_THROW(weft::detail::decode_whole<Nested>(bytes + '\0'), CodecError);
  EXPECT_THROW(weft::detail::decode_whole<Nested>(bytes.substr(0, bytes.size() - 1)), CodecError);
  EXPECT_THROW(weft::detail::decode_whole<int>(""), CodecError);
  EXPECT_THROW(weft::detail::decode_whole<std::tuple<>>("x"), CodecError);
}

TEST(Codec, VoidSendsNothing) {
  EXPECT_EQ(weft::detail::encode_all(), "");
  weft::detail::decode_whole<void>("");
  EXPECT_THROW(weft::detail::decode_whole<void>("x"), CodecError);

  EXPECT_EQ(weft::detail::invoke_and_encode([] {}), "");
  bool called = false;
  EXPECT_EQ(weft::detail::invoke_and_encode([&called](int) { called = true; }, 1), "");
  EXPECT_TRUE(called);
  EXPECT_EQ(weft::detail::invoke_and_encode([](int a, int b) { return a + b; }, 2, 3),
            weft::detail::encode_all(5));
}

TEST(Codec, EncodeAllIsTheTupleOfItsArguments) {
  const std::string bytes = weft::detail::encode_all(1, std::string("two"), 3.0, Point{4, "four"});
  const auto decoded =
      weft::detail::decode_whole<std::tuple<int, std::string, double, Point>>(bytes);
  EXPECT_EQ(decoded, std::make_tuple(1, std::string("two"), 3.0, Point{4, "four"}));
}

TEST(Codec, TypesWithoutCodecAreDetected) {
  // weft::detail::encode_all(NoCodec{}) would fail to compile with
  // "weft::Codec<T>: no Codec for this type; specialise weft::Codec<T> ...".
  static_assert(!weft::detail::has_codec<NoCodec>);
  static_assert(!weft::detail::has_codec<std::vector<std::pair<int, NoCodec>>>);
  static_assert(weft::detail::has_codec<std::vector<std::pair<int, Point>>>);
}

// ---- framing ----

std::string frames_of(const std::vector<std::string>& payloads) {
  std::string stream;
  for (const auto& payload : payloads)
    weft::append_frame(stream, payload);
  return stream;
}

TEST(FrameReader, FrameIsALittleEndianLengthThenThePayload) {
  std::string out = "x";
  weft::append_frame(out, "abc");
  EXPECT_EQ(out, std::string("x\3\0\0\0\0\0\0\0abc", 12));
  weft::detail::append_frame(out, "");
  EXPECT_EQ(out.size(), 12u + weft::kFrameHeaderBytes);
}

TEST(FrameReader, FramesFedByteByByte) {
  const std::vector<std::string> payloads = {"first", "", std::string("\0\1\2", 3),
                                             std::string(300, 'z')};
  const std::string stream = frames_of(payloads);
  weft::detail::FrameReader reader;
  EXPECT_FALSE(reader.partial());
  std::vector<std::string> received;
  for (const char byte : stream) {
    reader.feed(std::string_view(&byte, 1));
    while (auto frame = reader.next_frame())
      received.push_back(*std::move(frame));
  }
  EXPECT_EQ(received, payloads);
  EXPECT_FALSE(reader.partial());
  EXPECT_EQ(reader.buffered(), 0u);
  EXPECT_FALSE(reader.next_frame().has_value());
}

TEST(FrameReader, SeveralFramesInOneFeed) {
  const std::vector<std::string> payloads = {"a", "bb", "", "dddd"};
  weft::FrameReader reader;
  reader.feed(frames_of(payloads));
  for (const auto& payload : payloads) {
    auto frame = reader.next_frame();
    ASSERT_TRUE(frame.has_value());
    EXPECT_EQ(*frame, payload);
  }
  EXPECT_FALSE(reader.next_frame().has_value());
  EXPECT_FALSE(reader.partial());
}

TEST(FrameReader, PartialMidFrameOnlyAtEveryCut) {
  const std::string one = frames_of({"payload"});
  const std::string stream = one + one;
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    weft::FrameReader reader;
    reader.feed(std::string_view(stream).substr(0, cut));
    std::size_t frames = 0;
    while (auto frame = reader.next_frame()) {
      EXPECT_EQ(*frame, "payload");
      ++frames;
    }
    EXPECT_EQ(frames, cut / one.size()) << cut;
    const bool between_frames = cut % one.size() == 0;
    EXPECT_EQ(reader.partial(), !between_frames) << "cut at " << cut;
    // The rest arrives: both frames come out, nothing is left partial.
    reader.feed(std::string_view(stream).substr(cut));
    while (reader.next_frame())
      ++frames;
    EXPECT_EQ(frames, 2u);
    EXPECT_FALSE(reader.partial());
  }
}

TEST(FrameReader, EmptyPayloadFrame) {
  weft::FrameReader reader;
  std::string header;
  weft::append_frame(header, "");
  reader.feed(std::string_view(header).substr(0, 7));
  EXPECT_TRUE(reader.partial());
  EXPECT_FALSE(reader.next_frame().has_value());
  reader.feed(std::string_view(header).substr(7));
  EXPECT_FALSE(reader.partial());
  auto frame = reader.next_frame();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(*frame, "");
  EXPECT_FALSE(reader.partial());
}

TEST(FrameReader, CarriesCodecPayloads) {
  std::string stream;
  weft::append_frame(stream, weft::detail::encode_all(nested_value()));
  weft::append_frame(stream, weft::detail::encode_all(Point{3, "three"}));
  weft::FrameReader reader;
  reader.feed(stream.substr(0, 20));
  EXPECT_FALSE(reader.next_frame().has_value());
  EXPECT_TRUE(reader.partial());
  reader.feed(stream.substr(20));
  EXPECT_EQ(weft::detail::decode_whole<Nested>(*reader.next_frame()), nested_value());
  EXPECT_EQ(weft::detail::decode_whole<Point>(*reader.next_frame()), (Point{3, "three"}));
}

TEST(FrameReader, HugeAnnouncedLengthIsNotAllocated) {
  // Without a limit, the reader waits for bytes that never come, holding only
  // what it was fed; with one, it throws.
  std::string header = weft::detail::encode_all(std::numeric_limits<std::uint64_t>::max());
  weft::FrameReader unlimited;
  unlimited.feed(header + "abc");
  EXPECT_FALSE(unlimited.next_frame().has_value());
  EXPECT_TRUE(unlimited.partial());
  EXPECT_EQ(unlimited.buffered(), 11u);

  weft::FrameReader limited(1 << 20);
  limited.feed(header);
  EXPECT_THROW(limited.next_frame(), CodecError);
  weft::FrameReader at_limit(3);
  std::string ok;
  weft::append_frame(ok, "abc");
  at_limit.feed(ok);
  EXPECT_EQ(at_limit.next_frame(), std::optional<std::string>("abc"));
}

TEST(FrameReader, LongStreamKeepsItsBufferSmall) {
  weft::FrameReader reader;
  const std::string frame = frames_of({std::string(1000, 'q')});
  for (int i = 0; i < 10000; ++i) {
    reader.feed(std::string_view(frame).substr(0, 500));
    EXPECT_FALSE(reader.next_frame().has_value());
    reader.feed(std::string_view(frame).substr(500));
    ASSERT_EQ(reader.next_frame()->size(), 1000u);
    EXPECT_EQ(reader.buffered(), 0u);
  }
}

}  // namespace
