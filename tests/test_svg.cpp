// io/svg: the SVG writer behind `pvengine plot` writes well-formed, deterministic documents with
// the elements asked for, escaped text, and colormaps with the documented endpoints.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "io/svg.h"
#include "svg_check.h"
#include "test_h5ad_support.h"

namespace svg = pv::io::svg;

namespace {

// A tiny figure: one panel with ticks, 3 points, 2 arrows, a polyline, a legend of 2 entries and
// a colour bar, plus a title needing escapes.
std::string fixture() {
  svg::Canvas canvas(400, 300);
  svg::PanelStyle style;
  style.key_width = 110;
  svg::Panel panel(canvas, 0, 0, 400, 300, svg::Range{0, 10}, svg::Range{-1, 1}, style);
  panel.axes("Title <a & b> \"q\" 'p'", "x label", "y label", "subtitle");
  panel.scatter({1, 2, 3}, {0, 0.5, -0.5}, {svg::category_color(0), svg::category_color(1), svg::category_color(0)}, 3);
  panel.arrows({1, 2}, {0, 0.5}, {1, -1}, {0.2, 0.1}, "#222222");
  panel.polyline({0, 5, 10}, {-1, 0, 1}, "#000000");
  panel.legend("clusters", {"A & B", "C<D"}, {svg::category_color(0), svg::category_color(1)});
  panel.colorbar("value", svg::Range{0, 1}, svg::Colormap::kViridis);
  return canvas.str();
}

int count_of(const pv_test::SvgCheck& check, const std::string& name) {
  const auto it = check.elements.find(name);
  return it == check.elements.end() ? 0 : it->second;
}

bool has_text(const pv_test::SvgCheck& check, const std::string& text) {
  for (const std::string& t : check.texts)
    if (t == text) return true;
  return false;
}

}  // namespace

TEST_CASE("svg: a tiny figure is well-formed and holds the elements drawn") {
  const std::string doc = fixture();
  const pv_test::SvgCheck check = pv_test::check_svg(doc);
  REQUIRE_MESSAGE(check.error.empty(), check.error);
  CHECK(check.root.at("width") == "400");
  CHECK(check.root.at("height") == "300");
  CHECK(check.root.at("viewBox") == "0 0 400 300");
  CHECK(check.root.at("xmlns") == "http://www.w3.org/2000/svg");
  // 3 scatter points + 2 legend markers.
  CHECK(count_of(check, "circle") == 5);
  // Each arrow is one path (shaft and head).
  CHECK(count_of(check, "path") == 2);
  CHECK(count_of(check, "polyline") == 1);
  CHECK(count_of(check, "linearGradient") == 1);
  CHECK(count_of(check, "stop") == 17);
  // Title, subtitle, 2 axis labels, the legend's title and 2 entries, the colour bar's label, and
  // tick labels: x 0..10 by 2 (6), y -1..1 by 0.5 (5), bar 0..1 by 0.2 (6).
  CHECK(count_of(check, "text") == 8 + 6 + 5 + 6);
  CHECK(has_text(check, "Title <a & b> \"q\" 'p'"));
  CHECK(has_text(check, "A & B"));
  CHECK(has_text(check, "C<D"));
  CHECK(has_text(check, "x label"));
  CHECK(has_text(check, "y label"));
  CHECK(has_text(check, "-0.5"));
  CHECK(has_text(check, "0.2"));
  CHECK(doc.find("Title &lt;a &amp; b&gt; &quot;q&quot; &apos;p&apos;") != std::string::npos);
}

TEST_CASE("svg: output is byte-for-byte deterministic") {
  CHECK(fixture() == fixture());
  CHECK(svg::number(1.0 / 3.0) == "0.33");
  CHECK(svg::number(2.5) == "2.5");
  CHECK(svg::number(-0.0001) == "0");
  CHECK(svg::number(100) == "100");
  CHECK(svg::number(NAN) == "0");
}

