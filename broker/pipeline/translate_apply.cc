// compiled_translate::apply: runs a translate_program over one payload (translate.h documents the
// semantics). The output is edited as a tree over the payload's DOM: an object is copied into the
// context's node pool ("materialized") only when an operation writes into it, and everything else
// is written straight from the DOM. Nodes are reused across events, so a warm context allocates
// nothing.
#include "broker/pipeline/translate.h"

#include "broker/pipeline/stage_impl.h"
#include "broker/pipeline/translate_program.h"

#include <algorithm>

namespace switchboard::pipeline {
namespace detail {
namespace {

class tree_editor {
 public:
  tree_editor(context_state& cx, dom::element root) : _cx(cx), _root{root, no_node} { _cx.used = 0; }

  // The value at `path`, or nullopt. `through_arrays`: whether index segments may enter arrays.
  std::optional<tree_value> read(const field_path& path, bool through_arrays) const {
    tree_value cur = _root;
    for (const path_segment& seg : path.segments()) {
      if (cur.node != no_node) {
        const auto& members = _cx.nodes[cur.node].members;
        const auto it = std::find_if(members.begin(), members.end(),
                                     [&](const tree_member& m) { return m.key == seg.key; });
        if (it == members.end()) return std::nullopt;
        cur = it->value;
        continue;
      }
      dom::element next;
      if (cur.element.is_object()) {
        if (as_object(cur.element).at_key(seg.key).get(next) != simdjson::SUCCESS) return std::nullopt;
      } else if (through_arrays && seg.index && cur.element.is_array()) {
        if (as_array(cur.element).at(*seg.index).get(next) != simdjson::SUCCESS) return std::nullopt;
      } else {
        return std::nullopt;
      }
      cur = tree_value{next, no_node};
    }
    return cur;
  }

  // The node of the object that holds `path`'s last segment, materializing the objects on the way;
  // `create`: absent intermediate objects are appended as empty objects. nullopt when the way meets
  // a non-object (or an absent member and !create).
  std::optional<std::uint32_t> parent_for_write(const field_path& path, bool create) {
    std::uint32_t node = root_node();
    const auto segs = path.segments();
    for (std::size_t s = 0; s + 1 < segs.size(); ++s) {
      const std::string_view key = segs[s].key;
      auto& members = _cx.nodes[node].members;
      const auto it =
          std::find_if(members.begin(), members.end(), [&](const tree_member& m) { return m.key == key; });
      if (it == members.end()) {
        if (!create) return std::nullopt;
        const std::uint32_t child = new_node();  // may reallocate _cx.nodes: `members` is stale now
        _cx.nodes[node].members.push_back(tree_member{key, tree_value{dom::element(), child}});
        node = child;
        continue;
      }
      const auto index = static_cast<std::size_t>(it - members.begin());
      const tree_value v = it->value;
      if (v.node != no_node) {
        node = v.node;
        continue;
      }
      if (!v.element.is_object()) return std::nullopt;
      const std::uint32_t child = materialize(v.element);
      _cx.nodes[node].members[index].value.node = child;
      node = child;
    }
    return node;
  }

  // Writes member `key` of `node`: replaces the first member with that key in place and removes
  // the others, or appends.
  void put(std::uint32_t node, std::string_view key, tree_value v) {
    auto& members = _cx.nodes[node].members;
    const auto it =
        std::find_if(members.begin(), members.end(), [&](const tree_member& m) { return m.key == key; });
    if (it == members.end()) {
      members.push_back(tree_member{key, v});
      return;
    }
    it->value = v;
    members.erase(std::remove_if(it + 1, members.end(), [&](const tree_member& m) { return m.key == key; }),
                  members.end());
  }

  void remove_all(std::uint32_t node, std::string_view key) {
    std::erase_if(_cx.nodes[node].members, [&](const tree_member& m) { return m.key == key; });
  }

