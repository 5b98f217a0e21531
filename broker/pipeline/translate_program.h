// Internal to broker/pipeline/: a compiled translate spec (translate.h). Built once by
// translate_spec::compile (translate_compile.cc), read by any number of threads (translate_apply.cc).
#pragma once

#include "broker/pipeline/field_path.h"
#include "broker/pipeline/json_dom.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::pipeline::detail {

struct move_op {  // copy and rename
  field_path source;
  field_path target;
};

struct set_op {
  field_path target;
  dom::element value;  // in translate_program::doc
};

// One value of the template: a literal (written as is), a placeholder, or an object/array whose
// children may hold placeholders.
struct template_node {
  enum class kind : std::uint8_t { literal, placeholder, object, array };
  kind what = kind::literal;
  std::string_view key;                   // member name when the parent is an object (in doc)
  dom::element literal;                   // kind::literal
  std::optional<field_path> placeholder;  // kind::placeholder
  std::vector<template_node> children;    // kind::object / kind::array, in spec order
};

struct translate_program {
  // The spec's DOM: set values, template literals and keys point into it. The program lives behind
  // a shared_ptr and never moves, so neither does the document.
  dom::document doc;
  std::string spec_json;  // minified
  std::vector<move_op> copies;
  std::vector<move_op> renames;
  std::vector<field_path> drops;
  std::vector<set_op> sets;
  std::optional<template_node> output_template;  // kind::object when set
};

}  // namespace switchboard::pipeline::detail