TEST_CASE("svg: the checker rejects malformed documents") {
  CHECK_FALSE(pv_test::check_svg("<svg width=\"1\" height=\"1\" viewBox=\"0 0 1 1\"><g></svg>").error.empty());
  CHECK_FALSE(pv_test::check_svg("<svg width=\"1\" height=\"1\" viewBox=\"0 0 1 1\">a & b</svg>").error.empty());
  CHECK_FALSE(pv_test::check_svg("<svg width=\"1\" height=\"1\">x</svg>").error.empty());
  CHECK_FALSE(pv_test::check_svg("<svg width=\"1\" height=\"1\" viewBox=\"0 0 1 1\"/><svg/>").error.empty());
  CHECK_FALSE(pv_test::check_svg("<svg width=1 height=\"1\" viewBox=\"0 0 1 1\"/>").error.empty());
  CHECK(pv_test::check_svg("<svg width=\"1\" height=\"1\" viewBox=\"0 0 1 1\"><text>a &amp; b</text></svg>").error.empty());
}

TEST_CASE("svg: escape_xml escapes markup and drops control characters") {
  CHECK(svg::escape_xml("a&b<c>d\"e'f") == "a&amp;b&lt;c&gt;d&quot;e&apos;f");
  CHECK(svg::escape_xml(std::string("x\x01y")) == "x y");
  CHECK(svg::escape_xml("Ngn3 high EP") == "Ngn3 high EP");
}

TEST_CASE("svg: colormap endpoints, midpoint and clamping") {
  CHECK(svg::colormap(svg::Colormap::kViridis, 0).hex() == "#440154");
  CHECK(svg::colormap(svg::Colormap::kViridis, 1).hex() == "#fde725");
  CHECK(svg::colormap(svg::Colormap::kViridis, 0.5).hex() == "#21908d");
  CHECK(svg::colormap(svg::Colormap::kViridis, -3) == svg::colormap(svg::Colormap::kViridis, 0));
  CHECK(svg::colormap(svg::Colormap::kViridis, 7) == svg::colormap(svg::Colormap::kViridis, 1));
  CHECK(svg::colormap(svg::Colormap::kDiverging, 0).hex() == "#2166ac");
  CHECK(svg::colormap(svg::Colormap::kDiverging, 0.5).hex() == "#f7f7f7");
  CHECK(svg::colormap(svg::Colormap::kDiverging, 1).hex() == "#b2182b");
  CHECK(svg::colormap(svg::Colormap::kViridis, NAN).hex() == "#bbbbbb");
  // Viridis gets lighter monotonically (perceptual ordering): green channel rises throughout.
  int previous = -1;
  for (int i = 0; i <= 20; ++i) {
    const svg::Color c = svg::colormap(svg::Colormap::kViridis, i / 20.0);
    CHECK(c.g > previous);
    previous = c.g;
  }
  CHECK(svg::category_color(0).hex() == "#1f77b4");
  CHECK(svg::category_color(20) == svg::category_color(0));
  CHECK_FALSE(svg::category_color(1) == svg::category_color(0));
}

TEST_CASE("svg: nice ticks and tick labels") {
  CHECK(svg::nice_ticks(0, 10, 5) == std::vector<double>{0, 2, 4, 6, 8, 10});
  CHECK(svg::nice_ticks(-1, 1, 5) == std::vector<double>{-1, -0.5, 0, 0.5, 1});
  CHECK(svg::nice_ticks(0.13, 0.87, 5).front() == doctest::Approx(0.2));
  CHECK(svg::nice_ticks(1, 1, 5).empty());
  CHECK(svg::tick_label(0.5, 0.5) == "0.5");
  CHECK(svg::tick_label(2000, 1000) == "2000");
  CHECK(svg::tick_label(1.5e6, 5e5) == "1.5e6");
  CHECK(svg::tick_label(-2e-4, 1e-4) == "-2e-4");
  const svg::Range r = svg::finite_range({1, NAN, 3, INFINITY}, 0.5);
  CHECK(r.lo == 0);
  CHECK(r.hi == 4);
  const svg::Range constant = svg::finite_range({2, 2});
  CHECK(constant.hi > constant.lo);
}

TEST_CASE("svg: save writes the document and leaves no temporary behind") {
  pv_test::TempDir dir;
  svg::Canvas canvas(10, 10);
  canvas.text(1, 1, "hi");
  canvas.save(dir.file("a.svg"));
  CHECK(pv_test::file_bytes(dir.file("a.svg")) == canvas.str());
  CHECK(dir.listing() == std::vector<std::string>{"a.svg"});
  pv_test::expect_error([&] { canvas.save(dir.file("no/such/dir/a.svg")); }, PV_ERR_IO, "a.svg");
}
