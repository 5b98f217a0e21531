// The Range header parser (broker/admin/byte_range.h) and the static-file response built on it
// (broker/admin/file_response.h): status, headers and the file range chosen, for every case a
// player or cache sends.
#include "broker/admin/byte_range.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "broker/admin/file_response.h"

namespace switchboard::admin {
namespace {

using kind = byte_range_request::kind;

void expect_partial(std::string_view header, std::uint64_t size, std::uint64_t first, std::uint64_t last) {
  SCOPED_TRACE(std::string(header));
  const auto r = parse_byte_range(header, size);
  ASSERT_EQ(r.what, kind::partial);
  EXPECT_EQ(r.first, first);
  EXPECT_EQ(r.last, last);
}

TEST(ByteRangeTest, SingleRanges) {
  expect_partial("bytes=0-99", 1000, 0, 99);
  expect_partial("bytes=500-", 1000, 500, 999);
  expect_partial("bytes=-100", 1000, 900, 999);
  expect_partial("bytes=-5000", 1000, 0, 999);       // suffix longer than the file: all of it
  expect_partial("bytes=990-5000", 1000, 990, 999);  // last clamped
  expect_partial(" Bytes = 10 - 20 ", 1000, 10, 20);
}

TEST(ByteRangeTest, UnsatisfiableRanges) {
  EXPECT_EQ(parse_byte_range("bytes=1000-", 1000).what, kind::unsatisfiable);
  EXPECT_EQ(parse_byte_range("bytes=1000-2000", 1000).what, kind::unsatisfiable);
  EXPECT_EQ(parse_byte_range("bytes=-0", 1000).what, kind::unsatisfiable);
  EXPECT_EQ(parse_byte_range("bytes=0-", 0).what, kind::unsatisfiable);
  EXPECT_EQ(parse_byte_range("bytes=99999999999999999999999-", 1000).what, kind::unsatisfiable);
}

TEST(ByteRangeTest, WhatIsNotUnderstoodIsServedWhole) {
  for (const char* h : {"", "bytes", "bytes=", "bytes=-", "items=0-1", "bytes=0-1,5-6", "bytes=20-10",
                        "bytes=a-b", "bytes=+1-2", "bytes=1--2"}) {
    EXPECT_EQ(parse_byte_range(h, 1000).what, kind::whole) << h;
  }
}

class FileResponseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "file_response_test.XXXXXX").string();
    const int fd = ::mkstemp(tmpl.data());
    ASSERT_GE(fd, 0);
    ::close(fd);
    _path = tmpl;
    std::ofstream(_path, std::ios::binary) << std::string(1000, 'x');
  }
  void TearDown() override { std::filesystem::remove(_path); }

  http_response respond(std::string method, http_fields headers) {
    http_request req;
    req.method = std::move(method);
    req.target = "/media/x";
    req.headers = std::move(headers);
    const int fd = ::open(_path.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    return file_response(req, fd, 1000, rep);
  }
  static std::string header(const http_response& r, std::string_view name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return "";
  }

  std::filesystem::path _path;
  file_representation rep{"audio/wav", "\"abc\"", "public, max-age=60"};
};

TEST_F(FileResponseTest, WholeFile) {
  const auto r = respond("GET", {});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "audio/wav");
  ASSERT_TRUE(r.file);
  EXPECT_EQ(r.file->offset(), 0u);
  EXPECT_EQ(r.file->length(), 1000u);
  EXPECT_EQ(header(r, "ETag"), "\"abc\"");
  EXPECT_EQ(header(r, "Cache-Control"), "public, max-age=60");
  EXPECT_EQ(header(r, "Accept-Ranges"), "bytes");
}

TEST_F(FileResponseTest, RangeIfRangeAndHead) {
  auto r = respond("GET", {{"Range", "bytes=10-19"}});
  EXPECT_EQ(r.status, 206);
  ASSERT_TRUE(r.file);
  EXPECT_EQ(r.file->offset(), 10u);
  EXPECT_EQ(r.file->length(), 10u);
  EXPECT_EQ(header(r, "Content-Range"), "bytes 10-19/1000");
  r = respond("GET", {{"Range", "bytes=10-19"}, {"If-Range", "\"old\""}});
  EXPECT_EQ(r.status, 200);
  r = respond("GET", {{"Range", "bytes=10-19"}, {"If-Range", "\"abc\""}});
  EXPECT_EQ(r.status, 206);
  r = respond("HEAD", {{"Range", "bytes=10-19"}});  // Range applies to GET only
  EXPECT_EQ(r.status, 200);
  r = respond("GET", {{"Range", "bytes=1000-"}});
  EXPECT_EQ(r.status, 416);
  EXPECT_EQ(header(r, "Content-Range"), "bytes */1000");
  EXPECT_FALSE(r.file);
  EXPECT_NE(r.body.find("\"code\":\"range_not_satisfiable\""), std::string::npos) << r.body;
}

TEST_F(FileResponseTest, IfNoneMatch) {
  for (const char* inm : {"\"abc\"", "W/\"abc\"", "\"x\", \"abc\"", "*"}) {
    const auto r = respond("GET", {{"If-None-Match", inm}});
    EXPECT_EQ(r.status, 304) << inm;
    EXPECT_FALSE(r.file);
    EXPECT_EQ(header(r, "ETag"), "\"abc\"");
  }
  EXPECT_EQ(respond("GET", {{"If-None-Match", "\"abd\""}}).status, 200);
}

}  // namespace
}  // namespace switchboard::admin