  // Renames the first member `from` of `node` to `to` in place; removes the other members named
  // `from` or `to`. Precondition: a member `from` exists.
  void rename_in_place(std::uint32_t node, std::string_view from, std::string_view to) {
    auto& members = _cx.nodes[node].members;
    const auto it =
        std::find_if(members.begin(), members.end(), [&](const tree_member& m) { return m.key == from; });
    const auto index = static_cast<std::size_t>(it - members.begin());
    it->key = to;
    std::size_t i = 0;
    std::erase_if(members,
                  [&](const tree_member& m) { return i++ != index && (m.key == from || m.key == to); });
  }

  // `v` if it is a DOM value; a deep copy if it is a materialized node (so that two places of the
  // output never share a node that a later operation could change through one of them). Stops
  // (and sets too_deep()) below max_output_depth levels, which bounds the recursion.
  tree_value detach(tree_value v, std::size_t depth = 1) {
    if (v.node == no_node) return v;
    if (depth > max_output_depth) {
      _too_deep = true;  // the output could not be written anyway
      return v;
    }
    const std::uint32_t copy = new_node();
    const std::size_t n = _cx.nodes[v.node].members.size();
    for (std::size_t i = 0; i < n; ++i) {
      const tree_member m = _cx.nodes[v.node].members[i];
      const tree_value child = detach(m.value, depth + 1);
      _cx.nodes[copy].members.push_back(tree_member{m.key, child});
    }
    return tree_value{dom::element(), copy};
  }

  // Writes `v`, a value at `depth` (1 for the root). False when the budget is exceeded.
  bool write(json_writer& w, tree_value v, std::size_t depth, write_budget& budget) const {
    if (v.node == no_node) return write_element(w, v.element, depth, budget);
    if (!budget.allows(depth)) return false;
    w.StartObject();
    for (const tree_member& m : _cx.nodes[v.node].members) {
      write_key(w, m.key);
      if (!write(w, m.value, depth + 1, budget)) return false;
    }
    w.EndObject();
    return true;
  }

  bool write_template(json_writer& w, const template_node& t, std::size_t depth, write_budget& budget) const {
    switch (t.what) {
      case template_node::kind::literal: return write_element(w, t.literal, depth, budget);
      case template_node::kind::placeholder:
        if (const auto v = read(*t.placeholder, true)) return write(w, *v, depth, budget);
        w.Null();  // only reached for array items: object members are checked before the key
        return true;
      case template_node::kind::object:
        if (!budget.allows(depth)) return false;
        w.StartObject();
        for (const template_node& child : t.children) {
          if (child.what == template_node::kind::placeholder && !read(*child.placeholder, true)) continue;
          write_key(w, child.key);
          if (!write_template(w, child, depth + 1, budget)) return false;
        }
        w.EndObject();
        return true;
      case template_node::kind::array:
        if (!budget.allows(depth)) return false;
        w.StartArray();
        for (const template_node& child : t.children) {
          if (!write_template(w, child, depth + 1, budget)) return false;
        }
        w.EndArray();
        return true;
    }
    return true;
  }

  // Materialized objects in use: bounded by max_translate_objects between operations.
  [[nodiscard]] std::size_t nodes_used() const noexcept { return _cx.used; }
  [[nodiscard]] bool too_deep() const noexcept { return _too_deep; }

  [[nodiscard]] tree_value root() const noexcept { return _root; }

 private:
  std::uint32_t new_node() {
    if (_cx.used == _cx.nodes.size()) {
      _cx.nodes.emplace_back();
    } else {
      _cx.nodes[_cx.used].members.clear();
    }
    return static_cast<std::uint32_t>(_cx.used++);
  }

  std::uint32_t materialize(dom::element obj) {
    const std::uint32_t node = new_node();
    auto& members = _cx.nodes[node].members;
    for (const dom::key_value_pair m : as_object(obj)) {
      members.push_back(tree_member{m.key, tree_value{m.value, no_node}});
    }
    return node;
  }

