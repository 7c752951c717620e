// Shared by test_svg.cpp and test_cli_plot.cpp: a small XML well-formedness checker for the SVG
// that io/svg writes (independent of the writer: it parses the text back).
#pragma once

#include <cctype>
#include <map>
#include <string>
#include <vector>

namespace pv_test {

struct SvgCheck {
  std::string error;                       // empty when well-formed
  std::map<std::string, int> elements;     // element name -> count
  std::vector<std::string> texts;          // the unescaped content of every <text>
  std::map<std::string, std::string> root;  // attributes of the root element
};

inline bool valid_entity(const std::string& text, size_t amp, size_t* length) {
  static const char* const kNamed[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
  for (const char* entity : kNamed) {
    const std::string e(entity);
    if (text.compare(amp, e.size(), e) == 0) {
      *length = e.size();
      return true;
    }
  }
  if (text.compare(amp, 2, "&#") == 0) {
    size_t i = amp + 2;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i > amp + 2 && i < text.size() && text[i] == ';') {
      *length = i + 1 - amp;
      return true;
    }
  }
  return false;
}

inline std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    const size_t end = s.find(';', i);
    const std::string entity = s.substr(i, end - i + 1);
    out += entity == "&amp;" ? "&" : entity == "&lt;" ? "<" : entity == "&gt;" ? ">" : entity == "&quot;" ? "\"" : "'";
    i = end;
  }
  return out;
}

// Character data and attribute values: no raw '<', every '&' starts an entity.
inline bool clean_text(const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '<') return false;
    size_t length = 0;
    if (text[i] == '&') {
      if (!valid_entity(text, i, &length)) return false;
      i += length - 1;
    }
  }
  return true;
}

// Checks: an optional XML declaration, exactly one root element <svg> with width, height and
// viewBox, every tag closed in order, attributes quoted and unique, text escaped.
inline SvgCheck check_svg(const std::string& doc) {
  SvgCheck result;
  std::vector<std::string> stack;
  bool root_seen = false;
  size_t i = 0;
  std::string pending_text;
  auto fail = [&](const std::string& message) {
    result.error = message + " at byte " + std::to_string(i);
    return result;
  };
  if (doc.compare(0, 5, "<?xml") == 0) {
    i = doc.find("?>");
    if (i == std::string::npos) return fail("unterminated XML declaration");
    i += 2;
  }
  while (i < doc.size()) {
    if (doc[i] != '<') {
      const size_t next = doc.find('<', i);
      const std::string text = doc.substr(i, next == std::string::npos ? std::string::npos : next - i);
      if (!clean_text(text)) return fail("unescaped character data");
      bool blank = true;
      for (char c : text) blank = blank && std::isspace(static_cast<unsigned char>(c));
      if (stack.empty() && !blank) return fail("text outside the root element");
      pending_text += text;
      if (next == std::string::npos) break;
      i = next;
      continue;
    }
    if (doc.compare(i, 4, "<!--") == 0) {
      const size_t end = doc.find("-->", i);
      if (end == std::string::npos) return fail("unterminated comment");
      i = end + 3;
      continue;
    }
    const size_t end = doc.find('>', i);
    if (end == std::string::npos) return fail("unterminated tag");
    std::string tag = doc.substr(i + 1, end - i - 1);
    if (!tag.empty() && tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (stack.empty() || stack.back() != name) return fail("closing </" + name + "> does not match");
      if (name == "text") result.texts.push_back(unescape(pending_text));
      stack.pop_back();
      i = end + 1;
      continue;
    }
    const bool self_closing = !tag.empty() && tag.back() == '/';
    if (self_closing) tag.pop_back();
    size_t p = 0;
    while (p < tag.size() && (std::isalnum(static_cast<unsigned char>(tag[p])) || tag[p] == '-' || tag[p] == ':')) ++p;
    const std::string name = tag.substr(0, p);
    if (name.empty()) return fail("a tag without a name");
    std::map<std::string, std::string> attributes;
    while (p < tag.size()) {
      while (p < tag.size() && std::isspace(static_cast<unsigned char>(tag[p]))) ++p;
      if (p >= tag.size()) break;
      const size_t eq = tag.find('=', p);
      if (eq == std::string::npos || eq + 1 >= tag.size() || tag[eq + 1] != '"') {
        return fail("attribute without a quoted value in <" + name + ">");
      }
      const std::string key = tag.substr(p, eq - p);
      const size_t close = tag.find('"', eq + 2);
      if (close == std::string::npos) return fail("unterminated attribute value in <" + name + ">");
      const std::string value = tag.substr(eq + 2, close - eq - 2);
      if (!clean_text(value)) return fail("unescaped attribute value in <" + name + ">");
      if (!attributes.emplace(key, value).second) return fail("duplicate attribute " + key);
      p = close + 1;
    }
    if (stack.empty()) {
      if (root_seen) return fail("a second root element <" + name + ">");
      if (name != "svg") return fail("the root element is <" + name + ">, not <svg>");
      root_seen = true;
      result.root = attributes;
    }
    ++result.elements[name];
    if (!self_closing) stack.push_back(name);
    pending_text.clear();
    i = end + 1;
  }
  if (!root_seen) return fail("no root element");
  if (!stack.empty()) return fail("<" + stack.back() + "> is never closed");
  for (const char* required : {"width", "height", "viewBox"}) {
    if (!result.root.count(required)) return fail(std::string("the root <svg> lacks ") + required);
  }
  return result;
}

}  // namespace pv_test
