// A small SVG writer for `pvengine plot`: a canvas, panels with linear axes, scatter points,
// arrows, polylines, a categorical legend and a continuous colour bar. No plotting library: the
// output is SVG text, byte-for-byte deterministic (numbers printed with fixed precision, no
// locale, no time stamps), so a figure can be compared across runs and machines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pv::io::svg {

struct Color {
  uint8_t r = 0, g = 0, b = 0;
  std::string hex() const;  // "#rrggbb"
  bool operator==(const Color& o) const { return r == o.r && g == o.g && b == o.b; }
};

enum class Colormap {
  kViridis,   // perceptual, dark purple (0) -> yellow (1)
  kDiverging  // blue (0) -> near white (0.5) -> red (1)
};

// t is clamped to [0, 1]; NaN maps to grey.
Color colormap(Colormap map, double t);
// A qualitative palette of 20 colours, repeating beyond 20.
Color category_color(size_t index);

// Text with &, <, >, " and ' escaped for XML content and attribute values.
std::string escape_xml(const std::string& text);
// Fixed-point with `decimals` digits, trailing zeros and a trailing '.' removed, "-0" as "0".
std::string number(double value, int decimals = 2);
// `digits` significant digits, in plain or scientific notation as is shorter ("2.596", "1.2e6").
std::string significant(double value, int digits = 4);
// "Nice" tick positions (steps of 1, 2 or 5 x 10^k) covering [lo, hi], about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);
// A tick label for `value` on an axis whose ticks are `step` apart: plain decimals, or
// scientific notation (1.5e6) for very large or very small magnitudes.
std::string tick_label(double value, double step);

// [lo, hi] of the finite values (hi > lo: a constant or empty range is widened), optionally
// padded by a fraction of its width on each side.
struct Range {
  double lo = 0, hi = 1;
};
Range finite_range(const std::vector<double>& values, double pad_fraction = 0.0);

enum class Anchor { kStart, kMiddle, kEnd };

class Canvas {
 public:
  Canvas(double width, double height);

  double width() const { return width_; }
  double height() const { return height_; }

  void text(double x, double y, const std::string& content, double size = 12,
            Anchor anchor = Anchor::kStart, double rotate_degrees = 0, bool bold = false);
  void rect(double x, double y, double w, double h, const std::string& fill,
            const std::string& stroke = "none", double stroke_width = 1);
  void line(double x0, double y0, double x1, double y1, const std::string& stroke,
            double stroke_width = 1);
  void circle(double x, double y, double radius, const Color& fill, double opacity = 1);
  // A shaft from (x0, y0) to (x1, y1) with a filled head at (x1, y1); one <path> element.
  void arrow(double x0, double y0, double x1, double y1, const std::string& color,
             double stroke_width = 0.8, double head_length = 4);
  // Points in canvas coordinates; a run of non-finite points breaks the line into pieces.
  void polyline(const std::vector<double>& xs, const std::vector<double>& ys,
                const std::string& stroke, double stroke_width = 1.5);
  // A vertical gradient (value `lo` at the bottom) in a box; returns nothing, draws a <rect>.
  void vertical_gradient(double x, double y, double w, double h, Colormap map);
  // Starts and ends a group that clips its contents to a rectangle.
  void begin_clip(double x, double y, double w, double h);
  void end_group();

  std::string str() const;  // the whole document
  // Writes the document to `path` through a temporary file renamed into place (PV_ERR_IO).
  void save(const std::string& path) const;

 private:
  double width_, height_;
  std::string defs_, body_;
  int next_id_ = 0;
};

// A rectangle of the canvas holding one plot: the data-to-pixel map of its axes, and the space
// around it for the title, axis labels, and a legend or colour bar on the right.
struct PanelStyle {
  double margin_left = 64, margin_right = 24, margin_top = 40, margin_bottom = 48;
  double key_width = 0;  // extra space on the right for a legend or colour bar
};

class Panel {
 public:
  // The panel occupies (x, y, w, h) of the canvas; the plot area is inset by the margins.
  Panel(Canvas& canvas, double x, double y, double w, double h, Range x_range, Range y_range,
        PanelStyle style = PanelStyle());

  double px(double x) const;  // data -> canvas
  double py(double y) const;
  double plot_left() const { return left_; }
  double plot_top() const { return top_; }
  double plot_width() const { return width_; }
  double plot_height() const { return height_; }
  // The pixels per data unit of each axis.
  double x_scale() const;
  double y_scale() const;

  // Frame, ticks with labels, axis labels and the title (and an optional smaller subtitle).
  void axes(const std::string& title, const std::string& x_label, const std::string& y_label,
            const std::string& subtitle = "");
  // Embeddings have no meaningful tick values: a frame, axis labels and the title only.
  void frame(const std::string& title, const std::string& x_label, const std::string& y_label,
             const std::string& subtitle = "");
  void scatter(const std::vector<double>& xs, const std::vector<double>& ys,
               const std::vector<Color>& colors, double radius, double opacity = 0.8);
  // Arrows from (x, y) to (x + dx, y + dy) in data units.
  void arrows(const std::vector<double>& xs, const std::vector<double>& ys,
              const std::vector<double>& dxs, const std::vector<double>& dys,
              const std::string& color, double stroke_width = 0.7);
  void polyline(const std::vector<double>& xs, const std::vector<double>& ys,
                const std::string& color, double stroke_width = 1.5);
  // In the key space to the right of the plot area. The first `line_entries` entries stand for
  // lines (a short stroke), the rest for points (a dot).
  void legend(const std::string& title, const std::vector<std::string>& labels,
              const std::vector<Color>& colors, size_t line_entries = 0);
  void colorbar(const std::string& label, Range range, Colormap map);

 private:
  void titles(const std::string& title, const std::string& x_label, const std::string& y_label,
              const std::string& subtitle);

  Canvas& canvas_;
  double x_, y_, w_, h_;
  double left_, top_, width_, height_;
  Range xr_, yr_;
};

}  // namespace pv::io::svg
