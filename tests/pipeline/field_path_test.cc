#include "broker/pipeline/field_path.h"

#include <string>

#include <gtest/gtest.h>

namespace switchboard::pipeline {
namespace {

std::string reason(std::string_view text) {
  auto p = field_path::parse(text);
  EXPECT_FALSE(p) << "parsed: " << text;
  return p ? std::string() : p.error();
}

TEST(field_path_test, splits_on_dots) {
  auto p = field_path::parse("data.from.number");
  ASSERT_TRUE(p) << p.error();
  ASSERT_EQ(p->segments().size(), 3u);
  EXPECT_EQ(p->segments()[0].key, "data");
  EXPECT_EQ(p->segments()[2].key, "number");
  EXPECT_EQ(p->last().key, "number");
  EXPECT_EQ(p->text(), "data.from.number");
  EXPECT_FALSE(p->segments()[0].index);
}

TEST(field_path_test, decimal_segments_are_also_array_indexes) {
  auto p = field_path::parse("items.0.12.007.1000000000.123456789");
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->segments()[0].index);
  EXPECT_EQ(p->segments()[1].index, 0u);
  EXPECT_EQ(p->segments()[2].index, 12u);
  EXPECT_FALSE(p->segments()[3].index);  // leading zero: a key only
  EXPECT_FALSE(p->segments()[4].index);  // 10 digits: a key only
  EXPECT_EQ(p->segments()[5].index, 123456789u);
  EXPECT_EQ(p->segments()[3].key, "007");
}

TEST(field_path_test, any_byte_but_dot_is_part_of_a_segment) {
  auto p = field_path::parse("caf\xc3\xa9. a\"b\\c\x01");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->segments()[0].key, "caf\xc3\xa9");
  EXPECT_EQ(p->segments()[1].key, " a\"b\\c\x01");
}

TEST(field_path_test, rejects_empty_paths_and_segments) {
  EXPECT_EQ(reason(""), "is empty");
  EXPECT_EQ(reason("."), "has an empty segment at position 1");
  EXPECT_EQ(reason(".a"), "has an empty segment at position 1");
  EXPECT_EQ(reason("a..b"), "has an empty segment at position 2");
  EXPECT_EQ(reason("a.b."), "has an empty segment at position 3");
}

TEST(field_path_test, limits_the_number_of_segments) {
  std::string text = "a";
  for (std::size_t i = 1; i < max_path_segments; ++i) text += ".a";
  EXPECT_TRUE(field_path::parse(text));
  EXPECT_EQ(reason(text + ".a"), "has more than 128 segments");
}

TEST(field_path_test, prefix_and_parent_relations) {
  const auto a = *field_path::parse("a");
  const auto ab = *field_path::parse("a.b");
  const auto ac = *field_path::parse("a.c");
  const auto abc = *field_path::parse("a.bc");
  EXPECT_TRUE(a.is_prefix_of(ab));
  EXPECT_TRUE(a.is_prefix_of(a));
  EXPECT_FALSE(ab.is_prefix_of(a));
  EXPECT_FALSE(ab.is_prefix_of(abc));  // segment-wise, not byte-wise
  EXPECT_TRUE(ab.same_parent(ac));
  EXPECT_FALSE(a.same_parent(ab));
}

}  // namespace
}  // namespace switchboard::pipeline