  std::uint32_t root_node() {
    if (_root.node == no_node) _root.node = materialize(_root.element);
    return _root.node;
  }

  context_state& _cx;
  tree_value _root;
  bool _too_deep = false;
};

std::unexpected<error> too_deep() {
  return std::unexpected(error{errc::invalid_event, "translated payload would be nested deeper than " +
                                                        std::to_string(max_output_depth) + " levels"});
}

}  // namespace

std::expected<std::string_view, error> translate_element(const compiled_translate& spec, dom::element root,
                                                         context_state& cx, std::size_t max_output_bytes) {
  if (!root.is_object()) {
    return std::unexpected(
        error{errc::invalid_event, "payload must be a JSON object, not " + std::string(type_phrase(root))});
  }
  const translate_program& p = spec.program();
  tree_editor tree(cx, root);
  // After each operation: a spec can double the output per copy (`a` -> `a.b`, `a` -> `a.c`, …).
  const auto over_limits = [&]() -> std::optional<std::unexpected<error>> {
    if (tree.too_deep()) return too_deep();
    if (tree.nodes_used() > max_translate_objects) {
      return std::unexpected(error{
          errc::invalid_event,
          "translated payload changes more than " + std::to_string(max_translate_objects) + " objects"});
    }
    return std::nullopt;
  };

  for (const move_op& op : p.copies) {
    const auto v = tree.read(op.source, true);
    if (!v) continue;
    const tree_value value = tree.detach(*v);
    if (const auto parent = tree.parent_for_write(op.target, true))
      tree.put(*parent, op.target.last().key, value);
    if (auto e = over_limits()) return *e;
  }
  for (const move_op& op : p.renames) {
    if (!tree.read(op.source, false)) continue;
    const auto from = tree.parent_for_write(op.source, false);  // exists: the read succeeded
    if (op.source.same_parent(op.target)) {
      tree.rename_in_place(*from, op.source.last().key, op.target.last().key);
      if (auto e = over_limits()) return *e;
      continue;
    }
    const auto to = tree.parent_for_write(op.target, true);
    if (!to) continue;
    // Read after materializing the target's parents, which may have materialized the source's
    // value when both paths share a prefix.
    const tree_value value = *tree.read(op.source, false);
    tree.remove_all(*from, op.source.last().key);
    tree.put(*to, op.target.last().key, value);
    if (auto e = over_limits()) return *e;
  }
  for (const field_path& path : p.drops) {
    if (!tree.read(path, false)) continue;
    tree.remove_all(*tree.parent_for_write(path, false), path.last().key);
    if (auto e = over_limits()) return *e;
  }
  for (const set_op& op : p.sets) {
    if (const auto parent = tree.parent_for_write(op.target, true)) {
      tree.put(*parent, op.target.last().key, tree_value{op.value, no_node});
    }
    if (auto e = over_limits()) return *e;
  }

  cx.out.Clear();
  json_writer& w = cx.writer;
  w.Reset(cx.out);
  write_budget budget{max_output_depth, max_output_bytes, &cx.out};
  const bool written = p.output_template ? tree.write_template(w, *p.output_template, 1, budget)
                                         : tree.write(w, tree.root(), 1, budget);
  if (!written || cx.out.GetSize() > max_output_bytes) {
    if (budget.too_deep) return too_deep();
    return std::unexpected(error{
        errc::invalid_event, "translated payload exceeds " + std::to_string(max_output_bytes) + " bytes"});
  }
  return std::string_view(cx.out.GetString(), cx.out.GetSize());
}

}  // namespace detail

std::expected<std::string_view, error> compiled_translate::apply(std::string_view payload, context& cx,
                                                                 std::size_t max_output_bytes) const {
  auto root = detail::parse_payload(cx.state(), payload);
  if (!root) return std::unexpected(std::move(root.error()));
  return detail::translate_element(*this, *root, cx.state(), max_output_bytes);
}

}  // namespace switchboard::pipeline
